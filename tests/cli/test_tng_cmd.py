"""``cai-tui tng launch|stop`` with the real ``tng`` binary of the tng-sdk wheel, verifying through the in-process lab's
Attestation Service (loopback): launch → the proxy port listens → stop → closed; a port already taken and an AS that
does not answer fail with tng's own log lines."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cai_tui.actions.tng_client import find_binary, meaningful_tail
from cai_tui.recipe import CaiRecipe, load_recipe, save_recipe
from tests.conftest import loopback_env
from tests.render.conftest import with_answers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listens(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "cai-home"


def tng(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "cai_tui.cli.main", "tng", *args],
        capture_output=True,
        text=True,
        env={**loopback_env(), "CAI_TUI_HOME": str(home), **(env or {})},
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def recipe(lab: Any, tmp_path: Path, extra: dict[str, Any]) -> Path:
    base = load_recipe(lab.recipe_path).recipe
    assert isinstance(base, CaiRecipe)
    path = tmp_path / f"recipe-{len(list(tmp_path.glob('recipe-*')))}.yaml"
    save_recipe(with_answers(base, extra), path, backup=False)
    return path


@pytest.fixture(autouse=True)
def need_tng() -> None:
    if find_binary() is None:
        pytest.fail("the tng binary is missing: pip install 'cai-tui[tng]' (tng-sdk)")


def test_launch_listens_and_stop_closes(lab: Any, tmp_path: Path, home: Path) -> None:
    port = free_port()
    path = recipe(lab, tmp_path, {"tng": {"proxy_port": port}})
    try:
        r = tng(home, "launch", "--recipe", str(path))
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"its proxy listens on http://127.0.0.1:{port}" in r.stdout and "config for TNG 2." in r.stdout
        assert listens(port)
        # the proxy is a real HTTP CONNECT proxy: it answers a CONNECT (refusing an unattested peer is its business)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n")
            s.settimeout(15)
            assert s.recv(64).startswith(b"HTTP/1.1 ")
        again = tng(home, "launch", "--recipe", str(path))
        assert again.returncode == 0 and "already runs" in again.stdout
    finally:
        stop = tng(home, "stop")
    assert stop.returncode == 0 and "stopped the TNG client" in stop.stdout, stop.stderr
    assert not listens(port)
    assert "nothing to stop" in tng(home, "stop").stdout


def test_port_taken_fails_with_tngs_own_line(lab: Any, tmp_path: Path, home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = recipe(lab, tmp_path, {"tng": {"proxy_port": port}})
        r = tng(home, "launch", "--recipe", str(path), "--timeout", "15")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Failed to bind http_proxy ingress listener" in r.stderr and "Address already in use" in r.stderr
    assert "already in use before the launch" in r.stderr and "Traceback" not in r.stderr
    assert "nothing to stop" in tng(home, "stop").stdout


def test_unreachable_attestation_service_fails_with_tngs_own_lines(lab: Any, tmp_path: Path, home: Path) -> None:
    port, dead = free_port(), free_port()
    path = recipe(lab, tmp_path, {"tng": {"proxy_port": port}, "trustee": {"url": f"http://127.0.0.1:{dead}/trustee"}})
    r = tng(home, "launch", "--recipe", str(path), "--timeout", "15")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"Failed to fetch certificates from AS at http://127.0.0.1:{dead}/trustee/as/" in r.stderr
    assert "Stack backtrace" not in r.stderr
    assert not listens(port)


def test_without_the_binary_says_how_to_install(tmp_path: Path, home: Path) -> None:
    """An interpreter without tng beside it and a PATH without tng: a venv made for the test (no packages)."""
    import venv

    bare = tmp_path / "bare"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(bare)
    path = tmp_path / "r.yaml"
    save_recipe(
        CaiRecipe.model_validate(
            {
                "flow": "cai",
                "name": "t",
                "answers": {"oss": {"bucket_path": "b-1:/m/"}, "trustee": {"url": "http://127.0.0.1:9/t"}},
            }
        ),
        path,
        backup=False,
    )
    import os

    r = subprocess.run(
        [str(bare / "bin" / "python"), "-m", "cai_tui.cli.main", "tng", "launch", "--recipe", str(path)],
        capture_output=True,
        text=True,
        env={
            **loopback_env(),
            "CAI_TUI_HOME": str(home),
            "PATH": str(bare / "bin"),
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        },
        timeout=60,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the tng binary is not installed here" in r.stderr and "pip install 'cai-tui[tng]'" in r.stderr


def test_meaningful_tail_drops_the_backtrace() -> None:
    log = (
        "2026-01-01T00:00:00Z  INFO tng: Starting tng instance now\n"
        "2026-01-01T00:00:01Z ERROR tng: error=Coco token verifier error\n\nCaused by:\n"
        "    0: Failed to fetch certificates from AS\n\nStack backtrace:\n   0: <unknown>\n   1: main\n"
    )
    assert meaningful_tail(log) == [
        "2026-01-01T00:00:01Z ERROR tng: error=Coco token verifier error",
        "Caused by:",
        "    0: Failed to fetch certificates from AS",
    ]
