"""trustee.url: the Trustee URL is well-formed and its host resolves (an IP literal needs no resolution)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from ...clients.hosts import is_loopback_host
from ..base import CheckContext, Result
from ..common import (
    describe_os_error,
    ev,
    ip_literal,
    is_timeout,
    make,
    resolve,
    resolve_timeout,
    timed_out,
)
from ..registry import check
from ._common import (
    STAGE_DEPLOY,
    _base,
    _trustee,
)


@check("trustee.url", "Trustee URL is well-formed and its host resolves", stage=STAGE_DEPLOY)
async def trustee_url(ctx: CheckContext) -> Result:
    trustee, skip = _trustee(ctx)
    if trustee is None:
        return skip  # type: ignore[return-value]
    url = _base(trustee)
    parts = urlsplit(url)
    source = "answers.trustee.url"
    evidence = [ev(ctx, url, source)]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return make(
            ctx,
            "fail",
            f"TRUSTEE_URL {url!r} has no http:// or https:// scheme or no host",
            evidence,
            (
                "trustee-bad-url",
                "Write the URL with its scheme, e.g. http://alb-xxxx.cn-shanghai.alb.aliyuncsslb.com/trustee; without "
                "it the containers fail with 'builder error for url'.",
            ),
        )
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    deadline = resolve_timeout(ctx, 0.8)
    try:
        addrs = await resolve(host, port, deadline)
    except (OSError, asyncio.TimeoutError) as exc:
        evidence.append(ev(ctx, f"{host}: {describe_os_error(exc)}", f"getaddrinfo({host!r}, {port})"))
        if is_timeout(exc):
            return timed_out(ctx, f"resolving the Trustee host {host}", deadline, evidence)
        return make(
            ctx,
            "fail",
            f"the Trustee host {host} does not resolve ({describe_os_error(exc)})",
            evidence,
            (
                "trustee-bad-url",
                "Take the host from `kubectl get AlbConfig alb -o jsonpath='{.status.loadBalancer.dnsname}'` (CAI-2.4) "
                "and check DNS on this machine.",
            ),
        )
    literal = ip_literal(host) is not None
    evidence.append(
        ev(ctx, f"{host} is an IP address (nothing to resolve)", source)
        if literal
        else ev(ctx, f"{host} → {', '.join(addrs)}", f"getaddrinfo({host!r}, {port})")
    )
    warnings: list[str] = []
    if parts.scheme == "http" and not is_loopback_host(host):
        warnings.append(
            "plain http: the attestation exchange and the sealed model key cross the network without TLS "
            "(the seed's URL is http; prefer an HTTPS listener on the ALB)"
        )
    if not trustee.verify_tls:
        warnings.append("trustee.verify_tls is false: the server certificate is not checked (like the seed's curl -k)")
        evidence.append(ev(ctx, "verify_tls: false", "answers.trustee.verify_tls"))
    if warnings:
        return make(
            ctx,
            "warn",
            "; ".join(warnings),
            evidence,
            (
                "trustee-insecure-transport",
                "Serve Trustee over HTTPS (an HTTPS listener with a certificate on the ALB), set trustee.url to https://…, "
                "and keep trustee.verify_tls true (give trustee.ca_file for a private CA).",
            ),
            addresses=addrs,
        )
    note = " (loopback: plain http stays on this machine)" if parts.scheme == "http" else ""
    said = f"{host} is an IP address" if literal else f"{host} resolves to {', '.join(addrs)}"
    return make(ctx, "pass", f"{said}{note}", evidence, addresses=addrs)
