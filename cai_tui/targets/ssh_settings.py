"""SSH settings: the limits of a connection, ``ssh://`` URIs and ``~/.ssh/config`` resolved into
:class:`SshSettings`, host-key fingerprints."""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paramiko

from .base import TargetError

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
