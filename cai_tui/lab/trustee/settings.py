"""Settings of the lab Trustee (which Trustee it plays) and the server-side log diagnosis quotes."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

RESOURCE_POLICIES = ("allow-all", "deny-all", "default", "affirming", "custom")
EAR_STATUSES = ("affirming", "warning", "contraindicated")
# Top-level names the server routes itself; a release prefix may not shadow them.
RESERVED_PREFIXES = frozenset(
    {"kbs", "api", "lab", "as", "attestation", "challenge", "certificate", "policy", "healthz", ".well-known", "status"}
)
_RELEASE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_VERSION_RE = re.compile(r"\d+\.\d+\.\d+")
MAX_LOG_MESSAGE = 2000
MAX_POLICY_BYTES = 1024 * 1024  # a posted rego (resource or attestation policy)
MAX_CLAIM_JSON = 64 * 1024  # runtime/init data copied into a token


def json_size(obj: object) -> int:
    """Length of the compact JSON of ``obj``; unserialisable or absurdly nested values count as too large."""
    try:
        return len(json.dumps(obj, separators=(",", ":")))
    except (TypeError, ValueError, RecursionError):
        return 1 << 62


@dataclass
class TrusteeSettings:
    """What the lab Trustee plays.

    The first seven fields are the orchestrator's contract; the rest are lab extras with safe defaults:

    - ``protocol_version``: the exact KBS protocol version demanded (seed chart ``0.1.0``; upstream ≥ v0.14 ``0.4.0``).
    - ``flavour``: the status-code table of the error answers (``upstream`` or ``alibaba``).
    - ``release``: the path prefix of the seed-style ``TRUSTEE_URL`` (``http://127.0.0.1:PORT/<release>``).
    - ``backend``: ``local`` (files under the state dir) or ``kms`` (only ``<tag>`` is looked up, as a KMS secret name).
    - ``resource_policy``: ``allow-all`` | ``deny-all`` | ``default`` | ``affirming`` (| ``custom`` after an
      unrecognised rego is posted).
    - ``allow_sample_evidence``: whether the ``default`` resource policy lets ``sample`` evidence through (upstream's
      default policy does not).
    - ``session_ttl_s``: the life of a ``kbs-session-id`` session.
    - ``accept_tdx_evidence``: accept evidence of ``tdx``-labelled sessions without verifying a quote (the lab has no
      TDX verifier); off, such an attestation fails as an unverifiable quote would.
    - ``token_alg``: the attestation token signature (``ES256`` or ``EdDSA``); ``token_ttl_s`` its lifetime.
    - ``attestation_status``: the EAR status the lab's default attestation policy gives accepted evidence.
    """

    protocol_version: str = "0.1.0"
    flavour: Literal["upstream", "alibaba"] = "alibaba"
    release: str = "trustee"
    backend: Literal["local", "kms"] = "local"
    resource_policy: str = "allow-all"
    allow_sample_evidence: bool = True
    session_ttl_s: float = 300.0
    accept_tdx_evidence: bool = False
    token_alg: Literal["ES256", "EdDSA"] = "ES256"
    token_ttl_s: float = 300.0
    attestation_status: str = "affirming"

    def validate(self) -> None:
        if not _VERSION_RE.fullmatch(self.protocol_version):
            raise ValueError(f"protocol_version must look like 0.4.0, not {self.protocol_version!r}")
        if self.flavour not in ("upstream", "alibaba"):
            raise ValueError(f"flavour must be upstream or alibaba, not {self.flavour!r}")
        if not _RELEASE_RE.fullmatch(self.release) or self.release in RESERVED_PREFIXES:
            raise ValueError(f"release {self.release!r} is not a usable path prefix")
        if self.backend not in ("local", "kms"):
            raise ValueError(f"backend must be local or kms, not {self.backend!r}")
        if self.resource_policy not in RESOURCE_POLICIES:
            raise ValueError(f"resource_policy must be one of {', '.join(RESOURCE_POLICIES)}")
        if not self.session_ttl_s > 0 or not self.token_ttl_s > 0:
            raise ValueError("session_ttl_s and token_ttl_s must be positive")
        if self.token_alg not in ("ES256", "EdDSA"):
            raise ValueError("token_alg must be ES256 or EdDSA")
        if self.attestation_status not in EAR_STATUSES:
            raise ValueError(f"attestation_status must be one of {', '.join(EAR_STATUSES)}")


class ServerLog:
    """Bounded, thread-safe in-memory log of server-side lines (``[time LEVEL target] message``)."""

    def __init__(self, maxlen: int = 5000) -> None:
        self._lines: deque[str] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, level: str, target: str, message: str) -> None:
        if len(message) > MAX_LOG_MESSAGE:
            message = message[:MAX_LOG_MESSAGE] + "…"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = f"[{stamp} {level:<5} {target}] {message}"
        with self._lock:
            self._lines.append(line)

    def info(self, target: str, message: str) -> None:
        self.add("INFO", target, message)

    def warn(self, target: str, message: str) -> None:
        self.add("WARN", target, message)

    def error(self, target: str, message: str) -> None:
        self.add("ERROR", target, message)

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)
