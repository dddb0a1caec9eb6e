"""One event type for everything that runs, one callback signature, and the cancellation token.

Whatever runs — a command on a target, a transfer, a stage of a replay, a check — reports through an
:data:`EventSink`, a plain ``Callable[[Event], None]``. Front ends decide how to show events: the CLI with rich, the
wizard as Textual messages, ``cai-tui replay`` as JSON lines. A ``cai-tui`` command run as a child of another (the
engine runs actions as ``cai-tui …`` command lines) writes its events as JSON lines when :data:`EVENTS_ENV` is set,
and the parent turns those lines back into events (:func:`parse_line`), so progress survives the pipe.

Events never carry secret values: the producers redact what they report, and :meth:`Event.redacted` is applied again
by every sink that leaves the process.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

EventKind = Literal["line", "progress", "note", "step_started", "step_finished", "check"]
KINDS: tuple[str, ...] = ("line", "progress", "note", "step_started", "step_finished", "check")
SCHEMA = "cai-tui/event/v1"
EVENTS_ENV = "CAI_TUI_EVENTS"  # "jsonl": a child cai-tui writes its events as JSON lines on stdout


@dataclass(frozen=True)
class Event:
    """``kind`` says which fields matter:

    * ``line`` — ``text`` one output line (no newline), ``stream`` stdout|stderr, ``source`` the target;
    * ``progress`` — ``done``/``total`` (None: unknown) in ``unit`` (bytes, files, …), ``text`` what is moving;
    * ``note`` — ``text`` for a person (``level`` info|warn|error);
    * ``step_started`` / ``step_finished`` — ``step`` the item id, ``text`` its title, ``status`` on finish;
    * ``check`` — ``step`` the check id, ``status`` pass|warn|fail|skip|unknown, ``text`` its summary.
    """

    kind: EventKind
    text: str = ""
    step: str = ""
    source: str = ""
    stream: str = ""
    status: str = ""
    level: str = "info"
    done: int | None = None
    total: int | None = None
    unit: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        """Only the fields that say something (defaults left out), plus ``schema``."""
        doc: dict[str, Any] = {"schema": SCHEMA}
        defaults = _DEFAULTS
        for key, value in asdict(self).items():
            if key in ("kind", "at") or value != defaults.get(key):
                doc[key] = value
        return doc

    def redacted(self, redact: Callable[[str], str]) -> Event:
        return replace(
            self,
            text=redact(self.text),
            source=redact(self.source),
            data=json.loads(redact(json.dumps(self.data, ensure_ascii=False))) if self.data else self.data,
        )

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Event:
        if doc.get("schema") != SCHEMA or doc.get("kind") not in KINDS:
            raise ValueError("not a cai-tui event")
        known = {k: v for k, v in doc.items() if k in _FIELDS}
        return cls(**known)


_DEFAULTS = {k: v for k, v in asdict(Event("note", at=0.0)).items() if k not in ("kind", "at")}
_FIELDS = frozenset(asdict(Event("note")).keys())

EventSink = Callable[[Event], None]


def discard(event: Event) -> None:
    """The sink for callers that do not listen."""


def line(text: str, *, stream: str = "stdout", source: str = "", step: str = "") -> Event:
    return Event("line", text=text, stream=stream, source=source, step=step)


def progress(
    done: int,
    total: int | None,
    unit: str = "bytes",
    *,
    text: str = "",
    step: str = "",
    source: str = "",
    data: dict[str, Any] | None = None,
) -> Event:
    """``source`` names what is moving when one run has several transfers at once (``encrypt`` and ``sha256``)."""
    return Event("progress", text=text, done=done, total=total, unit=unit, step=step, source=source, data=data or {})


def note(
    text: str, *, level: str = "info", step: str = "", source: str = "", data: dict[str, Any] | None = None
) -> Event:
    return Event("note", text=text, level=level, step=step, source=source, data=data or {})


def labelled(sink: EventSink | None, *, source: str = "", total: int | None = None) -> EventSink | None:
    """``sink`` with ``source`` (and, for progress events without one, ``total``) filled in: a low-level producer
    reports bytes, the caller that knows what they are and how many to expect names them."""
    if sink is None:
        return None

    def relay(event: Event) -> None:
        if event.kind == "progress" and event.total is None and total is not None:
            event = replace(event, total=total)
        sink(replace(event, source=event.source or source) if source else event)

    return relay


def line_sink(sink: EventSink | None, *, source: str = "", step: str = "") -> Callable[[str, str], None] | None:
    """A target's ``on_line(stream, line)`` callback that forwards each line as a ``line`` event (or as the event
    it encodes, when a child cai-tui writes JSON events)."""
    if sink is None:
        return None

    def on_line(stream: str, text: str) -> None:
        parsed = parse_line(text) if stream == "stdout" else None
        if parsed is not None:
            sink(replace(parsed, step=parsed.step or step, source=parsed.source or source))
        else:
            sink(Event("line", text=text, stream=stream, source=source, step=step))

    return on_line


def parse_line(text: str) -> Event | None:
    """The event a child ``cai-tui`` wrote as one JSON line, or None for any other line."""
    if not text.startswith('{"schema": "' + SCHEMA) and not text.startswith('{"schema":"' + SCHEMA):
        return None
    try:
        return Event.from_json(json.loads(text))
    except (ValueError, TypeError):
        return None


def child_wants_json() -> bool:
    """Whether this process runs as a child of the engine, which reads its events as JSON lines."""
    return os.environ.get(EVENTS_ENV) == "jsonl"


UNCHANGED = "unchanged"  # ``data["outcome"]`` of the note a doer writes when it found its work already done


def report_unchanged(text: str) -> None:
    """A doer run by the engine (:func:`child_wants_json`) found its work already done: say so as an event, and the
    engine reports the item ``skipped`` instead of ``applied``. Outside the engine this does nothing."""
    if child_wants_json():
        import sys

        sys.stdout.write(json_line(note(text, data={"outcome": UNCHANGED})) + "\n")
        sys.stdout.flush()


def report_done(text: str) -> str:
    """:func:`report_unchanged` ``text`` and return it (for ``return report_done("… already …; nothing to do")``)."""
    report_unchanged(text)
    return text


def is_unchanged(event: Event) -> bool:
    return event.kind == "note" and event.data.get("outcome") == UNCHANGED


def json_line(event: Event) -> str:
    return json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":"))


class Cancelled(Exception):
    """Raised by :meth:`CancelToken.check` in work that was asked to stop; what it had begun is cleaned up."""


class CancelToken:
    """Set from any thread (a UI, a signal handler); in-process work checks it between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as the token is cancelled."""
        return self._event.wait(seconds)


class _Never(CancelToken):
    def cancel(self, reason: str = "cancelled") -> None:
        raise RuntimeError("events.NEVER is shared by work nobody can cancel; give the work its own CancelToken")


NEVER: CancelToken = _Never()  # the token of work nobody can cancel (never set)

__all__ = [
    "EVENTS_ENV",
    "NEVER",
    "CancelToken",
    "Cancelled",
    "Event",
    "EventSink",
    "child_wants_json",
    "discard",
    "json_line",
    "labelled",
    "line",
    "line_sink",
    "note",
    "parse_line",
    "progress",
]
