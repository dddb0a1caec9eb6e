"""The one HTTP client of the inference service (vLLM's OpenAI routes on the instance, CAI-5.3/6.4), used by the
service checks and by ``cai-tui ask``.

Host and port come from the recipe (``answers.instance.public_ip``, ``answers.service.port``). When the TNG client's
HTTP CONNECT proxy listens (``answers.tng.proxy_host:proxy_port``), requests go through it (``all_proxy=…``, as the
seed's CAI-6.3); otherwise directly, and :attr:`Endpoint.via` says which. On this machine requests are made with
httpx; on another client (``ssh://…``) they run there with curl, so they leave from the client's address and reach
the proxy on the client's loopback.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..recipe.cai import CaiAnswers
    from ..targets.base import Target

PROXY_PROBE_S = 2.0
BODY_QUOTE = 300


class Unreachable(Exception):
    """The request got no HTTP answer: refused, timed out, DNS, proxy refused the tunnel, curl missing."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: str

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    proxy: str | None  # http://127.0.0.1:41000 when the TNG proxy listens

    @property
    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def via(self) -> str:
        return f"through the TNG proxy {self.proxy}" if self.proxy else "directly (no TNG proxy listening)"


def is_local(target: Target) -> bool:
    from ..targets.local import LocalTarget

    return isinstance(target, LocalTarget)


def quote(text: str, limit: int = BODY_QUOTE) -> str:
    """One line, at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def proxy_url(answers: CaiAnswers) -> str:
    host = answers.tng.proxy_host
    return f"http://{f'[{host}]' if ':' in host else host}:{answers.tng.proxy_port}"


def served_name(answers: CaiAnswers) -> str:
    """The model name vLLM serves: MODEL_MOUNT_POINT (``--model=/tmp/model``), without a trailing slash."""
    name = str(answers.service.mount_point)
    return name.rstrip("/") or name


async def proxy_listens(target: Target, answers: CaiAnswers) -> bool:
    host, port = answers.tng.proxy_host, answers.tng.proxy_port
    if is_local(target):
        try:
            _r, w = await asyncio.wait_for(asyncio.open_connection(host, port), PROXY_PROBE_S)
        except (OSError, asyncio.TimeoutError):
            return False
        w.close()
        return True
    res = await target.run(
        [
            "curl",
            "-sS",
            "--noproxy",
            "*",
            "-o",
            "/dev/null",
            "--max-time",
            str(PROXY_PROBE_S),
            proxy_url(answers) + "/",
        ],
        timeout=PROXY_PROBE_S + 3,
    )
    return res.rc not in (7, 28, 127)  # 7: refused, 28: timed out, 127: no curl


async def endpoint(answers: CaiAnswers, target: Target) -> Endpoint | None:
    """Where the inference service answers, through the proxy when it listens; None without instance.public_ip."""
    if not answers.instance.public_ip:
        return None
    proxy = proxy_url(answers) if await proxy_listens(target, answers) else None
    return Endpoint(str(answers.instance.public_ip), int(answers.service.port), proxy)


async def http(target: Target, method: str, url: str, *, proxy: str | None, timeout: float, body: Any = None) -> Reply:
    """One HTTP request from the client: httpx here, curl on another client. Unreachable when there is no answer."""
    if is_local(target):
        import httpx

        try:
            async with httpx.AsyncClient(proxy=proxy, trust_env=False, timeout=timeout) as client:
                resp = await client.request(method, url, json=body)
                return Reply(resp.status_code, resp.text)
        except httpx.ProxyError as e:
            raise Unreachable(f"the proxy {proxy} refused: {e}") from None
        except httpx.TimeoutException:
            raise Unreachable(f"timed out after {timeout:g}s") from None
        except httpx.HTTPError as e:
            raise Unreachable(why(e)) from None
    argv = ["curl", "-sS", "-X", method, "--max-time", f"{timeout:g}", "-w", "\n%{http_code}"]
    argv += ["-x", proxy] if proxy else ["--noproxy", "*"]  # the client's own proxy variables do not decide
    stdin = None
    if body is not None:
        argv += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        stdin = json.dumps(body).encode()
    res = await target.run([*argv, url], stdin=stdin, timeout=timeout + 5)
    if res.rc == 127:
        raise Unreachable(f"curl is missing on {target.name}: install curl there")
    if res.rc != 0:
        raise Unreachable(f"curl exit {res.rc}: {res.stderr.strip() or 'no answer'}")
    text, _, code = res.stdout.rpartition("\n")
    try:
        return Reply(int(code.strip()), text)
    except ValueError:
        raise Unreachable(f"curl printed no status code: {quote(res.stdout)}") from None


def why(exc: BaseException) -> str:
    """The OS error under an httpx error ("connection refused"), else httpx's own words."""
    found: OSError | None = None
    seen: BaseException | None = exc
    for _ in range(8):  # the deepest OS error says most: anyio wraps "connection refused" in a generic OSError
        if seen is None:
            break
        if isinstance(seen, OSError) and (found is None or seen.errno is not None):
            found = seen
        seen = seen.__cause__ or seen.__context__
    return _describe(found) if found is not None else (str(exc) or type(exc).__name__)


def _describe(exc: OSError) -> str:
    """The words the checks use for an OS error (as :func:`cai_tui.checks.common.describe_os_error`)."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"DNS: {exc.strerror or exc}"
    return str(exc.strerror or exc or type(exc).__name__)


def source(method: str, url: str, ep: Endpoint, target: Target) -> str:
    """How a request is described in evidence and messages."""
    where = "" if is_local(target) else f" (curl on {target.name})"
    return f"{method} {url} {ep.via}{where}"


def chat_body(answers: CaiAnswers, prompt: str, max_tokens: int) -> dict[str, Any]:
    """An OpenAI-style chat completion request for the served model."""
    return {
        "model": served_name(answers),
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": False,
    }


def chat_answer(doc: Any) -> str | None:
    """The text of the first choice of a chat completion (or a plain completion), else None."""
    choices = doc.get("choices") if isinstance(doc, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    first = choices[0]
    message = first.get("message")
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        return str(message["content"])
    text = first.get("text")
    return text if isinstance(text, str) else None


__all__ = [
    "Endpoint",
    "Reply",
    "Unreachable",
    "chat_answer",
    "chat_body",
    "endpoint",
    "http",
    "is_local",
    "proxy_listens",
    "proxy_url",
    "quote",
    "served_name",
    "source",
    "why",
]
