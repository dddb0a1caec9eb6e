"""Commands over SSH: each on a channel of its own (bounded by the server's sessions), streamed line by line, its
remote process group killed on timeout or cancel."""

from __future__ import annotations

import asyncio
import logging
import secrets
import select
import shlex
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import paramiko

from ._lines import LineSplitter, await_thread, in_thread, threadsafe_callback, timeout_note
from .base import CommandResult, LineCallback, TargetError
from .ssh_settings import CHUNK, DRAIN_S, MAX_SESSIONS, PID_WAIT_S

log = logging.getLogger("cai_tui.targets.ssh")


class _PidFilter:
    """Takes the first stdout line (``<marker><pid>``, printed by the wrapper) off the stream."""

    def __init__(self, marker: bytes, splitter: LineSplitter) -> None:
        self.marker = marker
        self.splitter = splitter
        self.pid: int | None = None
        self._head = b""
        self._done = False

    def feed(self, data: bytes) -> None:
        if self._done:
            self.splitter.feed(data)
            return
        self._head += data
        line, nl, rest = self._head.partition(b"\n")
        if not nl and len(self._head) < 256:
            return
        self._done = True
        if nl and line.startswith(self.marker) and line[len(self.marker) :].isdigit():
            self.pid = int(line[len(self.marker) :])
            self.splitter.feed(rest)
        else:
            self.splitter.feed(self._head)

    @property
    def waiting(self) -> bool:
        return not self._done

    def finish(self) -> None:
        """No more output: whatever was held back (no marker came) is output after all."""
        if not self._done:
            self._done = True
            self.splitter.feed(self._head)


@dataclass
class _Run:
    argv: tuple[str, ...]
    stdin: bytes | None
    timeout: float
    on_line: LineCallback | None
    env: dict[str, str] | None
    stop: threading.Event = field(default_factory=threading.Event)


class SshCommands:
    """The command half of :class:`~cai_tui.targets.ssh.SshTarget` (its connection, files and state live there)."""

    name: str
    connect_timeout: float
    _sessions: threading.BoundedSemaphore
    _kills: threading.BoundedSemaphore

    def _client_blocking(self) -> paramiko.SSHClient:
        raise NotImplementedError

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
        for key in env or {}:
            if not key or "=" in key or not key.replace("_", "a").isalnum():
                raise ValueError(f"bad environment variable name {key!r}")
        job = _Run(args, stdin, timeout, None, env)
        job.on_line = threadsafe_callback(on_line, asyncio.get_running_loop())
        fut = in_thread(lambda: self._run_blocking(job), name=f"ssh-run {self.name}")
        return await await_thread(fut, job.stop)

    def _run_blocking(self, job: _Run) -> CommandResult:
        started = time.monotonic()
        client = self._client_blocking()
        transport = client.get_transport()
        if transport is None:
            raise TargetError(f"{self.name}: the connection closed")
        while True:
            acquired = self._sessions.acquire(timeout=0.05)
            if job.stop.is_set() or time.monotonic() >= started + job.timeout:  # never start what is already late
                if acquired:
                    self._sessions.release()
                if job.stop.is_set():
                    return CommandResult(job.argv, 130, "", "", time.monotonic() - started, self.name)
                note = f"cai-tui: timed out after {job.timeout:g}s waiting for one of {MAX_SESSIONS} SSH sessions\n"
                return CommandResult(job.argv, 124, "", note, time.monotonic() - started, self.name)
            if acquired:
                break
        try:
            return self._run_session(job, transport, started)
        finally:
            self._sessions.release()

    def _run_session(self, job: _Run, transport: paramiko.Transport, started: float) -> CommandResult:
        marker = f"__cai_pid_{secrets.token_hex(6)}__"
        env_prefix = ("env " + " ".join(shlex.quote(f"{k}={v}") for k, v in job.env.items()) + " ") if job.env else ""
        command = f"echo {marker}$$; exec {env_prefix}{shlex.join(job.argv)}"
        out = LineSplitter("stdout", job.on_line)
        err = LineSplitter("stderr", job.on_line)
        pid_filter = _PidFilter(marker.encode(), out)
        try:
            chan = transport.open_session(timeout=self.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise TargetError(f"{self.name}: cannot open a session: {e}") from None
        timed_out = False
        try:
            chan.exec_command(command)
            to_send = memoryview(job.stdin or b"")
            if not to_send:
                chan.shutdown_write()
            deadline = started + job.timeout
            exited_at: float | None = None
            while True:
                if job.stop.is_set() or time.monotonic() >= deadline:
                    timed_out = not job.stop.is_set()
                    self._await_pid(chan, pid_filter, err)
                    self._kill_remote(transport, pid_filter.pid)
                    self._drain(chan, pid_filter, err, time.monotonic() + DRAIN_S)
                    break
                sent = False
                if to_send and chan.send_ready():
                    try:
                        n = chan.send(to_send[:CHUNK].tobytes())
                    except OSError:  # the command closed its input; its exit status says whether that mattered
                        n, to_send = 0, memoryview(b"")
                    to_send, sent = to_send[n:], n > 0
                    if not to_send:
                        chan.shutdown_write()
                got = self._read_ready(chan, pid_filter, err)
                if chan.exit_status_ready():
                    exited_at = exited_at or time.monotonic()
                    if chan.eof_received and not got and not chan.recv_ready() and not chan.recv_stderr_ready():
                        break
                    if time.monotonic() - exited_at > DRAIN_S:  # a background child holds the output open
                        break
                elif chan.closed or not transport.is_active():  # connection lost: no status will come
                    self._read_ready(chan, pid_filter, err)
                    break
                if not got and not sent:
                    select.select([chan], [], [], 0.005 if to_send else 0.05)  # a window adjust wakes nothing
            rc = 124 if timed_out else (chan.recv_exit_status() if chan.exit_status_ready() else -1)
        finally:
            chan.close()
        pid_filter.finish()
        out.close()
        err.close()
        err_text = err.text
        if timed_out:
            err_text += timeout_note(job.timeout)
        elif rc == -1:
            rc = 255
            err_text += "cai-tui: no exit status from the remote side (killed by a signal?)\n"
        return CommandResult(job.argv, rc, out.text, err_text, time.monotonic() - started, self.name)

    @staticmethod
    def _read_ready(chan: paramiko.Channel, out: _PidFilter, err: LineSplitter) -> bool:
        got = False
        while chan.recv_ready():
            data = chan.recv(CHUNK)
            if not data:
                break
            out.feed(data)
            got = True
        while chan.recv_stderr_ready():
            data = chan.recv_stderr(CHUNK)
            if not data:
                break
            err.feed(data)
            got = True
        return got

    def _await_pid(self, chan: paramiko.Channel, out: _PidFilter, err: LineSplitter) -> None:
        """The wrapper prints the pid first thing; a command stopped early must not be left running for want of it."""
        until = time.monotonic() + PID_WAIT_S
        while out.waiting and not chan.exit_status_ready() and time.monotonic() < until:
            if not self._read_ready(chan, out, err):
                select.select([chan], [], [], 0.02)

    def _drain(self, chan: paramiko.Channel, out: _PidFilter, err: LineSplitter, until: float) -> None:
        while time.monotonic() < until:
            got = self._read_ready(chan, out, err)
            if chan.eof_received and not got:
                return
            if not got:
                select.select([chan], [], [], 0.05)

    def _kill_remote(self, transport: paramiko.Transport, pid: int | None) -> None:
        """SIGKILL the command's process group (sshd makes each session's command a session leader)."""
        if pid is None:
            return
        if not self._kills.acquire(timeout=5):
            log.warning("%s: no free SSH session to kill process group %s", self.name, pid)
            return
        try:
            chan = transport.open_session(timeout=5)
            try:
                chan.exec_command(f"kill -9 -{pid} 2>/dev/null || kill -9 {pid} 2>/dev/null")
                chan.shutdown_write()
                deadline = time.monotonic() + 5
                while not chan.exit_status_ready() and time.monotonic() < deadline:
                    select.select([chan], [], [], 0.05)
            finally:
                chan.close()
        except (paramiko.SSHException, OSError, EOFError) as e:
            log.warning("%s: could not kill process group %s: %s", self.name, pid, e)
        finally:
            self._kills.release()
