"""trustee.gateway_health: the Trustee gateway and its backends report healthy."""

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
    import httpx

from ._common import (
    FIX_BACKEND_DOWN,
    STAGE_DEPLOY,
    _base,
    _clip,
    _trustee,
)
from ._http import (
    _http,
    _transport_failure,
)


@check(
    "trustee.gateway_health",
    "Trustee gateway reports its KBS, AS and RVPS healthy (/api/services-health)",
    stage=STAGE_DEPLOY,
    depends=("trustee.url",),
)
async def trustee_gateway_health(ctx: CheckContext) -> Result:
    import httpx

    trustee, skip = _trustee(ctx)
    if trustee is None:
        return skip  # type: ignore[return-value]
    base = _base(trustee)
    candidates = [f"{base}/services-health", f"{base}/api/services-health"]
    timeout = net_timeout(ctx, 0.35)
    evidence: list[Evidence] = []

    def work() -> list[tuple[str, httpx.Response | Exception]]:
        out: list[tuple[str, httpx.Response | Exception]] = []
        with _http(trustee, timeout) as http:
            for url in candidates:
                try:
                    resp = http.get(url)
                except httpx.HTTPError as exc:
                    out.append((url, exc))
                    break
                out.append((url, resp))
                if resp.status_code != 404:
                    break
        return out

    for url, got in await asyncio.to_thread(work):
        if isinstance(got, Exception):
            return _transport_failure(ctx, got, f"GET {url}", evidence, "Trustee gateway")
        evidence.append(ev(ctx, f"HTTP {got.status_code} {_clip(got.text, 400)}", f"GET {url}"))
        if got.status_code == 404:
            continue
        try:
            doc = got.json()
        except ValueError:
            doc = None
        if got.status_code != 200 or not isinstance(doc, dict) or not doc:
            return make(
                ctx,
                "unknown",
                f"{url} answered HTTP {got.status_code} without a services-health document",
                evidence,
                ("trustee-backend-down", FIX_BACKEND_DOWN),
            )
        states = {
            str(name): (str(v.get("status", "?")), str(v.get("message", "")))
            for name, v in doc.items()
            if isinstance(v, dict)
        }
        bad = {n: s for n, s in states.items() if s[0] != "ok"}
        listing = ", ".join(f"{n} {s[0]}" for n, s in states.items())
        if bad:
            detail = "; ".join(f"{n}: {s[1] or s[0]}" for n, s in bad.items())
            return make(
                ctx,
                "fail",
                f"the gateway reports {', '.join(bad)} not ok ({detail})",
                evidence,
                (
                    "trustee-backend-down",
                    FIX_BACKEND_DOWN + " A KBS whose auth probe fails for a protocol mismatch is also reported here "
                    "(see trustee.auth_nonce).",
                ),
                components={n: s[0] for n, s in states.items()},
            )
        return make(
            ctx, "pass", f"services health: {listing}", evidence, components={n: s[0] for n, s in states.items()}
        )
    return make(ctx, "skip", "no Trustee gateway at this URL (services-health answers 404): a plain KBS", evidence)
