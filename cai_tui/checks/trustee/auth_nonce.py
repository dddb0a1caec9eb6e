"""trustee.auth_nonce: the KBS handshake of seed CAI-2.5 with the real KBS client."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from ..base import CheckContext, Evidence, Result
from ..common import (
    ev,
    make,
    net_timeout,
)
from ..registry import check

if TYPE_CHECKING:
    from ...clients.kbs import KbsError
from ._common import (
    FIX_BACKEND_DOWN,
    FIX_UNREACHABLE,
    SLOW_SHARE,
    STAGE_DEPLOY,
    _base,
    _clip,
    _trustee,
    _verify,
)


def _kbs_error_result(ctx: CheckContext, exc: KbsError, evidence: list[Evidence], what: str) -> Result:
    """Map a KBS client error to a failing result (shared by the handshake and resource checks)."""
    from ...clients.kbs import KbsProtocolMismatch, KbsUnreachable

    if isinstance(exc, KbsUnreachable):
        evidence.append(ev(ctx, str(exc), exc.url or what))
        why = {
            "timeout": "did not answer in time",
            "refused": "refused the connection",
            "reset": "closed the connection without an answer",
        }.get(exc.reason, "is unreachable")
        return make(
            ctx,
            "fail",
            f"the Trustee {why} ({what})",
            evidence,
            ("trustee-unreachable", FIX_UNREACHABLE),
            reason=exc.reason,
        )
    observed = f"HTTP {exc.status} {exc.body[:400] if exc.body else exc.detail or ''}".strip()
    evidence.append(ev(ctx, observed, exc.url or what))
    if isinstance(exc, KbsProtocolMismatch):
        return make(
            ctx,
            "fail",
            f"KBS protocol version mismatch: the Trustee expects {exc.server_expected_version}, "
            f"the recipe sends {exc.client_version}",
            evidence,
            (
                "kbs-protocol-mismatch",
                f"Set trustee.protocol_version to {exc.server_expected_version} and use a CAI image whose "
                "attestation-agent speaks the same KBS protocol as the Trustee chart (matching versions).",
            ),
            server_expected_version=exc.server_expected_version,
        )
    if exc.flavour == "gateway":
        return make(
            ctx,
            "fail",
            f"the Trustee gateway answers but its backend does not ({exc.detail})",
            evidence,
            ("trustee-backend-down", FIX_BACKEND_DOWN),
        )
    if exc.status == 404 and exc.type_variant is None:
        return make(
            ctx,
            "fail",
            f"no KBS at this URL ({what} answered 404)",
            evidence,
            (
                "trustee-bad-url",
                "TRUSTEE_URL must end with the release path the ALB routes, e.g. http://<alb>/trustee (CAI-2.4); "
                "the KBS is then at ${TRUSTEE_URL}/kbs/v0.",
            ),
        )
    return make(
        ctx,
        "fail",
        f"the KBS refused {what}: HTTP {exc.status} {exc.type_variant or ''} {exc.detail or ''}".strip(),
        evidence,
        ("trustee-unreachable", FIX_UNREACHABLE),
        variant=exc.type_variant,
    )


def _probe_flavour(client: Any) -> tuple[str, str | None]:
    """Which Trustee generation answers, from the status of a deliberately refused handshake (changes nothing)."""
    from ...clients.kbs import KbsError, KbsProtocolMismatch

    saved = client.protocol_version
    client.protocol_version = "0.0.0"
    try:
        client.auth(tee="tdx", extra_params="foo")
    except KbsProtocolMismatch as exc:
        return exc.flavour, exc.server_expected_version
    except KbsError as exc:
        return exc.flavour, None
    finally:
        client.protocol_version = saved
    return "unknown", None


@check(
    "trustee.auth_nonce",
    "KBS answers the seed's handshake with a nonce (POST /kbs/v0/auth)",
    stage=STAGE_DEPLOY,
    depends=("trustee.url",),
)
async def trustee_auth_nonce(ctx: CheckContext) -> Result:
    from ...clients.kbs import KbsClient, KbsError, KbsProtocolMismatch

    trustee, skip = _trustee(ctx)
    if trustee is None:
        return skip  # type: ignore[return-value]
    timeout = net_timeout(ctx, 0.6)
    version = trustee.protocol_version
    body = json.dumps({"version": version, "tee": "tdx", "extra-params": "foo"}, separators=(",", ":"))
    base = _base(trustee)
    source = f"POST {base}/kbs/v0/auth {body}"
    evidence: list[Evidence] = []

    def work() -> tuple[Any, str, str | None, Any]:
        with KbsClient(base, verify=_verify(trustee), timeout=timeout, protocol_version=version) as client:
            try:
                result = client.auth(tee="tdx", extra_params="foo")
            except KbsProtocolMismatch as exc:
                retried = None
                if exc.server_expected_version:
                    client.protocol_version = exc.server_expected_version
                    try:
                        retried = client.auth(tee="tdx", extra_params="foo")
                    except KbsError:
                        retried = None
                return exc, "", None, retried
            if result.latency_s > SLOW_SHARE * timeout:  # no second slow request: the budget is for reporting
                return result, "unknown", None, None
            flavour, server_version = _probe_flavour(client)
            return result, flavour, server_version, None

    try:
        outcome, flavour, server_version, retried = await asyncio.to_thread(work)
    except KbsError as exc:
        return _kbs_error_result(ctx, exc, evidence, "POST /kbs/v0/auth")
    if isinstance(outcome, KbsProtocolMismatch):
        res = _kbs_error_result(ctx, outcome, evidence, "POST /kbs/v0/auth")
        if retried is not None and retried.nonce:
            # Negotiated: the checks and actions of this tool go on with the server's version (and say so); the
            # recipe's version stays a warning, since the instance's attestation agent must speak the server's.
            used = outcome.server_expected_version
            res.evidence.append(
                ev(
                    ctx,
                    f"with version {used} the Trustee answers a nonce ({retried.latency_s * 1000:.0f} ms)",
                    source.replace(f'"version":"{version}"', f'"version":"{used}"'),
                )
            )
            res.status = "warn"
            res.summary = (
                f"KBS protocol negotiated: the Trustee expects {used}, the recipe says {version}; "
                f"the handshake with {used} answers a nonce (protocol used: {used})"
            )
            res.data.update(protocol_version=used, negotiated_from=version, nonce=retried.nonce)
        return res
    result = outcome
    latency_ms = result.latency_s * 1000
    evidence.append(ev(ctx, _clip(result.raw), source))
    evidence.append(
        ev(
            ctx,
            f"Set-Cookie kbs-session-id {'present' if result.cookie else 'absent'}; latency {latency_ms:.0f} ms; "
            f"error flavour {flavour}",
            source,
        )
    )
    data: dict[str, Any] = {
        "nonce": result.nonce,
        "latency_ms": round(latency_ms),
        "flavour": flavour,
        "protocol_version": version,
        "session_cookie": bool(result.cookie),
    }
    if server_version:
        data["server_expected_version"] = server_version
    summary = f"nonce {result.nonce} in {latency_ms:.0f} ms (protocol {version}, {flavour} Trustee)"
    if result.latency_s > SLOW_SHARE * timeout:
        return make(
            ctx,
            "warn",
            f"the Trustee is slow: {summary}",
            evidence,
            (
                "trustee-unreachable",
                "The Trustee answers slowly; check the ALB, the pods' load and the network path. " + FIX_UNREACHABLE,
            ),
            **data,
        )
    return make(ctx, "pass", summary, evidence, **data)
