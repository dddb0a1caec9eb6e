"""DockerExecTarget and CtrTarget against a real container on the local Docker engine (and its containerd)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cai_tui.targets.base import Target, TargetError
from cai_tui.targets.container import CtrTarget, DockerExecTarget
from cai_tui.targets.parse import target_from_uri
from tests.targets.docker_lab import docker, ensure_engine, ensure_image, find_containerd_socket
from tests.targets.proclib import pids_with_cmdline, wait_gone


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(name, full id) of a running busybox container; removed afterwards."""
    ensure_engine()
    image = ensure_image(tmp_path_factory.mktemp("image"))
    name = f"cai-tui-test-{secrets.token_hex(4)}"
    cid = docker("run", "-d", "--name", name, "--label", "cai-tui-test=1", image, "sleep", "3600").stdout.strip()
    try:
        yield name, cid
    finally:
        docker("rm", "-f", name, check=False)


@pytest.fixture(scope="module")
def ctr_address(container: tuple[str, str]) -> str:
    return find_containerd_socket(container[1])


@pytest.fixture
def dock(container: tuple[str, str]) -> DockerExecTarget:
    return DockerExecTarget(container[0])


@pytest.fixture
def ctr(container: tuple[str, str], ctr_address: str) -> CtrTarget:
    return CtrTarget(container[1], namespace="moby", address=ctr_address)


@pytest.fixture(params=["docker", "ctr"])
def target(request: pytest.FixtureRequest, container: tuple[str, str]) -> Target:
    return request.getfixturevalue("dock" if request.param == "docker" else "ctr")  # type: ignore[no-any-return]


async def test_run_streams_and_returns_rc(target: Target) -> None:
    assert isinstance(target, Target)
    seen: list[tuple[float, str, str]] = []
    t0 = time.monotonic()
    r = await target.run(
        ["sh", "-c", "echo one; sleep 0.8; echo two >&2; printf tail; exit 3"],
        on_line=lambda s, line: seen.append((time.monotonic() - t0, s, line)),
    )
    assert r.rc == 3
    assert r.stdout == "one\ntail" and r.stderr == "two\n"
    assert [(s, line) for _, s, line in seen] == [("stdout", "one"), ("stderr", "two"), ("stdout", "tail")]
    assert seen[0][0] < 0.6 and seen[1][0] >= 0.7, f"lines did not stream: {seen}"
    assert r.target == target.name


async def test_stdin_env_missing_command(target: Target) -> None:
    data = bytes(range(256)) * 1024
    r = await target.run(["wc", "-c"], stdin=data)
    assert r.rc == 0 and r.stdout.strip() == str(len(data))
    r = await target.run(["cat"], stdin=b"line 1\nline 2\n")
    assert r.stdout == "line 1\nline 2\n"
    r = await target.run(["sh", "-c", 'printf "%s" "$CAI_X"'], env={"CAI_X": "a b'c"})
    assert r.stdout == "a b'c"
    r = await target.run(["cai-tui-no-such-command"])
    assert r.rc == 127 and "executable file not found" in r.stderr
    r = await target.run(["sh", "-c", "exit 0"])
    assert r.rc == 0 and r.ok


async def test_timeout_kills_the_command_in_the_container(target: Target) -> None:
    seconds = str(9000 + secrets.randbelow(900))
    t0 = time.monotonic()
    r = await target.run(["sleep", seconds], timeout=0.7)
    assert r.rc == 124 and time.monotonic() - t0 < 4
    assert "timed out after 0.7s" in r.stderr
    # the container's processes are this machine's processes: the sleep must be gone
    deadline = time.monotonic() + 3
    while pids_with_cmdline("sleep", seconds) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert pids_with_cmdline("sleep", seconds) == [], "the timed-out command still runs in the container"


async def test_cancellation_kills_the_command(target: Target) -> None:
    seconds = str(9000 + secrets.randbelow(900))
    task = asyncio.ensure_future(target.run(["sleep", seconds], timeout=60))
    deadline = time.monotonic() + 5
    while not pids_with_cmdline("sleep", seconds):
        assert time.monotonic() < deadline, "the command never started"
        await asyncio.sleep(0.05)
    pids = pids_with_cmdline("sleep", seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_gone(pids, timeout=10) == []  # SIGKILL sent; on a loaded machine the kernel may take a moment


async def test_files(target: Target) -> None:
    folder = f"/work/{type(target).__name__}-{secrets.token_hex(3)}"
    assert (await target.run(["mkdir", "-p", folder])).rc == 0
    path = f"{folder}/cai.env"
    payload = bytes(range(256)) * 3
    await target.write_file(path, payload, mode=0o640)
    assert await target.read_file(path) == payload
    assert (await target.run(["stat", "-c", "%a %s", path])).stdout.split() == ["640", str(len(payload))]
    await target.write_file(path, b"second\n")
    assert await target.read_file(path) == b"second\n"
    assert (await target.run(["stat", "-c", "%a", path])).stdout.strip() == "600"
    assert await target.listdir(folder) == ["cai.env"], "a temporary file was left behind"
    assert await target.read_file(path, max_bytes=3) == b"sec"
    assert await target.read_file("/bin/sh", max_bytes=4) == b"\x7fELF"  # through the applet link
    assert await target.exists(path) and await target.exists("/bin/sh") and await target.exists(folder)
    assert not await target.exists(f"{folder}/absent")
    with pytest.raises(FileNotFoundError):
        await target.read_file(f"{folder}/absent")
    with pytest.raises(IsADirectoryError):
        await target.read_file(folder)
    with pytest.raises(FileNotFoundError):
        await target.write_file("/no/such/dir/x", b"")
    with pytest.raises(FileNotFoundError):
        await target.listdir(f"{folder}/absent")
    assert "sh" in await target.listdir("/bin")
    assert await target.readlink("/bin/sh") == "busybox"
    assert await target.readlink("/bin/busybox") is None
    with pytest.raises(FileNotFoundError):
        await target.readlink(f"{folder}/absent")
    assert await target.which("sh") == "/bin/sh"
    assert await target.which("cai-tui-no-such-command") is None
    assert b"cai-tui-test" in await target.read_file("/etc/os-release")


async def test_docker_container_gone_is_a_target_error() -> None:
    t = DockerExecTarget(f"cai-tui-absent-{secrets.token_hex(4)}")
    with pytest.raises(TargetError, match="no such container"):
        await t.run(["true"])
    with pytest.raises(TargetError, match="no such container"):
        await t.read_file("/etc/os-release")
    await t.close()


async def test_ctr_unknown_task_is_a_target_error(ctr_address: str) -> None:
    t = CtrTarget(f"cai-tui-absent-{secrets.token_hex(4)}", namespace="moby", address=ctr_address)
    with pytest.raises(TargetError, match="not found"):
        await t.run(["true"])


async def test_uris(container: tuple[str, str], ctr_address: str) -> None:
    d = target_from_uri(f"docker://{container[0]}")
    assert isinstance(d, DockerExecTarget) and d.name == f"docker://{container[0]}"
    assert (await d.run(["echo", "via-uri"])).stdout == "via-uri\n"
    await d.close()
    c = target_from_uri(f"ctr://moby/{container[1]}?address={ctr_address}")
    assert isinstance(c, CtrTarget) and c.namespace == "moby" and c.address == ctr_address
    assert (await c.run(["echo", "via-uri"])).stdout == "via-uri\n"
    k = target_from_uri("ctr://abc123")
    assert isinstance(k, CtrTarget) and k.namespace == "k8s.io" and k.task == "abc123"


def test_image_is_built_locally(container: tuple[str, str], tmp_path: Path) -> None:
    out = docker("inspect", "-f", "{{.Config.Image}} {{.State.Running}}", container[0]).stdout.split()
    assert out == ["cai-tui-test/busybox:latest", "true"]
