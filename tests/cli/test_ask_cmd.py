"""``cai-tui ask`` (CAI-6.4) against the vLLM-like server of the service checks on 127.0.0.1, directly and through the
HTTP proxy standing in for the TNG client; the request is the OpenAI chat completion for the served name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cai_tui.recipe import save_recipe
from tests.checks.test_service_inference import ANSWER, Proxy, VllmServer, free_port, recipe
from tests.conftest import loopback_env
from tests.helpers import run_cli


@pytest.fixture
def vllm() -> Iterator[VllmServer]:
    server = VllmServer().start()
    yield server
    server.stop()


def ask(tmp_path: Path, service_port: int, proxy_port: int, *args: str, **service: Any) -> Any:
    path = tmp_path / "recipe.yaml"
    save_recipe(recipe(service_port, proxy_port, **service), path, backup=False)
    return run_cli("ask", "--recipe", str(path), *args, env=loopback_env())


def chats(vllm: VllmServer) -> list[Any]:
    return [body for method, _t, path, body in vllm.requests if method == "POST" and path == "/v1/chat/completions"]


def test_direct_answer(vllm: VllmServer, tmp_path: Path) -> None:
    r = ask(tmp_path, vllm.port, free_port(), "--prompt", "What is EOS?", "--max-tokens", "20")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ANSWER.strip()
    assert f"at http://127.0.0.1:{vllm.port}/v1/chat/completions directly (no TNG proxy listening)" in r.stderr
    assert chats(vllm) == [
        {
            "model": "/tmp/model",
            "messages": [{"role": "user", "content": "What is EOS?"}],
            "max_tokens": 20,
            "temperature": 0.0,
            "stream": False,
        }
    ]


def test_through_the_proxy_with_json_and_the_recipes_prompt(vllm: VllmServer, tmp_path: Path) -> None:
    proxy = Proxy()
    try:
        vllm.served = ["/srv/qwen"]
        r = ask(tmp_path, vllm.port, proxy.port, "--json", mount_point="/srv/qwen/")
    finally:
        proxy.close()
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["answer"] == ANSWER.strip() and out["proxy"] == f"http://127.0.0.1:{proxy.port}"
    assert out["via"].startswith("through the TNG proxy") and out["model"] == "/srv/qwen"
    assert out["usage"]["completion_tokens"] == 20
    (body,) = chats(vllm)
    assert (
        body["messages"][0]["content"] == "Do you know the book Traction by Gino Wickman" and body["max_tokens"] == 132
    )
    assert f"http://127.0.0.1:{vllm.port}/v1/chat/completions" in [t for _m, t in proxy.seen]


def test_failures_name_the_faq_fix(vllm: VllmServer, tmp_path: Path) -> None:
    dead = free_port()
    r = ask(tmp_path, dead, free_port())
    assert r.returncode == 1 and r.stdout == ""
    assert (
        f"no answer from http://127.0.0.1:{dead}/v1/chat/completions" in r.stderr and "connection refused" in r.stderr
    )
    assert "FAQ inference-unreachable" in r.stderr and "Traceback" not in r.stderr
    vllm.served = ["Qwen2.5-3B-Instruct"]
    r = ask(tmp_path, vllm.port, free_port(), "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["answer"] is None and out["faq"] == "model-not-served" and "does not exist" in out["error"]
    r = ask(tmp_path, vllm.port, free_port(), public_ip=None)
    assert r.returncode == 2 and "instance.public_ip is not set" in r.stderr
