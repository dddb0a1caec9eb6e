"""This machine: asyncio subprocesses in their own process group, files through the local filesystem."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence

from ._lines import LineSplitter, timeout_note
from .base import CommandResult, LineCallback

READ_CHUNK = 64 * 1024
DRAIN_AFTER_KILL_S = 1.0  # a grandchild that left the group may hold the pipes open; stop reading after this


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the whole process group (the child leads its own session, so this is everything it started)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


async def _pump(reader: asyncio.StreamReader | None, splitter: LineSplitter) -> None:
    if reader is None:
        return
    while True:
        chunk = await reader.read(READ_CHUNK)
        if not chunk:
            return
        splitter.feed(chunk)


async def _feed_stdin(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
        await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the command did not read all of it; its exit status says whether that mattered
    finally:
        proc.stdin.close()


def _read_capped(path: str, max_bytes: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(max(0, max_bytes))


def _write_atomic(path: str, data: bytes, mode: int) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".cai-tmp", dir=directory)
    try:
        os.fchmod(fd, mode & 0o7777)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _readlink(path: str) -> str | None:
    if not os.path.lexists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    return os.readlink(path) if os.path.islink(path) else None


class LocalTarget:
    """Commands run here. ``env`` adds to (and overrides) this process's environment."""

    def __init__(self, name: str = "local") -> None:
        self.name = name

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 30.0,
        on_line: LineCallback | None = None,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        args = tuple(argv)
        if not args:
            raise ValueError("run() needs a command")
        started = time.monotonic()

        def result(rc: int, out: str, err: str) -> CommandResult:
            return CommandResult(args, rc, out, err, time.monotonic() - started, self.name)

        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, **env} if env else None,
                start_new_session=True,
            )
        except FileNotFoundError:
            return result(
                127,
                "",
                f"{args[0]}: command not found (not on PATH of {self.name}: install it or give its full path)\n",
            )
        except PermissionError as e:
            return result(126, "", f"{args[0]}: cannot execute: {e.strerror}\n")

        out = LineSplitter("stdout", on_line)
        err = LineSplitter("stderr", on_line)
        pumps = [asyncio.ensure_future(_pump(proc.stdout, out)), asyncio.ensure_future(_pump(proc.stderr, err))]
        feeder = asyncio.ensure_future(_feed_stdin(proc, stdin)) if stdin is not None else None
        everything = asyncio.gather(*pumps, proc.wait())
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(everything), timeout)
        except asyncio.TimeoutError:
            timed_out = True
            _kill_group(proc)
            await proc.wait()
            # the pipes close once every holder is dead; read what is left, but never wait on an escaped grandchild
            await asyncio.wait(pumps, timeout=DRAIN_AFTER_KILL_S)
        except BaseException:  # cancelled: leave no process behind
            _kill_group(proc)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(proc.wait()), 5)
            raise
        finally:
            for task in [*pumps, *([feeder] if feeder else [])]:
                task.cancel()
            everything.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*pumps, *([feeder] if feeder else []), return_exceptions=True)
            with contextlib.suppress(BaseException):
                await everything
        out.close()
        err.close()
        if timed_out:
            return result(124, out.text, err.text + timeout_note(timeout))
        rc = proc.returncode if proc.returncode is not None else -1
        return result(rc if rc >= 0 else 128 - rc, out.text, err.text)

    async def read_file(self, path: str, *, max_bytes: int = 4 * 1024 * 1024) -> bytes:
        return await asyncio.to_thread(_read_capped, path, max_bytes)

    async def write_file(self, path: str, data: bytes, *, mode: int = 0o600) -> None:
        await asyncio.to_thread(_write_atomic, path, data, mode)

    async def exists(self, path: str) -> bool:
        return await asyncio.to_thread(os.path.exists, path)

    async def listdir(self, path: str) -> list[str]:
        return sorted(await asyncio.to_thread(os.listdir, path))

    async def readlink(self, path: str) -> str | None:
        return await asyncio.to_thread(_readlink, path)

    async def which(self, command: str) -> str | None:
        return shutil.which(command)

    async def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"LocalTarget({self.name!r})"
