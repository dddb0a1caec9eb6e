"""The redaction set: every resolved secret joins it; everything that prints or writes passes through it."""

from __future__ import annotations

import base64
import logging
import threading
from urllib.parse import quote

MASK = "***"
MIN_REDACTABLE = 3


class Redactor:
    """Replaces known secret values (and their common encodings) in text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._ordered: list[str] = []

    def add(self, value: str | bytes) -> bool:
        """Register a secret; False when it is too short to redact without mangling all output."""
        if isinstance(value, bytes):
            raw = value
            try:
                value = raw.decode("utf-8")
            except UnicodeDecodeError:
                value = raw.decode("latin-1")
        value = value.strip("\r\n")
        if len(value) < MIN_REDACTABLE:
            return False
        variants = {value, quote(value, safe=""), base64.b64encode(value.encode()).decode()}
        with self._lock:
            self._values.update(v for v in variants if len(v) >= MIN_REDACTABLE)
            self._ordered = sorted(self._values, key=len, reverse=True)
        return True

    def __contains__(self, text: str) -> bool:
        return any(v in text for v in self._ordered)

    def __len__(self) -> int:
        return len(self._values)

    def redact(self, text: str) -> str:
        for v in self._ordered:
            if v in text:
                text = text.replace(v, MASK)
        return text

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._ordered = []


REDACTOR = Redactor()
"""The process-wide set used by logs, reports, renderers and bundles."""


class RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if len(self.redactor):
            record.msg = self.redactor.redact(record.getMessage())
            record.args = ()
        return True
