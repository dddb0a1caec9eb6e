"""Host keys: appending to known_hosts, the policy for a host with no known key (refused unless new keys are
accepted), and the message for a changed key (always refused)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import paramiko

from .base import HostKeyRefused, TargetError
from .ssh_settings import SshSettings, _keyscan_type, _known_hosts_name, fingerprint

if TYPE_CHECKING:
    from .ssh import SshTarget


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
