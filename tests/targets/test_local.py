"""LocalTarget against real subprocesses and the real filesystem."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import time

import pytest

from cai_tui.targets.base import Target
from cai_tui.targets.local import LocalTarget
from tests.targets.proclib import pid_alive, wait_gone


@pytest.fixture
def local() -> LocalTarget:
    return LocalTarget()


def test_is_a_target(local: LocalTarget) -> None:
    assert isinstance(local, Target)
    assert local.name == "local"


async def test_run_separates_streams_and_returns_rc(local: LocalTarget) -> None:
    lines: list[tuple[str, str]] = []
    r = await local.run(
        ["sh", "-c", "echo one; echo two >&2; printf 'no newline'; exit 3"],
        on_line=lambda s, line: lines.append((s, line)),
    )
    assert r.rc == 3 and not r.ok
    assert r.stdout == "one\nno newline"
    assert r.stderr == "two\n"
    assert ("stdout", "one") in lines and ("stderr", "two") in lines and ("stdout", "no newline") in lines
    assert r.argv == ("sh", "-c", "echo one; echo two >&2; printf 'no newline'; exit 3")
    assert r.target == "local"


async def test_lines_stream_as_they_come(local: LocalTarget) -> None:
    seen: list[tuple[float, str]] = []
    t0 = time.monotonic()
    r = await local.run(
        ["sh", "-c", "echo first; sleep 1; echo second"],
        on_line=lambda s, line: seen.append((time.monotonic() - t0, line)),
    )
    assert r.rc == 0
    assert [line for _, line in seen] == ["first", "second"]
    assert seen[0][0] < 0.6, f"the first line came only after {seen[0][0]:.2f}s: not streamed"
    assert seen[1][0] >= 0.9


async def test_timeout_kills_the_process_group_and_keeps_output(local: LocalTarget) -> None:
    t0 = time.monotonic()
    r = await local.run(["sh", "-c", "echo started; sleep 30 & echo $!; sleep 30"], timeout=0.5)
    elapsed = time.monotonic() - t0
    assert r.rc == 124
    assert elapsed < 2.5, f"timeout 0.5 s took {elapsed:.2f}s"
    assert r.stdout.startswith("started\n")
    assert "timed out after 0.5s" in r.stderr
    background = int(r.stdout.split()[1])
    assert wait_gone([background]) == [], "the background child of the timed-out command survived"


async def test_missing_command_is_127(local: LocalTarget) -> None:
    r = await local.run(["cai-tui-no-such-command-xyz", "--version"])
    assert r.rc == 127
    assert "cai-tui-no-such-command-xyz" in r.stderr and "not found" in r.stderr


async def test_signal_exit_is_128_plus_signal(local: LocalTarget) -> None:
    r = await local.run(["sh", "-c", "kill -TERM $$"])
    assert r.rc == 128 + 15


async def test_stdin_large_without_deadlock(local: LocalTarget) -> None:
    data = os.urandom(3 * 1024 * 1024)
    r = await local.run(["sh", "-c", "wc -c; echo done >&2"], stdin=data, timeout=20)
    assert r.rc == 0 and r.stdout.strip() == str(len(data)) and r.stderr == "done\n"
    r = await local.run(["cat"], stdin=b"hello\nworld\n")
    assert r.stdout == "hello\nworld\n"


async def test_env_adds_to_the_environment(local: LocalTarget) -> None:
    r = await local.run(["sh", "-c", 'echo "$CAI_TEST_VAR|$PATH"'], env={"CAI_TEST_VAR": "a b"})
    value, path = r.stdout.strip().split("|")
    assert value == "a b" and path == os.environ["PATH"]


async def test_bad_utf8_is_replaced_not_fatal(local: LocalTarget) -> None:
    r = await local.run([sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'ok \\xff\\xfe end\\n')"])
    assert r.rc == 0 and r.stdout == "ok \ufffd\ufffd end\n"


async def test_cancellation_kills_the_command(local: LocalTarget) -> None:
    pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_line(stream: str, line: str) -> None:
        if not pid.done():
            pid.set_result(int(line))

    task = asyncio.ensure_future(local.run(["sh", "-c", "echo $$; exec sleep 30"], on_line=on_line, timeout=60))
    child = await asyncio.wait_for(pid, 5)
    assert pid_alive(child)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_gone([child]) == []


async def test_write_file_is_atomic_with_mode(local: LocalTarget, tmp_path) -> None:
    path = tmp_path / "conf" / "cai.env"
    path.parent.mkdir()
    await local.write_file(str(path), b"A=1\n", mode=0o640)
    assert path.read_bytes() == b"A=1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    before = path.stat().st_ino
    await local.write_file(str(path), b"A=2\n")
    assert path.read_bytes() == b"A=2\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != before, "not replaced by rename"
    assert sorted(os.listdir(path.parent)) == ["cai.env"], "a temporary file was left behind"
    with pytest.raises(FileNotFoundError):
        await local.write_file(str(tmp_path / "missing-dir" / "x"), b"")


async def test_read_exists_listdir_readlink_which(local: LocalTarget, tmp_path) -> None:
    (tmp_path / "big").write_bytes(b"0123456789")
    (tmp_path / "sub").mkdir()
    os.symlink("big", tmp_path / "link")
    os.symlink("nowhere", tmp_path / "dangling")
    assert await local.read_file(str(tmp_path / "big")) == b"0123456789"
    assert await local.read_file(str(tmp_path / "big"), max_bytes=4) == b"0123"
    assert await local.read_file(str(tmp_path / "link")) == b"0123456789"
    with pytest.raises(FileNotFoundError):
        await local.read_file(str(tmp_path / "absent"))
    assert await local.exists(str(tmp_path / "sub"))
    assert not await local.exists(str(tmp_path / "absent"))
    assert not await local.exists(str(tmp_path / "dangling"))
    assert await local.listdir(str(tmp_path)) == ["big", "dangling", "link", "sub"]
    with pytest.raises(FileNotFoundError):
        await local.listdir(str(tmp_path / "absent"))
    assert await local.readlink(str(tmp_path / "link")) == "big"
    assert await local.readlink(str(tmp_path / "dangling")) == "nowhere"
    assert await local.readlink(str(tmp_path / "big")) is None
    with pytest.raises(FileNotFoundError):
        await local.readlink(str(tmp_path / "absent"))
    sh = await local.which("sh")
    assert sh is not None and os.path.isabs(sh) and os.access(sh, os.X_OK)
    assert await local.which("cai-tui-no-such-command-xyz") is None
