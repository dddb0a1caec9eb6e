"""trustee.resource: Trustee releases the MODEL_KEY_ID resource after attestation (sample evidence)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

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
    STAGE_KEY,
    _base,
    _trustee,
    _verify,
)
from .auth_nonce import _kbs_error_result


@check(
    "trustee.resource",
    "Trustee releases the MODEL_KEY_ID resource after attestation (sample evidence)",
    stage=STAGE_KEY,
    depends=("trustee.auth_nonce",),
)
async def trustee_resource(ctx: CheckContext) -> Result:
    from ...clients.kbs import KbsClient, KbsError, parse_kbs_uri

    trustee, skip = _trustee(ctx)
    if trustee is None:
        return skip  # type: ignore[return-value]
    uri = trustee.model_key_id
    try:
        path = parse_kbs_uri(uri).path
    except ValueError as exc:
        return make(
            ctx, "fail", str(exc), [ev(ctx, uri, "answers.trustee.model_key_id")], ("kbs-resource-missing", str(exc))
        )
    base = _base(trustee)
    timeout = net_timeout(ctx, 0.25)
    version = trustee.protocol_version
    step = {"now": "auth"}
    used: dict[str, str | None] = {"version": version, "note": f"protocol {version}", "from": None}
    evidence: list[Evidence] = [ev(ctx, uri, "answers.trustee.model_key_id")]

    def work() -> int:
        with KbsClient(base, verify=_verify(trustee), timeout=timeout, protocol_version=version) as client:
            try:
                step["now"] = "auth"
                # Negotiated: a mismatch answer names the version the server wants, and the client retries with it
                # (trustee.auth_nonce reports the mismatch itself).
                client.auth(tee="sample", extra_params="", negotiate=True)
                step["now"] = "attest"
                client.attest_sample(tee="sample")
                step["now"] = "resource"
                data = client.get_resource(uri)
            finally:
                used.update({"version": client.version_used, "note": client.version_note()})
                used["from"] = client.negotiated_from
            ctx.redactor.add(data)  # the model key: never shown
            try:
                ctx.redactor.add(data.decode("utf-8").strip())
            except UnicodeDecodeError:
                pass
            return len(data)

    try:
        size = await asyncio.to_thread(work)
    except KbsError as exc:
        res = _resource_error(ctx, exc, evidence, step["now"], base, path, uri)
        res.summary = f"{res.summary} [{used['note']}]"
        res.data.update(protocol_version=used["version"], negotiated_from=used["from"])
        return res
    evidence.append(
        ev(ctx, f"HTTP 200, JWE decrypted to {size} bytes (value not shown)", f"GET {base}/kbs/v0/resource/{path}")
    )
    return make(
        ctx,
        "pass",
        f"{uri} is released after attestation ({size} bytes, value not shown; {used['note']})",
        evidence,
        bytes=size,
        protocol_version=used["version"],
        negotiated_from=used["from"],
    )


def _resource_error(
    ctx: CheckContext, exc: KbsError, evidence: list[Evidence], step: str, base: str, path: str, uri: str
) -> Result:
    from ...clients.kbs import KbsUnreachable

    tag = path.rsplit("/", 1)[-1]
    method, rel = {"auth": ("POST", "auth"), "attest": ("POST", "attest")}.get(step, ("GET", f"resource/{path}"))
    what = f"{method} /kbs/v0/{rel}"
    variant = exc.type_variant
    known = step == "attest" or (
        step == "resource" and variant in ("PolicyDeny", "PluginInternalError", "PluginNotFound")
    )
    if isinstance(exc, KbsUnreachable) or exc.flavour == "gateway" or not known:
        return _kbs_error_result(ctx, exc, evidence, what)
    observed = f"HTTP {exc.status} {exc.body[:400] if exc.body else exc.detail or ''}".strip()
    evidence.append(ev(ctx, observed, f"{method} {base}/kbs/v0/{rel}"))
    if step == "attest":
        return make(
            ctx,
            "warn",
            "the Trustee refused sample evidence, so the resource cannot be fetched from outside a TEE "
            f"({variant}: {exc.detail})",
            evidence,
            (
                "kbs-policy-deny",
                "Expected when the attestation policy only admits real TDX evidence: the resource can then only be "
                "checked from the instance (the confidential-data-hub log). Otherwise check the AS policy.",
            ),
            variant=variant,
        )
    if step == "resource" and variant == "PolicyDeny":
        return make(
            ctx,
            "fail",
            f"the resource policy denies {uri} (PolicyDeny: {exc.detail})",
            evidence,
            (
                "kbs-policy-deny",
                "Set a resource policy that allows the instance's TEE evidence, e.g. "
                "`kbs-client config --auth-private-key <admin key> set-resource-policy --affirming` (the KBS log shows "
                '`Evaluated: {"allow":false}`).',
            ),
            variant=variant,
        )
    if step == "resource" and variant in ("PluginInternalError", "PluginNotFound"):
        return make(
            ctx,
            "fail",
            f"the KBS cannot serve {uri} ({variant}: {exc.detail}); with the KMS backend the secret {tag!r} is missing",
            evidence,
            (
                "kbs-resource-missing",
                f"Create the KMS secret {tag!r} holding the model password (CAI-2.6) in the KMS instance Trustee uses, "
                "or fix MODEL_KEY_ID: only its last segment is the KMS secret name. The KBS log says "
                "`failed to get resource from aliyun KMS` or `resource not found`.",
            ),
            variant=variant,
            secret_name=tag,
        )
    return _kbs_error_result(ctx, exc, evidence, what)
