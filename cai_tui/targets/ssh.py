"""A machine over SSH (paramiko): host keys verified against known_hosts, never silently added.

An unknown key is refused unless the caller asked to accept new keys (then it is appended to known_hosts and a
notice says so); a changed key is always refused. Commands stream through a channel on a thread of their own;
files go through SFTP.

The parts: :mod:`.ssh_settings` (URIs, ssh config, limits), :mod:`.ssh_hostkeys` (known_hosts), :mod:`.ssh_commands`
(running commands); this module holds the target, its connection and its files.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat
import threading
from collections.abc import Callable
from typing import Any

import paramiko

from ._lines import in_thread
from ._shell import ShellFiles
from .base import HostKeyRefused, TargetError
from .ssh_commands import SshCommands
from .ssh_hostkeys import _changed_key_message, _HostKeyPolicy, append_known_host
from .ssh_settings import (
    CHUNK,
    DEFAULT_KNOWN_HOSTS,
    DEFAULT_SSH_CONFIG,
    DRAIN_S,
    GLOBAL_KNOWN_HOSTS,
    MAX_KILLS,
    MAX_SESSIONS,
    PID_WAIT_S,
    SFTP_TIMEOUT_S,
    SshSettings,
    fingerprint,
    parse_ssh_uri,
    resolve_settings,
)

log = logging.getLogger(__name__)


class SshTarget(SshCommands):
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


__all__ = [
    "CHUNK",
    "DEFAULT_KNOWN_HOSTS",
    "DEFAULT_SSH_CONFIG",
    "DRAIN_S",
    "GLOBAL_KNOWN_HOSTS",
    "MAX_KILLS",
    "MAX_SESSIONS",
    "PID_WAIT_S",
    "SFTP_TIMEOUT_S",
    "SshSettings",
    "SshTarget",
    "append_known_host",
    "fingerprint",
    "parse_ssh_uri",
    "resolve_settings",
]
