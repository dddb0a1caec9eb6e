"""tng.client_proxy: the TNG client's HTTP CONNECT proxy on 127.0.0.1 (a tiny CONNECT proxy here), refusing the
tunnel, and nothing listening; from this process and from a client reached by commands (curl -p)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cai_tui.targets.local import LocalTarget
from tests.checks.test_service_inference import (  # noqa: F401  (no_proxy_env is an autouse fixture)
    CurlClient,
    Proxy,
    VllmServer,
    expect,
    free_port,
    need_curl,
    no_proxy_env,
    recipe,
    run_ids,
)

ID = "tng.client_proxy"


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


@pytest.fixture
def refusing_proxy() -> Iterator[Proxy]:
    p = Proxy(refuse=True)
    yield p
    p.close()


def test_proxy_opens_a_tunnel_to_the_instance(vllm: VllmServer, proxy: Proxy) -> None:
    r = expect(run_ids(recipe(vllm.port, proxy.port), LocalTarget(), [ID]), ID, "pass")
    assert r.summary == (
        f"http://127.0.0.1:{proxy.port} opened a tunnel to 127.0.0.1:{vllm.port}: `HTTP/1.1 200 Connection established`"
    )
    assert proxy.seen == [("CONNECT", f"127.0.0.1:{vllm.port}")]
    assert r.evidence[0].source == f"CONNECT 127.0.0.1:{vllm.port} via http://127.0.0.1:{proxy.port}"


def test_proxy_refusing_the_tunnel(vllm: VllmServer, refusing_proxy: Proxy) -> None:
    r = expect(run_ids(recipe(vllm.port, refusing_proxy.port), LocalTarget(), [ID]), ID, "fail", "tng-proxy-down")
    assert "`HTTP/1.1 502 Bad Gateway`" in r.summary and "cannot open the tunnel" in r.summary
    assert r.data["http_status"] == 502 and r.evidence[0].observed == "HTTP/1.1 502 Bad Gateway"
    assert r.fix is not None and "EAR status is not affirming" in r.fix.text


def test_nothing_listens(vllm: VllmServer) -> None:
    port = free_port()
    r = expect(run_ids(recipe(vllm.port, port), LocalTarget(), [ID]), ID, "fail", "tng-proxy-down")
    assert r.summary == f"nothing answers at http://127.0.0.1:{port}: connection refused"
    assert r.fix is not None and "tng launch" in r.fix.text and f"port: {port}" in r.fix.text


def test_without_public_ip_only_the_listener_is_checked(proxy: Proxy) -> None:
    r = expect(run_ids(recipe(8080, proxy.port, public_ip=None), LocalTarget(), [ID]), ID, "warn", "tng-proxy-down")
    assert "no CONNECT was tried" in r.summary and proxy.seen == []


def test_through_a_client_reached_by_commands(vllm: VllmServer, proxy: Proxy, refusing_proxy: Proxy) -> None:
    need_curl()
    client = CurlClient()
    r = expect(run_ids(recipe(vllm.port, proxy.port), client, [ID]), ID, "pass")
    assert "HTTP 200" in r.summary and ("CONNECT", f"127.0.0.1:{vllm.port}") in proxy.seen
    assert client.commands and client.commands[0][:4] == ("curl", "-sS", "-p", "-x")
    r = expect(run_ids(recipe(vllm.port, refusing_proxy.port), client, [ID]), ID, "fail", "tng-proxy-down")
    assert r.data["http_status"] == 502
    port = free_port()
    r = expect(run_ids(recipe(vllm.port, port), client, [ID]), ID, "fail", "tng-proxy-down")
    assert r.summary.startswith(f"nothing answers at http://127.0.0.1:{port}:")
