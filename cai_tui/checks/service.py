"""Service checks from the inference client (CAI-5.3/5.4, CAI-6.2..6.4): vLLM's OpenAI routes on the instance and the
TNG client's HTTP CONNECT proxy.

Host and port come from the recipe (``answers.instance.public_ip``, ``answers.service.port``, ``answers.tng.*``). When
the client is this machine the requests are made here with httpx; on another client (``ssh://…``) they run there with
curl, so they leave from the client's address and reach the proxy on the client's loopback. When the TNG proxy
listens, the inference requests go through it (``all_proxy=http://127.0.0.1:41000``, as the seed's CAI-6.3);
otherwise directly, and the evidence says which.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from typing import TYPE_CHECKING, Any

from ..clients.inference import Endpoint, Reply, Unreachable, http, is_local, proxy_url
from ..clients.inference import endpoint as client_endpoint
from ..clients.inference import quote as _quote
from ..clients.inference import source as _source
from .base import CheckContext, Evidence, Result
from .common import cai_answers, describe_os_error, ev, make, no_recipe
from .registry import check

if TYPE_CHECKING:
    from ..targets.base import Target

STAGE_INFERENCE = "inference"
STAGE_CLIENT = "client"
ROLE = "client"
HTTP_TIMEOUT = 15.0
COMPLETION_TIMEOUT = 120.0  # a real model on a real GPU takes a while for 132 tokens
SHARE = 0.8

FIX_UNREACHABLE = "inference-unreachable"
FIX_MODEL = "model-not-served"
FIX_PROXY = "tng-proxy-down"


def _fix_unreachable(base: str, via: str) -> tuple[str, str]:
    return (
        FIX_UNREACHABLE,
        f"vLLM does not answer at {base} ({via}). On the instance: is the inference container up (`docker ps`, "
        "`docker logs` of it; ready when Uvicorn listens), is the CAI stack healthy (cai.containers), does the "
        "security group allow this client on MODEL_SERVICE_PORT (CAI-6.1)? With TNG the instance's port only speaks "
        "TNG: go through the TNG client's proxy (tng.client_proxy).",
    )


async def endpoint(ctx: CheckContext, target: Target) -> tuple[Endpoint | None, Result | None]:
    answers = cai_answers(ctx)
    if answers is None:
        return None, no_recipe()
    ep = await client_endpoint(answers, target)
    if ep is None:
        return None, make(ctx, "skip", "instance.public_ip is not set yet (CAI-3: note the instance's public IP)")
    return ep, None


async def _request(
    ctx: CheckContext,
    target: Target,
    ep: Endpoint,
    method: str,
    url: str,
    source: str,
    timeout: float,
    /,
    body: Any = None,
    **data: Any,
) -> Reply | Result:
    """The HTTP reply, or the failing result when nothing answers (same shape for every inference check)."""
    try:
        return await http(target, method, url, proxy=ep.proxy, timeout=timeout, body=body)
    except Unreachable as e:
        return make(
            ctx,
            "fail",
            f"no answer from {url}: {e}",
            [ev(ctx, str(e), source, target.name)],
            _fix_unreachable(ep.base, ep.via),
            **data,
        )


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


# --- inference.health --------------------------------------------------------------------------------------------------


@check(
    "inference.health",
    "vLLM answers GET /health on the instance's MODEL_SERVICE_PORT",
    stage=STAGE_INFERENCE,
    runs_on=ROLE,
    timeout=HTTP_TIMEOUT,
)
async def inference_health(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    ep, early = await endpoint(ctx, target)
    if ep is None:
        return early  # type: ignore[return-value]
    url = f"{ep.base}/health"
    source = _source("GET", url, ep, target)
    data: dict[str, Any] = {"url": url, "proxy": ep.proxy}
    reply = await _request(ctx, target, ep, "GET", url, source, HTTP_TIMEOUT * SHARE, **data)
    if isinstance(reply, Result):
        return reply
    evidence = [ev(ctx, f"HTTP {reply.status} {_quote(reply.body)}".rstrip(), source, target.name)]
    if reply.status == 200:
        return make(ctx, "pass", f"{url} answers 200 ({ep.via})", evidence, **data)
    return make(
        ctx,
        "fail",
        f"{url} answers HTTP {reply.status}: the server is up but not healthy",
        evidence,
        _fix_unreachable(ep.base, ep.via),
        http_status=reply.status,
        **data,
    )


# --- inference.models --------------------------------------------------------------------------------------------------


@check(
    "inference.models",
    "GET /v1/models lists the served model (MODEL_MOUNT_POINT, e.g. /tmp/model)",
    stage=STAGE_INFERENCE,
    runs_on=ROLE,
    depends=("inference.health",),
    timeout=HTTP_TIMEOUT,
)
async def inference_models(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    ep, early = await endpoint(ctx, target)
    if ep is None:
        return early  # type: ignore[return-value]
    answers = cai_answers(ctx)
    assert answers is not None
    want = answers.service.mount_point
    url = f"{ep.base}/v1/models"
    source = _source("GET", url, ep, target)
    reply = await _request(ctx, target, ep, "GET", url, source, HTTP_TIMEOUT * SHARE)
    if isinstance(reply, Result):
        return reply
    evidence = [ev(ctx, f"HTTP {reply.status} {_quote(reply.body)}", source, target.name)]
    doc = _json(reply.body)
    items = doc.get("data") if isinstance(doc, dict) else None
    if reply.status != 200 or not isinstance(items, list):
        return make(
            ctx,
            "fail",
            f"{url} does not list models (HTTP {reply.status})",
            evidence,
            _fix_unreachable(ep.base, ep.via),
        )
    served = [str(m.get("id")) for m in items if isinstance(m, dict) and m.get("id")]
    data: dict[str, Any] = {"served": served, "expected": want}
    if want in served:
        return make(ctx, "pass", f"vLLM serves {want}", evidence, **data)
    shown = ", ".join(served) if served else "nothing"
    return make(
        ctx,
        "fail",
        f"vLLM serves {shown}, not {want}",
        evidence,
        (
            FIX_MODEL,
            f"The seed starts vLLM with --model={want} (MODEL_MOUNT_POINT) and asks for that name (CAI-5.3/6.4). "
            "Start it with --model=<mount point> (or --served-model-name matching the requests), or set "
            "service.mount_point to what is served.",
        ),
        **data,
    )


# --- inference.completion ----------------------------------------------------------------------------------------------


@check(
    "inference.completion",
    "POST /v1/completions answers the seed's test prompt (CAI-6.4)",
    stage=STAGE_INFERENCE,
    runs_on=ROLE,
    depends=("inference.models",),
    timeout=COMPLETION_TIMEOUT,
)
async def inference_completion(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    ep, early = await endpoint(ctx, target)
    if ep is None:
        return early  # type: ignore[return-value]
    answers = cai_answers(ctx)
    assert answers is not None
    body = {
        "model": answers.service.mount_point,
        "prompt": answers.tng.prompt,
        "temperature": 0.0,
        "best_of": 1,
        "max_tokens": answers.tng.max_tokens,
        "stream": False,
    }
    url = f"{ep.base}/v1/completions"
    source = _source("POST", url, ep, target) + f" (model={body['model']}, max_tokens={body['max_tokens']})"
    reply = await _request(ctx, target, ep, "POST", url, source, COMPLETION_TIMEOUT * SHARE, body=body)
    if isinstance(reply, Result):
        return reply
    doc = _json(reply.body)
    choices = doc.get("choices") if isinstance(doc, dict) else None
    text = choices[0].get("text") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    if reply.status == 200 and isinstance(text, str):
        usage = doc.get("usage") if isinstance(doc, dict) else None
        tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        evidence: list[Evidence] = [ev(ctx, _quote(text), source, target.name)]
        n = f"{tokens} tokens" if tokens is not None else f"{len(text)} characters"
        return make(
            ctx,
            "pass",
            f"the model answered ({n}, {ep.via}): {_quote(text, 80)!r}",
            evidence,
            text=text,
            usage=usage if isinstance(usage, dict) else None,
            proxy=ep.proxy,
        )
    evidence = [ev(ctx, f"HTTP {reply.status} {_quote(reply.body)}", source, target.name)]
    message = str(doc.get("message") or doc.get("error") or "") if isinstance(doc, dict) else ""
    if reply.status in (400, 404) and "model" in (message or reply.body).lower():
        return make(
            ctx,
            "fail",
            f"vLLM refuses the model name {body['model']!r}: {_quote(message or reply.body, 160)}",
            evidence,
            (FIX_MODEL, "Ask for the name /v1/models lists (inference.models); the seed's is MODEL_MOUNT_POINT."),
        )
    return make(
        ctx,
        "fail",
        f"{url} answered HTTP {reply.status} without a completion",
        evidence,
        _fix_unreachable(ep.base, ep.via),
    )


# --- tng.client_proxy --------------------------------------------------------------------------------------------------


async def _connect_here(host: str, port: int, dest: str, timeout: float) -> str:
    """Send CONNECT ``dest`` to the proxy at host:port; the status line it answers. OSError/TimeoutError."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(f"CONNECT {dest} HTTP/1.1\r\nHost: {dest}\r\n\r\n".encode("ascii"))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        return line.decode("latin-1").strip()
    finally:
        writer.close()


@check(
    "tng.client_proxy",
    "The TNG client's HTTP CONNECT proxy (127.0.0.1:41000) answers and opens a tunnel to the instance",
    stage=STAGE_CLIENT,
    runs_on=ROLE,
    timeout=HTTP_TIMEOUT,
)
async def tng_client_proxy(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    answers = cai_answers(ctx)
    if answers is None:
        return no_recipe()
    host, port = answers.tng.proxy_host, int(answers.tng.proxy_port)
    proxy = proxy_url(answers)
    ip = answers.instance.public_ip
    dest = f"{ip}:{answers.service.port}" if ip else None
    timeout = HTTP_TIMEOUT * SHARE
    fix_down = (
        FIX_PROXY,
        "Start the TNG client on this machine (CAI-6.2): `docker run --rm --network=host <tng image>:"
        f"{answers.tng.version} tng launch --config-content '…http_proxy…proxy_listen {{host: {host}, port: {port}}}…'` "
        "(the wizard's tng-client artifact has the full line). If it exits, its log says why: `EAR status is not "
        "affirming` (attestation refused by the policy), `Attestation service … returned HTTP error` (Trustee's /as/ "
        "unreachable from here: the ALB ACL of CAI-4.2/6.1).",
    )
    data: dict[str, Any] = {"proxy": proxy, "connect": dest}
    if is_local(target):
        source = f"CONNECT {dest or '(none)'} via {proxy}"
        try:
            if dest is None:
                _r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
                w.close()
                status_line = ""
            else:
                status_line = await _connect_here(host, port, dest, timeout)
        except (OSError, asyncio.TimeoutError) as e:
            why = describe_os_error(e)
            return make(
                ctx,
                "fail",
                f"nothing answers at {proxy}: {why}",
                [ev(ctx, why, f"connect {host}:{port}", target.name)],
                fix_down,
                **data,
            )
        if dest is None:
            return make(
                ctx,
                "warn",
                f"{proxy} accepts connections, but no CONNECT was tried: instance.public_ip is not set",
                [ev(ctx, "connected", f"connect {host}:{port}", target.name)],
                (FIX_PROXY, "Set instance.public_ip (CAI-3) so the tunnel to the instance can be tried."),
                **data,
            )
        parts = status_line.split()
        code = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    else:
        source = f"curl -p -x {proxy} http://{dest or '…'}/ (on {target.name})"
        if dest is None:
            return make(ctx, "skip", "instance.public_ip is not set yet (CAI-3)", **data)
        argv = ["curl", "-sS", "-p", "-x", proxy, "-o", "/dev/null", "--max-time", f"{timeout:g}"]
        argv += ["-w", "%{http_connect}", f"http://{dest}/health"]
        res = await target.run(argv, timeout=timeout + 5)
        if res.rc == 127:
            return make(ctx, "unknown", f"curl is missing on {target.name}: install curl there", **data)
        if res.rc in (7, 28) and not res.stdout.strip("0 \n"):
            why = res.stderr.strip() or f"curl exit {res.rc}"
            return make(
                ctx,
                "fail",
                f"nothing answers at {proxy}: {why}",
                [ev(ctx, why, shlex.join(argv), target.name)],
                fix_down,
                **data,
            )
        code = int(res.stdout.strip()) if res.stdout.strip().isdigit() else None
        status_line = f"HTTP {code} (curl exit {res.rc}: {res.stderr.strip()})" if res.rc else f"HTTP {code}"
    evidence = [ev(ctx, status_line or "(no answer)", source, target.name)]
    if code == 200:
        return make(ctx, "pass", f"{proxy} opened a tunnel to {dest}: `{status_line}`", evidence, **data)
    return make(
        ctx,
        "fail",
        f"{proxy} answers CONNECT {dest} with `{status_line or 'nothing'}`: the TNG client runs but cannot open the "
        "tunnel (attestation of the instance, or the instance unreachable)",
        evidence,
        fix_down,
        http_status=code,
        **data,
    )
