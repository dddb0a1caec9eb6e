"""inference.health / inference.models / inference.completion against a small server on 127.0.0.1 that speaks vLLM's
OpenAI routes, directly and through an HTTP proxy on 127.0.0.1 (standing in for the TNG client, CAI-6.3); from this
process (httpx) and from a client that is not this process (curl through the target)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from cai_tui.checks.base import CheckContext, Result
from cai_tui.checks.registry import all_checks, get
from cai_tui.checks.runner import CheckOutcome, run_checks
from cai_tui.recipe.model import CaiRecipe
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.base import CommandResult, LineCallback
from cai_tui.targets.local import LocalTarget
from tests.conftest import PROXY_VARS

INFERENCE = ("inference.health", "inference.models", "inference.completion")
ANSWER = " Yes, Traction by Gino Wickman is a book about the Entrepreneurial Operating System (EOS)."
SEED_BODY = {
    "model": "/tmp/model",
    "prompt": "Do you know the book Traction by Gino Wickman",
    "temperature": 0.0,
    "best_of": 1,
    "max_tokens": 132,
    "stream": False,
}


# --- a vLLM-like server --------------------------------------------------------------------------------------------


@dataclass
class VllmServer:
    served: list[str] = field(default_factory=lambda: ["/tmp/model"])
    health_status: int = 200
    requests: list[tuple[str, str, str, Any]] = field(default_factory=list)  # (method, request target, path, body)
    port: int = 0

    def start(self) -> VllmServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, doc: Any) -> None:
                body = json.dumps(doc).encode() if doc is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = urlsplit(self.path).path  # a forwarding proxy sends the absolute form
                owner.requests.append(("GET", self.path, path, None))
                if path == "/health":
                    self._send(owner.health_status, None)
                elif path == "/v1/models":
                    data = [{"id": m, "object": "model", "owned_by": "vllm", "root": m} for m in owner.served]
                    self._send(200, {"object": "list", "data": data})
                else:
                    self._send(404, {"detail": "Not Found"})

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"null")
                owner.requests.append(("POST", self.path, path, body))
                if path not in ("/v1/completions", "/v1/chat/completions"):
                    self._send(404, {"detail": "Not Found"})
                elif body.get("model") not in owner.served:
                    message = f"The model `{body.get('model')}` does not exist."
                    self._send(404, {"object": "error", "message": message, "type": "NotFoundError", "code": 404})
                elif path == "/v1/chat/completions":
                    message = {"role": "assistant", "content": ANSWER.strip()}
                    self._send(
                        200,
                        {
                            "id": "chatcmpl-1",
                            "object": "chat.completion",
                            "model": body["model"],
                            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 20, "total_tokens": 40, "completion_tokens": 20},
                        },
                    )
                else:
                    self._send(
                        200,
                        {
                            "id": "cmpl-1",
                            "object": "text_completion",
                            "model": body["model"],
                            "choices": [{"index": 0, "text": ANSWER, "logprobs": None, "finish_reason": "length"}],
                            "usage": {"prompt_tokens": 10, "total_tokens": 142, "completion_tokens": 132},
                        },
                    )

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- an HTTP proxy: CONNECT tunnels and forwarded absolute-form requests, to 127.0.0.1 only -------------------------


class Proxy:
    """What the TNG client's http_proxy ingress does for the client (without the attestation): CONNECT opens a tunnel,
    an absolute-form request is forwarded. ``refuse`` answers every CONNECT with 502, as TNG does when it cannot
    attest the instance."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.seen: list[tuple[str, str]] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            method, target, _version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            self.seen.append((method, target))
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                if self.refuse or host != "127.0.0.1":
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                    return
                upstream = socket.create_connection((host, int(port)))
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
            else:
                u = urlsplit(target)
                if u.hostname != "127.0.0.1" or u.port is None:
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    return
                upstream = socket.create_connection((u.hostname, u.port))
                upstream.sendall(data)
            with upstream:
                back = threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True)
                back.start()
                self._pipe(conn, upstream)
                back.join(10)

    def close(self) -> None:
        self._stop = True
        self._sock.close()


# --- helpers -------------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on (bound and released; the kernel does not hand it out again at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def recipe(service_port: int, proxy_port: int, *, public_ip: str | None = "127.0.0.1", **service: Any) -> CaiRecipe:
    return CaiRecipe.model_validate(
        {
            "flow": "cai",
            "name": "service-tests",
            "answers": {
                "oss": {"bucket_path": "conf-ai:/qwen2.5-3b-gocryptfs/"},
                "instance": {"public_ip": public_ip},
                "service": {"port": service_port, **service},
                "tng": {"proxy_port": proxy_port},
            },
        }
    )


class CurlClient:
    """A client that is not this process (as an ssh:// client is): commands run here, but the checks cannot use
    httpx in-process with it and must go through its commands (curl)."""

    name = "client-by-commands"

    def __init__(self) -> None:
        self._local = LocalTarget()
        self.commands: list[tuple[str, ...]] = []

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 30.0,
        on_line: LineCallback | None = None,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        self.commands.append(tuple(argv))
        return await self._local.run(argv, stdin=stdin, timeout=timeout, on_line=on_line, env=env)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._local, name)


def run_ids(rec: CaiRecipe | None, client: Any, ids: Iterable[str], timeout: float = 10.0) -> dict[str, CheckOutcome]:
    ctx = CheckContext(recipe=rec, targets={"client": client}, redactor=Redactor(), timeout=timeout)
    return {o.id: o for o in asyncio.run(run_checks(list(all_checks().values()), ctx, only=list(ids), timeout=timeout))}


def run_one(rec: CaiRecipe, client: Any, check_id: str) -> Result:
    ctx = CheckContext(recipe=rec, targets={"client": client}, redactor=Redactor(), timeout=10.0)
    return asyncio.run(get(check_id).run(ctx))


def expect(out: dict[str, CheckOutcome], check_id: str, status: str, faq: str | None = None) -> Result:
    r = out[check_id].result
    assert r.status == status, "\n".join(f"{o.result.status} {cid}: {o.result.summary}" for cid, o in out.items())
    if faq is not None:
        assert r.fix is not None and r.fix.faq_id == faq, r.fix
    if status in ("fail", "warn"):
        assert r.fix is not None and r.fix.text and r.evidence, f"{check_id}: a {status} needs a fix and evidence"
    return r


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in PROXY_VARS:  # everything stays on 127.0.0.1, whatever this shell says
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def vllm() -> Iterator[VllmServer]:
    server = VllmServer().start()
    yield server
    server.stop()


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    p = Proxy()
    yield p
    p.close()


def need_curl() -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: apt-get install -y curl")


# --- tests ---------------------------------------------------------------------------------------------------------


def test_direct_inference_passes_and_sends_the_seed_request(vllm: VllmServer) -> None:
    out = run_ids(recipe(vllm.port, free_port()), LocalTarget(), INFERENCE)
    health = expect(out, "inference.health", "pass")
    assert health.summary == f"http://127.0.0.1:{vllm.port}/health answers 200 (directly (no TNG proxy listening))"
    assert expect(out, "inference.models", "pass").data["served"] == ["/tmp/model"]
    done = expect(out, "inference.completion", "pass")
    assert done.data["text"] == ANSWER and done.data["usage"]["completion_tokens"] == 132
    assert "132 tokens" in done.summary and done.data["proxy"] is None
    posts = [body for method, _t, path, body in vllm.requests if method == "POST"]
    assert posts == [SEED_BODY]
    assert all(not target.startswith("http://") for _m, target, _p, _b in vllm.requests)  # origin form: no proxy


def test_inference_goes_through_the_tng_proxy_when_it_listens(vllm: VllmServer, proxy: Proxy) -> None:
    out = run_ids(recipe(vllm.port, proxy.port), LocalTarget(), INFERENCE)
    for cid in INFERENCE:
        r = expect(out, cid, "pass")
        assert f"through the TNG proxy http://127.0.0.1:{proxy.port}" in r.evidence[0].source
    base = f"http://127.0.0.1:{vllm.port}"
    assert [t for _m, t in proxy.seen] == [f"{base}/health", f"{base}/v1/models", f"{base}/v1/completions"]
    assert [body for m, _t, _p, body in vllm.requests if m == "POST"] == [SEED_BODY]


def test_nothing_listening(vllm: VllmServer) -> None:
    port = free_port()
    out = run_ids(recipe(port, free_port()), LocalTarget(), INFERENCE)
    r = expect(out, "inference.health", "fail", "inference-unreachable")
    assert r.summary == f"no answer from http://127.0.0.1:{port}/health: connection refused"
    assert r.fix is not None and "security group" in r.fix.text
    assert out["inference.models"].result.summary == "skipped: inference.health failed"
    assert out["inference.completion"].result.status == "skip"


def test_unhealthy_server(vllm: VllmServer) -> None:
    vllm.health_status = 503
    r = expect(run_ids(recipe(vllm.port, free_port()), LocalTarget(), ["inference.health"]), "inference.health", "fail")
    assert "answers HTTP 503" in r.summary and r.evidence[0].observed == "HTTP 503"


def test_another_model_served(vllm: VllmServer) -> None:
    vllm.served = ["Qwen2.5-3B-Instruct"]
    rec = recipe(vllm.port, free_port())
    out = run_ids(rec, LocalTarget(), INFERENCE)
    r = expect(out, "inference.models", "fail", "model-not-served")
    assert r.summary == "vLLM serves Qwen2.5-3B-Instruct, not /tmp/model"
    assert '"id": "Qwen2.5-3B-Instruct"' in r.evidence[0].observed
    assert out["inference.completion"].result.status == "skip"
    c = run_one(rec, LocalTarget(), "inference.completion")  # asked anyway: vLLM's own refusal is quoted
    assert c.status == "fail" and c.fix is not None and c.fix.faq_id == "model-not-served"
    assert "The model `/tmp/model` does not exist." in c.summary
    # the recipe naming the served model: all pass
    rec2 = recipe(vllm.port, free_port(), mount_point="/srv/Qwen2.5-3B-Instruct")
    vllm.served = ["/srv/Qwen2.5-3B-Instruct"]
    expect(run_ids(rec2, LocalTarget(), INFERENCE), "inference.completion", "pass")


def test_without_public_ip_or_recipe(vllm: VllmServer) -> None:
    out = run_ids(recipe(vllm.port, free_port(), public_ip=None), LocalTarget(), ["inference.health"])
    assert expect(out, "inference.health", "skip").summary.startswith("instance.public_ip is not set")
    assert expect(run_ids(None, LocalTarget(), ["inference.health"]), "inference.health", "skip").summary.startswith(
        "needs a cai recipe"
    )
    assert vllm.requests == []


def test_a_client_reached_by_commands_uses_curl(vllm: VllmServer, proxy: Proxy) -> None:
    need_curl()
    client = CurlClient()
    out = run_ids(recipe(vllm.port, free_port()), client, INFERENCE)
    for cid in INFERENCE:
        assert "(curl on client-by-commands)" in expect(out, cid, "pass").evidence[0].source
    assert out["inference.completion"].result.data["text"] == ANSWER
    assert [body for m, _t, _p, body in vllm.requests if m == "POST"] == [SEED_BODY]
    assert all(argv[0] == "curl" for argv in client.commands)
    # with the proxy listening, curl goes through it
    out = run_ids(recipe(vllm.port, proxy.port), client, INFERENCE)
    expect(out, "inference.completion", "pass")
    assert f"http://127.0.0.1:{vllm.port}/v1/completions" in [t for _m, t in proxy.seen]
    # and nothing listening: curl's own words
    port = free_port()
    r = expect(run_ids(recipe(port, free_port()), client, ["inference.health"]), "inference.health", "fail")
    assert r.summary.startswith(f"no answer from http://127.0.0.1:{port}/health: curl exit 7:")
