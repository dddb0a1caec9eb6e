"""KBS error answers as both Trustee generations shape them.

The body is always ``{"type": "https://github.com/confidential-containers/kbs/errors/<Variant>", "detail": …}``
(``kbs_types::ErrorInformation``); the status depends on the flavour:

- ``upstream`` (confidential-containers/trustee ``kbs/src/error.rs``): 404 for InvalidRequestPath/PluginNotFound,
  401 for everything else;
- ``alibaba`` (openanolis/trustee ``kbs/src/error.rs``): 400 JweError/SerdeError/ParsePolicyError, 401 admin and token
  errors, 403 PolicyDeny, 404 path/plugin, 500 PluginInternalError/PolicyEngine, 502 RCAR auth/attest failures.

The gateway of the Alibaba chart answers in its own shape, ``{"error": "Failed to forward request to KBS"}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

Flavour = Literal["upstream", "alibaba"]
ERROR_TYPE_PREFIX = "https://github.com/confidential-containers/kbs/errors"

_ALIBABA_STATUS = {
    "InvalidRequestPath": 404,
    "PluginNotFound": 404,
    "AdminAuth": 401,
    "TokenNotFound": 401,
    "TokenVerifierError": 401,
    "PolicyDeny": 403,
    "PluginInternalError": 500,
    "PolicyEngine": 500,
    "JweError": 400,
    "SerdeError": 400,
    "ParsePolicyError": 400,
    "AttestationError": 502,
}
_UPSTREAM_404 = {"InvalidRequestPath", "PluginNotFound"}


def status_for(variant: str, flavour: Flavour) -> int:
    if flavour == "alibaba":
        return _ALIBABA_STATUS.get(variant, 500)
    return 404 if variant in _UPSTREAM_404 else 401


@dataclass
class Reply:
    """One HTTP answer of the lab."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, obj: object, headers: dict[str, str] | None = None) -> Reply:
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        return cls(status, json.dumps(obj, separators=(",", ":")).encode("utf-8"), hdrs)

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Reply:
        return cls(status, text.encode("utf-8"), {"Content-Type": content_type})


class KbsFailure(Exception):
    """A KBS error variant with its ``Display`` text; the log line (the cause) stays server-side."""

    def __init__(self, variant: str, detail: str, *, log: str | None = None, alibaba_status: int | None = None) -> None:
        super().__init__(f"{variant}: {detail}")
        self.variant = variant
        self.detail = detail
        self.log = log
        self.alibaba_status = alibaba_status

    def status(self, flavour: Flavour) -> int:
        if flavour == "alibaba" and self.alibaba_status is not None:
            return self.alibaba_status
        return status_for(self.variant, flavour)

    def reply(self, flavour: Flavour) -> Reply:
        body = {"type": f"{ERROR_TYPE_PREFIX}/{self.variant}", "detail": self.detail}
        return Reply.json(self.status(flavour), body)


# The Display texts of kbs/src/error.rs (and attestation/error.rs, admin/error.rs of the Alibaba generation).
def invalid_path(path: str) -> KbsFailure:
    return KbsFailure("InvalidRequestPath", f"Request path {path} is invalid")


def plugin_not_found(name: str) -> KbsFailure:
    return KbsFailure("PluginNotFound", f"Plugin {name} not found")


def plugin_internal(log: str) -> KbsFailure:
    return KbsFailure("PluginInternalError", "Plugin internal error", log=log)


def policy_deny() -> KbsFailure:
    return KbsFailure("PolicyDeny", "Access denied by policy")


def token_not_found() -> KbsFailure:
    return KbsFailure("TokenNotFound", "Attestation Token not found")


def token_verifier(log: str) -> KbsFailure:
    return KbsFailure("TokenVerifierError", "Token Verifier error", log=log)


def serde_error(log: str) -> KbsFailure:
    return KbsFailure("SerdeError", "Serialize/Deserialize failed", log=log)


def jwe_error(log: str) -> KbsFailure:
    return KbsFailure("JweError", "JWE failed", log=log)


def admin_auth(reason: str) -> KbsFailure:
    return KbsFailure("AdminAuth", f"Admin auth error: {reason}", log=f"Admin auth error: {reason}")


def admin_access_denied(endpoint: str | None, reason: str) -> KbsFailure:
    """Upstream HEAD's admin refusal: ``AdminAuthAccess`` for built-in endpoints, ``AdminAuthInitialization`` for
    plugin calls (``?`` converts the admin error with ``#[from]``), both displaying ``Admin access denied: …``."""
    inner = f"Admin access denied: {reason}"
    if endpoint is None:
        return KbsFailure("AdminAuthInitialization", f"failed to initialize [admin] configuration: {inner}", log=inner)
    return KbsFailure("AdminAuthAccess", f"admin access denied for endpoint {endpoint}: {inner}", log=inner)


def parse_policy(reason: str) -> KbsFailure:
    return KbsFailure("ParsePolicyError", f"Failed to parse policy: {reason}", log=f"Failed to parse policy: {reason}")


def rcar_auth_failed(cause: str) -> KbsFailure:
    # RcarAuthFailed displays its source: the mismatch text reaches the client.
    return KbsFailure(
        "AttestationError", f"Attestation error: RCAR handshake Auth failed: {cause}", log=f"RCAR auth: {cause}"
    )


def rcar_attest_failed(cause: str) -> KbsFailure:
    # RcarAttestFailed does not display its source: only the server log names the cause.
    return KbsFailure(
        "AttestationError", "Attestation error: RCAR handshake Attest failed", log=f"RCAR attest: {cause}"
    )


def set_attestation_policy_failed(cause: str) -> KbsFailure:
    # attestation::Error::SetPolicy: "bad input or illegal state" → 400 in the Alibaba table.
    return KbsFailure(
        "AttestationError",
        "Attestation error: Set Attestation Policy failed",
        log=f"Set Attestation Policy failed: {cause}",
        alibaba_status=400,
    )


def gateway_forward_error(backend: Literal["KBS", "Attestation Service"]) -> Reply:
    return Reply.json(500, {"error": f"Failed to forward request to {backend}"})


def as_internal_error(*causes: str) -> Reply:
    """The restful AS error: HTTP 500, ``An internal error occured: \\n0: …`` (sic)."""
    stack = "\n".join(f"{i}: {c}" for i, c in enumerate(causes))
    return Reply.text(500, f"An internal error occured: \n{stack}")
