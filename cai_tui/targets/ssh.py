"""A machine over SSH (paramiko): host keys verified against known_hosts, never silently added.

An unknown key is refused unless the caller asked to accept new keys (then it is appended to known_hosts and a
notice says so); a changed key is always refused. Commands stream through a channel on a thread of their own;
files go through SFTP.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import getpass
import hashlib
import logging
import os
import secrets
import select
import shlex
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import paramiko

from ._lines import LineSplitter, await_thread, in_thread, threadsafe_callback, timeout_note
from ._shell import ShellFiles
from .base import CommandResult, HostKeyRefused, LineCallback, TargetError

log = logging.getLogger(__name__)

DEFAULT_SSH_CONFIG = "~/.ssh/config"
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
GLOBAL_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
CHUNK = 32 * 1024
SFTP_TIMEOUT_S = 60.0
MAX_SESSIONS = 7  # sshd allows 10 sessions per connection (MaxSessions): 7 commands + SFTP + 2 kills
MAX_KILLS = 2
DRAIN_S = 1.0
PID_WAIT_S = 3.0  # after the exit status (or a kill), how long to wait for the rest of the output
_KEYSCAN_TYPE = {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa", "ssh-dss": "dsa"}


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:…`` exactly as ``ssh-keygen -lf`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def _keyscan_type(key_name: str) -> str:
    return _KEYSCAN_TYPE.get(key_name, "ecdsa" if key_name.startswith("ecdsa") else key_name)


@dataclass(frozen=True)
class SshSettings:
    """Where and how to connect, after ``~/.ssh/config`` (the URI's user and port win over it, as with ``ssh``)."""

    alias: str  # the host as the URI gave it
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    known_hosts: str = os.path.expanduser(DEFAULT_KNOWN_HOSTS)
    extra_known_hosts: tuple[str, ...] = ()  # read-only (the system-wide file)
    proxy_command: str | None = None
    identities_only: bool = False

    @property
    def name(self) -> str:
        host = f"[{self.alias}]" if ":" in self.alias else self.alias
        return f"ssh://{self.user}@{host}:{self.port}"


def parse_ssh_uri(uri: str) -> tuple[str | None, str, int | None]:
    """``ssh://[user@]host[:port]`` → (user, host, port); ValueError naming the accepted form otherwise."""
    parts = urlsplit(uri)
    try:
        port = parts.port
    except ValueError as e:
        raise ValueError(f"bad port in {uri!r}: {e}") from None
    if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"not an SSH target: {uri!r}; expected ssh://user@host[:port]")
    return parts.username, parts.hostname, port


def resolve_settings(
    uri: str,
    *,
    ssh_config: str | os.PathLike[str] | None = DEFAULT_SSH_CONFIG,
    known_hosts: str | os.PathLike[str] | None = None,
    identity_file: str | os.PathLike[str] | None = None,
) -> SshSettings:
    user, alias, port = parse_ssh_uri(uri)
    cfg: dict[str, Any] = {}
    if ssh_config is not None:
        path = os.path.expanduser(os.fspath(ssh_config))
        if os.path.exists(path):
            try:
                cfg = dict(paramiko.SSHConfig.from_path(path).lookup(alias))
            except Exception as e:
                raise TargetError(f"cannot read the SSH config {path}: {e}") from e
    identities = [os.path.expanduser(os.fspath(identity_file))] if identity_file is not None else []
    identities += [os.path.expanduser(p) for p in cfg.get("identityfile", [])]
    extra: tuple[str, ...] = ()
    if known_hosts is not None:
        kh = os.path.expanduser(os.fspath(known_hosts))
    else:
        configured = str(cfg.get("userknownhostsfile", "")).split()
        kh = os.path.expanduser(configured[0] if configured else DEFAULT_KNOWN_HOSTS)
        extra = (GLOBAL_KNOWN_HOSTS,)
    proxy = cfg.get("proxycommand")
    return SshSettings(
        alias=alias,
        hostname=str(cfg.get("hostname") or alias),
        port=port or int(cfg.get("port") or 22),
        user=user or str(cfg.get("user") or getpass.getuser()),
        identity_files=tuple(dict.fromkeys(identities)),
        known_hosts=kh,
        extra_known_hosts=extra,
        proxy_command=str(proxy) if proxy and str(proxy).lower() != "none" else None,
        identities_only=str(cfg.get("identitiesonly", "no")).lower() == "yes",
    )


def append_known_host(path: str, host_name: str, key: paramiko.PKey) -> None:
    """Append one ``host type base64`` line (the file and its folder are created private when missing)."""
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        os.makedirs(folder, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "ab") as f:
        if f.tell() > 0:
            with open(path, "rb") as r:
                r.seek(-1, os.SEEK_END)
                if r.read(1) != b"\n":
                    f.write(b"\n")
        f.write(f"{host_name} {key.get_name()} {key.get_base64()}\n".encode())


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko only for a host with no key at all in known_hosts (a mismatch raises BadHostKeyException)."""

    def __init__(self, target: SshTarget) -> None:
        self.target = target

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        s = self.target.settings
        fp = fingerprint(key)
        if self.target.accept_new_host_key:
            try:
                append_known_host(s.known_hosts, hostname, key)
            except OSError as e:
                raise TargetError(f"cannot add the host key of {hostname} to {s.known_hosts}: {e}") from None
            self.target._notice(f"added the {key.get_name()} host key {fp} of {hostname} to {s.known_hosts}")
            return
        raise HostKeyRefused(
            f"the SSH host key of {hostname} is not known (not in {s.known_hosts}): {key.get_name()} {fp}. "
            f"Check this fingerprint with the machine's owner or on its console "
            f"(ssh-keygen -lf /etc/ssh/ssh_host_{_keyscan_type(key.get_name())}_key.pub), then accept it explicitly: "
            f"ssh-keyscan -p {s.port} -t {_keyscan_type(key.get_name())} {s.hostname} >> {s.known_hosts} "
            f"(compare: ssh-keygen -lf {s.known_hosts}), or re-run with --accept-host-key, which adds it there."
        )


def _changed_key_message(s: SshSettings, offered: paramiko.PKey, known: paramiko.PKey) -> str:
    host = _known_hosts_name(s.hostname, s.port)
    return (
        f"WARNING: THE SSH HOST KEY OF {host} HAS CHANGED — refusing to connect. Someone may be intercepting the "
        f"connection (man-in-the-middle), or the machine was reinstalled. {s.known_hosts} has "
        f"{known.get_name()} {fingerprint(known)}; the host offered {offered.get_name()} {fingerprint(offered)}. "
        f"If the change is expected, confirm the new fingerprint with the machine's owner, remove the old entry "
        f"(ssh-keygen -R '{host}' -f {s.known_hosts}) and add the new one (ssh-keyscan -p {s.port} "
        f"-t {_keyscan_type(offered.get_name())} {s.hostname} >> {s.known_hosts}). --accept-host-key never "
        f"replaces a changed key."
    )


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


class SshTarget:
    """A machine reached over SSH. Construct it (no I/O) and let the first call connect, or ``await connect(…)``."""

    def __init__(
        self,
        uri: str,
        *,
        known_hosts: str | os.PathLike[str] | None = None,
        identity_file: str | os.PathLike[str] | None = None,
        password: str | None = None,
        passphrase: str | None = None,
        use_agent: bool = True,
        look_for_keys: bool = True,
        ssh_config: str | os.PathLike[str] | None = DEFAULT_SSH_CONFIG,
        accept_new_host_key: bool = False,
        connect_timeout: float = 10.0,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.uri = uri
        self.settings = resolve_settings(
            uri, ssh_config=ssh_config, known_hosts=known_hosts, identity_file=identity_file
        )
        self.name = self.settings.name
        self.password = password
        self.passphrase = passphrase
        self.use_agent = use_agent and not self.settings.identities_only
        self.look_for_keys = look_for_keys and not self.settings.identities_only
        self.accept_new_host_key = accept_new_host_key
        self.connect_timeout = connect_timeout
        self.on_notice = on_notice
        self.notices: list[str] = []  # what this target did that a person should know (a key added to known_hosts)
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._connect_lock = threading.Lock()  # one connect at a time
        self._sftp_lock = threading.Lock()  # one SFTP request at a time (paramiko's client is not thread-safe)
        self._sessions = threading.BoundedSemaphore(MAX_SESSIONS)
        self._kills = threading.BoundedSemaphore(MAX_KILLS)
        self._shell = ShellFiles(self)

    @classmethod
    async def connect(cls, uri: str, **options: Any) -> SshTarget:
        """Connect now (host key verified, authenticated); the options are those of the constructor."""
        target = cls(uri, **options)
        await target.open()
        return target

    def _notice(self, text: str) -> None:
        self.notices.append(text)
        log.warning("%s", text)
        if self.on_notice is not None:
            self.on_notice(text)

    # -- connection -----------------------------------------------------------------------------------------------

    async def open(self) -> None:
        await in_thread(self._client_blocking, name=f"ssh-connect {self.name}")

    def _client_blocking(self) -> paramiko.SSHClient:
        with self._connect_lock:
            if self._client is not None:
                transport = self._client.get_transport()
                if transport is not None and transport.is_active():
                    return self._client
                self._client.close()
                self._client, self._sftp = None, None
            self._client = self._connect_blocking()
            return self._client

    def _connect_blocking(self) -> paramiko.SSHClient:
        s = self.settings
        client = paramiko.SSHClient()
        for path in (s.known_hosts, *s.extra_known_hosts):
            if os.path.exists(path):
                try:
                    client.load_system_host_keys(path)
                except (OSError, paramiko.SSHException) as e:
                    raise TargetError(f"cannot read known hosts file {path}: {e}") from e
        client.set_missing_host_key_policy(_HostKeyPolicy(self))
        sock: Any = paramiko.ProxyCommand(s.proxy_command) if s.proxy_command else None
        try:
            client.connect(
                s.hostname,
                port=s.port,
                username=s.user,
                password=self.password,
                passphrase=self.passphrase,
                key_filename=list(s.identity_files) or None,  # type: ignore[arg-type]  # str or list, per its docs
                allow_agent=self.use_agent,
                look_for_keys=self.look_for_keys,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                sock=sock,
            )
        except paramiko.BadHostKeyException as e:
            client.close()
            raise HostKeyRefused(_changed_key_message(s, e.key, e.expected_key)) from None
        except TargetError:  # HostKeyRefused, or known_hosts could not be written
            client.close()
            raise
        except paramiko.AuthenticationException as e:
            client.close()
            tried = ", ".join(
                [*(f"key {p}" for p in s.identity_files)]
                + (["the ssh agent"] if self.use_agent else [])
                + (["~/.ssh/id_*"] if self.look_for_keys else [])
                + (["a password"] if self.password else [])
            )
            raise TargetError(
                f"{self.name}: authentication failed ({e}); tried {tried or 'nothing'}. "
                f"Give a key (--identity-file, or IdentityFile in ~/.ssh/config) whose public half is in "
                f"~{s.user}/.ssh/authorized_keys there."
            ) from None
        except (OSError, paramiko.SSHException, EOFError) as e:
            client.close()
            raise TargetError(f"cannot connect to {self.name} ({s.hostname}:{s.port}): {e}") from None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(30)
        return client

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

    # -- files (SFTP) ---------------------------------------------------------------------------------------------

    def _sftp_blocking(self, client: paramiko.SSHClient) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = client.open_sftp()
            except (paramiko.SSHException, OSError, EOFError) as e:
                raise TargetError(f"{self.name}: SFTP is not available ({e}); is the sftp subsystem enabled?") from None
            channel = self._sftp.get_channel()
            if channel is not None:
                channel.settimeout(SFTP_TIMEOUT_S)
        return self._sftp

    async def _files(self, what: str, fn: Callable[[paramiko.SFTPClient], Any]) -> Any:
        def body() -> Any:
            client = self._client_blocking()
            with self._sftp_lock:
                return fn(self._sftp_blocking(client))

        return await in_thread(body, name=f"ssh-{what} {self.name}")

    async def read_file(self, path: str, *, max_bytes: int = 4 * 1024 * 1024) -> bytes:
        def read(sftp: paramiko.SFTPClient) -> bytes:
            st = sftp.stat(path)
            if st.st_mode is not None and stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
            with sftp.open(path, "rb") as f:
                if st.st_size:
                    f.prefetch(min(st.st_size, max_bytes))
                return bytes(f.read(max(0, max_bytes)))

        return bytes(await self._files("read", read))

    async def write_file(self, path: str, data: bytes, *, mode: int = 0o600) -> None:
        def write(sftp: paramiko.SFTPClient) -> None:
            tmp = f"{path}.cai-tmp.{secrets.token_hex(4)}"
            try:
                with sftp.open(tmp, "wb") as f:
                    sftp.chmod(tmp, mode & 0o7777)  # before any byte is written
                    f.write(data)
                try:
                    sftp.posix_rename(tmp, path)
                except OSError:  # no posix-rename@openssh.com extension: not atomic, but still whole
                    with contextlib.suppress(OSError):
                        sftp.remove(path)
                    sftp.rename(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    sftp.remove(tmp)
                raise

        await self._files("write", write)

    async def exists(self, path: str) -> bool:
        def exists(sftp: paramiko.SFTPClient) -> bool:
            try:
                sftp.stat(path)
            except OSError:
                return False
            return True

        return bool(await self._files("exists", exists))

    async def listdir(self, path: str) -> list[str]:
        return sorted(await self._files("listdir", lambda sftp: sftp.listdir(path)))

    async def readlink(self, path: str) -> str | None:
        def readlink(sftp: paramiko.SFTPClient) -> str | None:
            st = sftp.lstat(path)
            if st.st_mode is None or not stat.S_ISLNK(st.st_mode):
                return None
            return sftp.readlink(path)

        result = await self._files("readlink", readlink)
        return None if result is None else str(result)

    async def which(self, command: str) -> str | None:
        return await self._shell.which(command)

    async def close(self) -> None:
        def close() -> None:
            with self._connect_lock, self._sftp_lock:
                if self._sftp is not None:
                    self._sftp.close()
                if self._client is not None:
                    self._client.close()
                self._client, self._sftp = None, None

        await in_thread(close, name=f"ssh-close {self.name}")

    def __repr__(self) -> str:
        return f"SshTarget({self.name!r})"
