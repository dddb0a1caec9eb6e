"""A real OpenSSH sshd on 127.0.0.1, as a child process with its own config, host key and authorized key."""

from __future__ import annotations

import getpass
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from cai_tui.lab.fleet import SSHD, FleetError, sshd_config_lines
from cai_tui.lab.fleet import require_openssh as _require_openssh


def require_openssh() -> tuple[str, str]:
    """(sshd, sftp-server) or a failure that says what to install (the fleet lab's check)."""
    try:
        return SSHD, _require_openssh()
    except FleetError as e:
        pytest.fail(str(e))


def keygen(path: Path, key_type: str = "ed25519") -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", f"cai-tui-test-{key_type}", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def fingerprint_of(pub: Path) -> str:
    """``SHA256:…`` as ssh-keygen prints it (independent of the code under test)."""
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)], check=True, capture_output=True, text=True
    )
    return out.stdout.split()[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sshd:
    workdir: Path
    port: int
    host_key: Path
    client_key: Path
    user: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        p = self.workdir / f"sshd-{self.port}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def known_hosts_line(self, host_key: Path | None = None) -> str:
        kind, b64 = (host_key or self.host_key).with_suffix(".pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {b64}\n"

    def start(self, host_key: Path | None = None) -> None:
        sshd, sftp = require_openssh()
        if host_key is not None:
            self.host_key = host_key
        authorized = self.workdir / "authorized_keys"
        authorized.write_text(self.client_key.with_suffix(".pub").read_text())
        cfg = self.workdir / "sshd_config"
        lines = sshd_config_lines(self.port, self.host_key, authorized, self.user, sftp)
        lines.insert(0, "MaxSessions 10")  # the OpenSSH default, said out loud: the target must live within it
        cfg.write_text("\n".join([*lines, ""]))
        log = open(self.workdir / f"sshd-{self.port}.log", "ab")  # noqa: SIM115 - the child writes it
        self.proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(cfg)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"sshd exited with {self.proc.returncode}:\n{self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-2.0-"):
                        return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"sshd did not listen on 127.0.0.1:{self.port} within 10 s:\n{self.log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


def make_sshd(workdir: Path) -> Sshd:
    workdir.mkdir(parents=True, exist_ok=True)
    require_openssh()
    return Sshd(
        workdir=workdir,
        port=free_port(),
        host_key=keygen(workdir / "host_ed25519"),
        client_key=keygen(workdir / "client_ed25519"),
        user=getpass.getuser(),
    )
