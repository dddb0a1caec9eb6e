"""Trustee checks: the URL, the KBS handshake (seed CAI-2.5), the Attestation Service, the gateway, the model key.

All of them talk to ``answers.trustee.url`` (the seed's ``TRUSTEE_URL``, ``http://<alb>/<release>``) from this process
with the real KBS client; none of them changes anything on the server.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .base import CheckContext, Evidence, Result
from .common import (
    cai_answers,
    describe_os_error,
    ev,
    ip_literal,
    is_loopback_host,
    is_timeout,
    make,
    net_timeout,
    no_recipe,
    resolve,
    resolve_timeout,
    timed_out,
)
from .registry import check

if TYPE_CHECKING:
    import httpx

    from ..clients.kbs import KbsError
    from ..recipe.cai import TrusteeAnswers

STAGE_DEPLOY = "trustee-deploy"
STAGE_KEY = "model-key"
SLOW_SHARE = 0.5  # an answer slower than this share of the budget is reported as slow

FIX_UNREACHABLE = (
    "Check TRUSTEE_URL (trustee.url), DNS, the ALB access-control list of CAI-4.2 (this machine's egress IP must be in "
    "the policy group) and security groups; `kubectl get pods -n <namespace>` shows whether the Trustee pods run."
)
FIX_BACKEND_DOWN = (
    "The Trustee gateway answers but its backend pods do not: `kubectl get pods -n <namespace>` in the ACK cluster, "
    "look at the kbs / attestation-service pods' logs and restart them (`kubectl rollout restart deployment …`)."
)


def _trustee(ctx: CheckContext) -> tuple[TrusteeAnswers | None, Result | None]:
    answers = cai_answers(ctx)
    if answers is None:
        return None, no_recipe()
    if not answers.trustee.url:
        return None, Result("skip", "trustee.url is not set yet (CAI-2.4)")
    return answers.trustee, None


def _verify(trustee: TrusteeAnswers) -> bool | str:
    if not trustee.verify_tls:
        return False
    if trustee.ca_file:
        return os.path.expanduser(trustee.ca_file)
    return True


def _base(trustee: TrusteeAnswers) -> str:
    return str(trustee.url)  # the model holds it without a trailing slash


def _clip(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# --------------------------------------------------------------------------------------------- trustee.url


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


# --------------------------------------------------------------------------------------------- trustee.auth_nonce


def _kbs_error_result(ctx: CheckContext, exc: KbsError, evidence: list[Evidence], what: str) -> Result:
    """Map a KBS client error to a failing result (shared by the handshake and resource checks)."""
    from ..clients.kbs import KbsProtocolMismatch, KbsUnreachable

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
    from ..clients.kbs import KbsError, KbsProtocolMismatch

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
    from ..clients.kbs import KbsClient, KbsError, KbsProtocolMismatch

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


# --------------------------------------------------------------------------------------------- HTTP helpers


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


# --------------------------------------------------------------------------------------------- trustee.as_reachable


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


# --------------------------------------------------------------------------------------------- trustee.gateway_health


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


# --------------------------------------------------------------------------------------------- trustee.resource


@check(
    "trustee.resource",
    "Trustee releases the MODEL_KEY_ID resource after attestation (sample evidence)",
    stage=STAGE_KEY,
    depends=("trustee.auth_nonce",),
)
async def trustee_resource(ctx: CheckContext) -> Result:
    from ..clients.kbs import KbsClient, KbsError, parse_kbs_uri

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
    from ..clients.kbs import KbsUnreachable

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
