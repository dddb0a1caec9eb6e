"""Named fault switches shared by the lab servers.

A switch is on or off; some take a parameter (``trustee-slow=5`` answers after 5 s). The set is
thread-safe because every server handles requests on its own threads while the admin endpoint flips
switches at run time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class FaultSpec:
    name: str
    component: str
    doc: str
    default_param: float | None = None


FAULTS: dict[str, FaultSpec] = {
    f.name: f
    for f in [
        FaultSpec("trustee-down", "trustee", "the Trustee port refuses connections (the listener is closed)"),
        FaultSpec("trustee-slow", "trustee", "every Trustee answer is delayed by PARAM seconds (default 5)", 5.0),
        FaultSpec("trustee-hang", "trustee", "Trustee accepts connections and reads requests but never answers"),
        FaultSpec(
            "kbs-version-mismatch",
            "trustee",
            "the KBS demands a protocol version other than the one the client sends (the real mismatch message)",
        ),
        FaultSpec("kbs-policy-deny", "trustee", "the resource policy denies every resource request (PolicyDeny)"),
        FaultSpec("kbs-resource-missing", "trustee", "every resource lookup fails as if the secret did not exist"),
        FaultSpec(
            "gateway-backend-down",
            "trustee",
            "the Alibaba gateway answers but its KBS/AS backends are down (Failed to forward request to KBS)",
        ),
        FaultSpec("oss-access-denied", "oss", "every OSS request is refused with AccessDenied (403)"),
        FaultSpec("oss-no-such-bucket", "oss", "every bucket is reported missing (NoSuchBucket, 404)"),
        FaultSpec("oss-bad-signature", "oss", "every signature is rejected (SignatureDoesNotMatch with StringToSign)"),
        FaultSpec("oss-skew", "oss", "the server clock is 20 minutes ahead: RequestTimeTooSkewed"),
        FaultSpec("oss-token-expired", "oss", "STS tokens are reported expired (SecurityTokenExpired)"),
        FaultSpec("oss-stall-body", "oss", "object bodies stall after the headers are sent (GET never completes)"),
        FaultSpec("kms-secret-missing", "kms", "every secret lookup fails with Forbidden.ResourceNotFound"),
        FaultSpec("kms-bad-key", "kms", "every AccessKey is unknown (InvalidAccessKeyId.NotFound)"),
    ]
}


class UnknownFault(ValueError):
    pass


def parse_fault_list(text: str) -> dict[str, float | None]:
    """Parse ``a,b=3`` into ``{"a": None, "b": 3.0}``; unknown names raise UnknownFault naming the valid ones."""
    out: dict[str, float | None] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        name, _, param = item.partition("=")
        name = name.strip()
        if name not in FAULTS:
            raise UnknownFault(f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULTS))}")
        if param:
            try:
                out[name] = float(param)
            except ValueError:
                raise UnknownFault(f"fault {name}: parameter {param!r} is not a number") from None
        else:
            out[name] = FAULTS[name].default_param
    return out


class FaultSwitches:
    """The switches in force; cheap to query from any thread."""

    def __init__(self, initial: dict[str, float | None] | None = None) -> None:
        self._lock = threading.Lock()
        self._on: dict[str, float | None] = dict(initial or {})
        self._listeners: list = []

    def is_on(self, name: str) -> bool:
        if name not in FAULTS:
            raise UnknownFault(name)
        return name in self._on

    def param(self, name: str) -> float | None:
        with self._lock:
            return self._on.get(name, FAULTS[name].default_param)

    def set(self, name: str, on: bool, param: float | None = None) -> None:
        if name not in FAULTS:
            raise UnknownFault(f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULTS))}")
        with self._lock:
            if on:
                self._on[name] = param if param is not None else FAULTS[name].default_param
            else:
                self._on.pop(name, None)
            listeners = list(self._listeners)
        for cb in listeners:
            cb(name, on)

    def clear(self) -> None:
        for name in list(self.active()):
            self.set(name, False)

    def active(self) -> dict[str, float | None]:
        with self._lock:
            return dict(self._on)

    def subscribe(self, callback) -> None:
        """``callback(name, on)`` runs after each change (used to close/reopen a listener for *-down faults)."""
        with self._lock:
            self._listeners.append(callback)
