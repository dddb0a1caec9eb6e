"""Inside a container: ``docker exec`` through the Docker engine API, or ``ctr task exec`` (how a kata guest is reached).

``DockerExecTarget`` reads and writes files through the engine's archive API, so a container without a shell still
answers ``read_file``/``write_file``/``exists``; listing, links and ``which`` need ``sh`` there. ``CtrTarget`` does
everything through commands (``sh``, ``base64``… in the guest) run by ``ctr`` on a parent target.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import io
import json
import os
import re
import secrets
import select
import signal
import socket
import tarfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._lines import LineSplitter, await_thread, in_thread, threadsafe_callback, timeout_note
from ._shell import ShellFiles
from .base import CommandResult, LineCallback, Target, TargetError

CHUNK = 64 * 1024
DRAIN_S = 1.0
MAX_LINKS = 40
_MODE_DIR = 1 << 31  # Go's os.ModeDir, as the engine's path stat reports it
_MODE_SYMLINK = 1 << 27
_NOT_FOUND = re.compile(r"executable file not found|no such file or directory", re.I)
_NOT_EXECUTABLE = re.compile(r"permission denied", re.I)


def _exec_failure_rc(rc: int, message: str) -> int:
    """The runtime reports a command it could not start as 126 (docker) or 1 (ctr); say 127/126 as a shell would."""
    if "exec failed" not in message and "OCI runtime" not in message:
        return rc
    if _NOT_FOUND.search(message):
        return 127
    if _NOT_EXECUTABLE.search(message):
        return 126
    return rc


# -- docker exec --------------------------------------------------------------------------------------------------


@dataclass
class _Job:
    argv: tuple[str, ...]
    stdin: bytes | None
    timeout: float
    on_line: LineCallback | None
    env: dict[str, str] | None
    stop: threading.Event = field(default_factory=threading.Event)


class _ChunkReader(io.RawIOBase):
    """A file over the engine's archive stream, so ``tarfile`` reads only as far as it needs."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from /proc (the engine runs on this machine)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat_line = f.read().decode("latin-1")
        except OSError:
            continue
        ppid = int(stat_line.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


class DockerExecTarget:
    """A running container on a Docker engine (``docker_url``: ``unix:///var/run/docker.sock``, ``ssh://…``;
    default: ``DOCKER_HOST`` or the local socket)."""

    def __init__(self, container: str, *, docker_url: str | None = None, user: str | None = None) -> None:
        self.container = container
        self.docker_url = docker_url
        self.user = user
        self.name = f"docker://{container}"
        self._api_client: Any = None
        self._api_lock = threading.Lock()
        self._shell = ShellFiles(self)

    # -- engine ---------------------------------------------------------------------------------------------------

    def _engine(self) -> str:
        return self.docker_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    def _engine_is_local(self) -> bool:
        return self._engine().startswith(("unix://", "/"))

    def _api(self) -> Any:
        with self._api_lock:
            if self._api_client is None:
                import docker
                from docker.errors import DockerException

                try:
                    if self.docker_url:
                        self._api_client = docker.APIClient(base_url=self.docker_url, version="auto", timeout=60)
                    else:
                        self._api_client = docker.APIClient(
                            version="auto", timeout=60, **docker.utils.kwargs_from_env()
                        )
                except DockerException as e:
                    raise TargetError(
                        f"cannot reach the Docker engine at {self._engine()} ({e}); is dockerd running, and may this "
                        f"user use it (the docker group, or sudo)?"
                    ) from None
            return self._api_client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """An engine call with its errors said in terms of this target."""
        from docker.errors import APIError, DockerException, NotFound

        try:
            return fn(*args, **kwargs)
        except NotFound as e:
            raise TargetError(f"{self.name}: no such container on {self._engine()} ({e.explanation})") from None
        except APIError as e:
            if e.status_code == 409:
                raise TargetError(
                    f"{self.name}: the container is not running ({e.explanation}); start it first"
                ) from None
            raise TargetError(f"{self.name}: {what} failed: {e.explanation or e}") from None
        except DockerException as e:
            raise TargetError(f"{self.name}: {what} failed: {e}") from None

    # -- commands -------------------------------------------------------------------------------------------------

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
        job = _Job(args, stdin, timeout, threadsafe_callback(on_line, asyncio.get_running_loop()), env)
        fut = in_thread(lambda: self._run_blocking(job), name=f"docker-exec {self.name}")
        return await await_thread(fut, job.stop)

    def _run_blocking(self, job: _Job) -> CommandResult:
        started = time.monotonic()
        api = self._api()
        exec_id = self._call(
            "exec",
            api.exec_create,
            self.container,
            list(job.argv),
            stdin=job.stdin is not None,
            environment=job.env or None,
            user=self.user or "",
        )["Id"]
        sock = self._call("exec", api.exec_start, exec_id, socket=True)
        raw = getattr(sock, "_sock", sock)
        out = LineSplitter("stdout", job.on_line)
        err = LineSplitter("stderr", job.on_line)
        if job.stdin is not None:
            threading.Thread(target=self._send_stdin, args=(raw, job.stdin), daemon=True).start()
        timed_out, killed = False, True
        buf = b""
        try:
            deadline = started + job.timeout
            while True:
                if job.stop.is_set() or time.monotonic() >= deadline:
                    timed_out = not job.stop.is_set()
                    killed = self._kill_exec(api, exec_id)
                    break
                ready, _, _ = select.select([raw], [], [], 0.05)
                if not ready:
                    continue
                data = raw.recv(CHUNK) if hasattr(raw, "recv") else raw.read(CHUNK)
                if not data:
                    break
                buf = self._demux(buf + data, out, err)
        finally:
            with contextlib.suppress(OSError):
                raw.close()
            with contextlib.suppress(OSError, AttributeError):
                sock.close()
        out.close()
        err.close()
        if timed_out:
            note = timeout_note(job.timeout)
            if not killed:
                note += f"cai-tui: the engine at {self._engine()} is not on this machine; the command may still run\n"
            return CommandResult(job.argv, 124, out.text, err.text + note, time.monotonic() - started, self.name)
        if job.stop.is_set():
            return CommandResult(job.argv, 130, out.text, err.text, time.monotonic() - started, self.name)
        rc = self._exit_code(api, exec_id)
        stdout, stderr = out.text, err.text
        fixed = _exec_failure_rc(rc, stdout + stderr)
        if fixed != rc and not stderr:  # the runtime's message came on stdout; it is an error
            stdout, stderr = "", stdout
        return CommandResult(job.argv, fixed, stdout, stderr, time.monotonic() - started, self.name)

    @staticmethod
    def _send_stdin(raw: Any, data: bytes) -> None:
        try:
            raw.sendall(data)
            raw.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the command exited without reading it all; its exit status tells

    @staticmethod
    def _demux(buf: bytes, out: LineSplitter, err: LineSplitter) -> bytes:
        """Split the engine's multiplexed stream: 8-byte headers (stream id, 3 zero bytes, big-endian length)."""
        while len(buf) >= 8:
            size = int.from_bytes(buf[4:8], "big")
            if len(buf) < 8 + size:
                break
            payload, kind = buf[8 : 8 + size], buf[0]
            (err if kind in (2, 3) else out).feed(payload)  # 3: the engine's own error stream
            buf = buf[8 + size :]
        return buf

    def _exit_code(self, api: Any, exec_id: str) -> int:
        deadline = time.monotonic() + 5
        while True:
            info = self._call("exec inspect", api.exec_inspect, exec_id)
            if not info.get("Running") or time.monotonic() > deadline:
                code = info.get("ExitCode")
                return int(code) if code is not None else 255
            time.sleep(0.02)

    def _kill_exec(self, api: Any, exec_id: str) -> bool:
        """The engine has no "kill exec": SIGKILL its process tree from /proc when the engine runs here.

        False when that is impossible (a remote engine): the command is left running there.
        """
        try:
            info = self._call("exec inspect", api.exec_inspect, exec_id)
        except TargetError:
            return False
        pid = int(info.get("Pid") or 0)
        if not info.get("Running") or pid <= 0:
            return True
        if not (self._engine_is_local() and os.path.exists(f"/proc/{pid}")):
            return False
        for p in _descendants(pid):
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
        return True

    # -- files ----------------------------------------------------------------------------------------------------

    def _stat(self, path: str) -> dict[str, Any] | None:
        """The engine's stat of ``path`` (links followed inside the container), None when absent."""
        api = self._api()
        for _ in range(MAX_LINKS):
            url = api._url("/containers/{0}/archive", self.container)
            res = self._call("stat", api.head, url, params={"path": path})
            if res.status_code == 404:  # a HEAD has no body to say which: the container, or the path?
                self._call("inspect", api.inspect_container, self.container)
                return None
            if res.status_code >= 400:
                raise TargetError(f"{self.name}: stat {path} failed: HTTP {res.status_code} {res.reason}")
            info: dict[str, Any] = json.loads(base64.b64decode(res.headers["X-Docker-Container-Path-Stat"]))
            if not int(info.get("mode", 0)) & _MODE_SYMLINK:
                info["path"] = path
                return info
            path = str(info.get("linkTarget") or "")
            if not path:
                return None
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)

    def _read_blocking(self, path: str, max_bytes: int) -> bytes:
        info = self._stat(path)
        if info is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        if int(info.get("mode", 0)) & _MODE_DIR:
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        api = self._api()
        chunks, _ = self._call("read", api.get_archive, self.container, info["path"], chunk_size=CHUNK)
        with tarfile.open(fileobj=io.BufferedReader(_ChunkReader(iter(chunks))), mode="r|") as tar:
            for member in tar:
                f = tar.extractfile(member)
                if f is None:
                    raise OSError(errno.EIO, f"{path} in {self.name} is not a regular file", path)
                return f.read(max(0, max_bytes))
        raise OSError(errno.EIO, f"empty archive for {path} from {self.name}", path)

    async def read_file(self, path: str, *, max_bytes: int = 4 * 1024 * 1024) -> bytes:
        return bytes(await in_thread(lambda: self._read_blocking(path, max_bytes), name=f"docker-read {self.name}"))

    def _put_blocking(self, folder: str, name: str, data: bytes, mode: int) -> None:
        from docker.errors import NotFound

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode & 0o7777, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        try:
            self._api().put_archive(self.container, folder, buf.getvalue())
        except NotFound as e:
            if "container" in str(e.explanation).lower() and "no such container" in str(e.explanation).lower():
                raise TargetError(f"{self.name}: no such container on {self._engine()}") from None
            raise FileNotFoundError(errno.ENOENT, f"no folder {folder} in {self.name}", folder) from None

    async def write_file(self, path: str, data: bytes, *, mode: int = 0o600) -> None:
        """Written beside the file, then renamed over it (``mv`` in the container); without ``mv``, in place."""
        folder, name = os.path.split(path)
        folder = folder or "/"
        tmp = f".{name}.cai-tmp.{secrets.token_hex(4)}"
        await in_thread(lambda: self._put_blocking(folder, tmp, data, mode), name=f"docker-write {self.name}")
        tmp_path = f"{folder.rstrip('/')}/{tmp}"
        moved = await self.run(["mv", "-f", tmp_path, path], timeout=60)
        if moved.rc == 0:
            return
        if moved.rc != 127:
            await self.run(["rm", "-f", tmp_path], timeout=60)
            raise OSError(errno.EIO, f"writing {path} in {self.name} failed: {moved.stderr.strip()}", path)
        await in_thread(lambda: self._put_blocking(folder, name, data, mode), name=f"docker-write {self.name}")
        await self.run(["rm", "-f", tmp_path], timeout=60)  # no mv there; perhaps no rm either

    async def exists(self, path: str) -> bool:
        try:
            info = await in_thread(lambda: self._stat(path), name=f"docker-stat {self.name}")
        except OSError:
            return False
        return info is not None

    async def listdir(self, path: str) -> list[str]:
        return await self._shell.listdir(path)

    async def readlink(self, path: str) -> str | None:
        return await self._shell.readlink(path)

    async def which(self, command: str) -> str | None:
        return await self._shell.which(command)

    async def close(self) -> None:
        with self._api_lock:
            if self._api_client is not None:
                self._api_client.close()
                self._api_client = None

    def __repr__(self) -> str:
        return f"DockerExecTarget({self.container!r}, docker_url={self.docker_url!r})"


# -- ctr task exec ------------------------------------------------------------------------------------------------


class CtrTarget:
    """A containerd task (a kata guest's container) reached with ``ctr -n NS task exec`` on ``parent``.

    ``ctr`` has no ``--env`` for exec: ``env`` goes through ``env K=V argv…`` in the container. A command that
    times out or is cancelled is killed with ``ctr task kill --exec-id`` (only that process: what it started and left
    running stays, as with ``ctr`` itself).
    """

    def __init__(
        self,
        task: str,
        *,
        namespace: str = "k8s.io",
        ctr: str = "ctr",
        address: str | None = None,
        parent: Target | None = None,
        user: str | None = None,
    ) -> None:
        from .local import LocalTarget

        self.task = task
        self.namespace = namespace
        self.ctr = ctr
        self.address = address
        self.parent: Target = parent if parent is not None else LocalTarget()
        self.user = user
        self.name = f"ctr://{namespace}/{task}"
        self._shell = ShellFiles(self)

    def ctr_argv(self, *args: str) -> list[str]:
        return [self.ctr, *(["--address", self.address] if self.address else []), "-n", self.namespace, *args]

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
        exec_id = f"cai-{secrets.token_hex(8)}"
        inner = [*(["env", *(f"{k}={v}" for k, v in env.items())] if env else []), *args]
        full = self.ctr_argv(
            "task", "exec", "--exec-id", exec_id, *(["--user", self.user] if self.user else []), self.task, *inner
        )
        try:
            r = await self.parent.run(full, stdin=stdin, timeout=timeout, on_line=on_line)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(self._kill(exec_id)), 10)
            raise
        if r.rc == 127 and re.match(rf"(.*: )?{re.escape(self.ctr)}: (command )?not found", r.stderr):
            raise TargetError(
                f"{self.name}: {self.ctr} is not installed on {self.parent.name} (containerd's ctr): {r.stderr.strip()}"
            )
        if r.rc == 124:
            await self._kill(exec_id)
            return CommandResult(args, 124, r.stdout, r.stderr, r.duration_s, self.name)
        stderr = r.stderr
        if r.rc != 0 and stderr.startswith("ctr: "):
            first = stderr.splitlines()[0]
            fixed = _exec_failure_rc(r.rc, first)
            if fixed != r.rc:
                return CommandResult(args, fixed, r.stdout, stderr, r.duration_s, self.name)
            if not r.stdout and re.search(
                r"not found|failed to dial|connection refused|permission denied|no such", first
            ):
                raise TargetError(f"{self.name}: {first.removeprefix('ctr: ')} (through {self.parent.name})")
        return CommandResult(args, r.rc, r.stdout, stderr, r.duration_s, self.name)

    async def _kill(self, exec_id: str) -> None:
        """SIGKILL the exec'd process (retried while ctr fails for another reason than "not found": a busy containerd
        can refuse a call), then delete the exec."""
        for _ in range(20):
            r = await self.parent.run(
                self.ctr_argv("task", "kill", "--signal", "SIGKILL", "--exec-id", exec_id, self.task), timeout=10
            )
            if r.rc == 0 or "not found" in r.stderr:
                break
            await asyncio.sleep(0.1)
        for _ in range(20):
            r = await self.parent.run(self.ctr_argv("task", "delete", "--exec-id", exec_id, self.task), timeout=10)
            if r.rc == 0 or "not found" in r.stderr:
                return
            await asyncio.sleep(0.1)

    async def read_file(self, path: str, *, max_bytes: int = 4 * 1024 * 1024) -> bytes:
        return await self._shell.read_file(path, max_bytes)

    async def write_file(self, path: str, data: bytes, *, mode: int = 0o600) -> None:
        await self._shell.write_file(path, data, mode)

    async def exists(self, path: str) -> bool:
        return await self._shell.exists(path)

    async def listdir(self, path: str) -> list[str]:
        return await self._shell.listdir(path)

    async def readlink(self, path: str) -> str | None:
        return await self._shell.readlink(path)

    async def which(self, command: str) -> str | None:
        return await self._shell.which(command)

    async def close(self) -> None:
        return None  # the parent belongs to whoever made it

    def __repr__(self) -> str:
        return f"CtrTarget({self.task!r}, namespace={self.namespace!r}, parent={self.parent!r})"


def split_ctr_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``ctr://[NAMESPACE/]TASK[?address=SOCKET]`` → (task, namespace or None, address or None)."""
    parts = urlsplit(uri)
    path = parts.path.strip("/")
    if parts.scheme != "ctr" or not parts.netloc or "/" in path or parts.fragment:
        raise ValueError(f"not a ctr target: {uri!r}")
    query = dict(q.split("=", 1) for q in parts.query.split("&") if "=" in q)
    if set(query) - {"address"}:
        raise ValueError(f"unknown option in {uri!r}: only ?address=SOCKET")
    return (path, parts.netloc, query.get("address")) if path else (parts.netloc, None, query.get("address"))
