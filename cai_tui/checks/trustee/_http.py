"""Trustee checks, shared: the HTTP client of the AS and gateway probes and what a transport failure means."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ...clients.hosts import is_loopback_host
from ..base import CheckContext, Evidence, Result
from ..common import (
    ev,
    make,
)

if TYPE_CHECKING:
    import httpx

    from ...recipe.cai import TrusteeAnswers
from ._common import (
    FIX_UNREACHABLE,
    _verify,
)


def _http(trustee: TrusteeAnswers, timeout: float) -> httpx.Client:
    import httpx

    host = urlsplit(str(trustee.url)).hostname or ""
    return httpx.Client(
        verify=_verify(trustee), timeout=timeout, follow_redirects=False, trust_env=not is_loopback_host(host)
    )


def _gateway_error(resp: httpx.Response) -> str | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    if isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], str):
        return body["error"]
    return None


def _transport_failure(ctx: CheckContext, exc: Exception, url: str, evidence: list[Evidence], what: str) -> Result:
    import httpx

    reason = "timeout" if isinstance(exc, httpx.TimeoutException) else "connect"
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    evidence.append(ev(ctx, text, url))
    why = "did not answer in time" if reason == "timeout" else "is unreachable"
    return make(ctx, "fail", f"the {what} {why}", evidence, ("trustee-unreachable", FIX_UNREACHABLE), reason=reason)
