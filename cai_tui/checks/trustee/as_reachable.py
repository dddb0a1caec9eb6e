"""trustee.as_reachable: the Attestation Service answers at ${TRUSTEE_URL}/as/ (TNG's as_addr)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..base import CheckContext, Evidence, Result
from ..common import (
    ev,
    make,
    net_timeout,
)
from ..registry import check

if TYPE_CHECKING:
    import httpx

from ._common import (
    FIX_BACKEND_DOWN,
    STAGE_DEPLOY,
    _base,
    _clip,
    _trustee,
)
from ._http import (
    _gateway_error,
    _http,
    _transport_failure,
)


@check(
    "trustee.as_reachable",
    "Attestation Service answers at ${TRUSTEE_URL}/as/ (TNG's as_addr)",
    stage=STAGE_DEPLOY,
    depends=("trustee.url",),
)
async def trustee_as_reachable(ctx: CheckContext) -> Result:
    import httpx

    trustee, skip = _trustee(ctx)
    if trustee is None:
        return skip  # type: ignore[return-value]
    as_base = _base(trustee) + "/as"
    timeout = net_timeout(ctx, 0.35)
    probes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", f"{as_base}/challenge", {"tee": "tdx", "tee_params": ""}),
        ("GET", f"{as_base}/certificate", None),
    ]
    evidence: list[Evidence] = []

    def work() -> list[tuple[str, str, httpx.Response | Exception]]:
        out: list[tuple[str, str, httpx.Response | Exception]] = []
        with _http(trustee, timeout) as http:
            for method, url, body in probes:
                try:
                    resp = http.request(method, url, json=body) if body is not None else http.request(method, url)
                except httpx.HTTPError as exc:
                    out.append((method, url, exc))
                    if isinstance(exc, (httpx.TimeoutException, httpx.ConnectError)):
                        break
                    continue
                out.append((method, url, resp))
                if resp.status_code == 200:
                    break
        return out

    answers = await asyncio.to_thread(work)
    backend_down = None
    as_error = None
    for method, url, got in answers:
        if isinstance(got, Exception):
            return _transport_failure(ctx, got, f"{method} {url}", evidence, "Attestation Service")
        text = got.text
        evidence.append(ev(ctx, f"HTTP {got.status_code} {_clip(text, 200)}", f"{method} {url}"))
        if got.status_code == 200:
            what = "challenge" if url.endswith("/challenge") else "certificate"
            return make(
                ctx,
                "pass",
                f"the Attestation Service answers {method} {url.rsplit('/', 1)[1]} (HTTP 200, {what})",
                evidence,
                as_addr=as_base + "/",
            )
        gw = _gateway_error(got)
        if gw is not None:
            backend_down = gw
        elif text.startswith("An internal error occured"):
            as_error = text
    if backend_down:
        return make(
            ctx,
            "fail",
            f"the gateway answers but not the Attestation Service ({backend_down})",
            evidence,
            ("trustee-backend-down", FIX_BACKEND_DOWN),
        )
    if as_error:
        return make(
            ctx,
            "warn",
            "an Attestation Service answers at as_addr but with an internal error",
            evidence,
            ("trustee-backend-down", "Read the attestation-service pod's log for the error chain. " + FIX_BACKEND_DOWN),
        )
    return make(
        ctx,
        "fail",
        f"nothing at {as_base}/ answers as an Attestation Service",
        evidence,
        (
            "trustee-bad-url",
            "TNG's as_addr is ${TRUSTEE_URL}/as/; check that TRUSTEE_URL ends with the release path (e.g. /trustee) "
            "and that the chart's gateway routes /api/as.",
        ),
    )
