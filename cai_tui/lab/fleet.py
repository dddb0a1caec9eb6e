"""A fleet of real OpenSSH servers on 127.0.0.1 for ``cai-tui doctor --hosts``: one ``sshd -D`` per host.

:func:`start_fleet` starts ``count`` servers named ``host01``..``hostNN``, each with its own ed25519 host key and
config under ``workdir/hostNN/``, all accepting one client ed25519 key (``workdir/client_ed25519``, generated once
and reused). Host keys are verified everywhere: :attr:`Fleet.known_hosts` lists every host's key, and both
:meth:`Fleet.ssh_argv` and the inventories of :meth:`Fleet.write_inventory` use it with
``StrictHostKeyChecking=yes``.

``extra[name]`` adds sshd_config lines to one host. sshd keeps the *first* value it reads for most keywords, so
the lines before the first ``Match`` go at the top of the config (they override the lab's own settings, e.g.
``MaxSessions 1``) and a ``Match`` block goes at the end. ``SetEnv NAME=VALUE`` at top level reaches every
command of the login session (checked on Debian's OpenSSH 9.2, also with ``UsePAM no``): e.g.
``extra={"host02": ["SetEnv DOCKER_HOST=unix:///nonexistent.sock"]}`` makes that host's docker checks fail.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

SSHD = "/usr/sbin/sshd"
SFTP_SERVER_CANDIDATES = (
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/lib/ssh/sftp-server",
)
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 15.0
PORT_ATTEMPTS = 3  # a free port can be taken between our probe and sshd's bind: try another one

LAB_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


class FleetError(RuntimeError):
    """The fleet could not be started (missing OpenSSH, sshd refused its config, a port never answered…)."""


def require_openssh() -> str:
    """The sftp-server path, once sshd, ssh-keygen and sftp-server are all there (else a FleetError saying what to install)."""
    if not os.path.exists(SSHD):
        raise FleetError(f"{SSHD} is missing: install the openssh-server package (apt-get install -y openssh-server)")
    sftp = next((p for p in SFTP_SERVER_CANDIDATES if os.path.exists(p)), None)
    if sftp is None:
        raise FleetError("no sftp-server: install openssh-sftp-server (apt-get install -y openssh-sftp-server)")
    if shutil.which("ssh-keygen") is None:
        raise FleetError("ssh-keygen is missing: install openssh-client (apt-get install -y openssh-client)")
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    return sftp


@dataclass
class FleetHost:
    name: str
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host_key(self) -> Path:
        return self.workdir / "host_ed25519"

    @property
    def config(self) -> Path:
        return self.workdir / "sshd_config"

    @property
    def log_path(self) -> Path:
        return self.workdir / "sshd.log"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def known_hosts_line(self) -> str:
        kind, b64 = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[{LOOPBACK}]:{self.port} {kind} {b64}\n"

    def stop(self) -> None:
        """Terminate the listener and its connections (each in its own session), so the host is gone for new
        connections and for established ones too (ssh ControlPersist masters). Never raises."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        sessions = _children_of(proc.pid)  # before the listener dies and they are reparented
        with contextlib.suppress(OSError):
            proc.terminate()
        for pid in sessions:
            with contextlib.suppress(OSError):
                if os.getpgid(pid) == pid:  # it has called setsid(): its group is its monitor + session child
                    os.killpg(pid, signal.SIGTERM)
                else:  # still just forked: only the process itself (its group is ours)
                    os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


@dataclass
class Fleet:
    workdir: Path
    hosts: list[FleetHost]
    client_key: Path
    known_hosts: Path
    user: str
    _stopped: bool = field(default=False, repr=False, compare=False)

    def host(self, name: str) -> FleetHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(f"no host {name!r} in the fleet ({', '.join(h.name for h in self.hosts)})")

    def stop_host(self, name: str) -> None:
        """Stop one host: afterwards its port refuses connections."""
        self.host(name).stop()

    def stop(self) -> None:
        """Stop every host. Idempotent; never raises."""
        for h in self.hosts:
            with contextlib.suppress(Exception):
                h.stop()
        if not self._stopped:
            self._stopped = True
            atexit.unregister(self.stop)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def ssh_argv(self, host: str | FleetHost, *, known_hosts: Path | None = None) -> list[str]:
        """``ssh … user@127.0.0.1`` for one host, host key verified; append the remote command."""
        h = host if isinstance(host, FleetHost) else self.host(host)
        return [
            "ssh",
            "-i",
            str(self.client_key),
            "-p",
            str(h.port),
            "-o",
            f"UserKnownHostsFile={known_hosts or self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            f"{self.user}@{LOOPBACK}",
        ]

    def connection_vars(self, host: str | FleetHost) -> dict[str, Any]:
        """The Ansible connection variables of one host (host key verified against :attr:`known_hosts`)."""
        h = host if isinstance(host, FleetHost) else self.host(host)
        common = (
            f"-o UserKnownHostsFile={shlex.quote(str(self.known_hosts))} -o StrictHostKeyChecking=yes"
            " -o IdentitiesOnly=yes"
        )
        return {
            "ansible_host": LOOPBACK,
            "ansible_port": h.port,
            "ansible_user": self.user,
            "ansible_ssh_private_key_file": str(self.client_key),
            "ansible_ssh_common_args": common,
            # the hosts are this machine: its own Python for modules (discovery may find a broken pyenv shim first)
            "ansible_python_interpreter": LAB_PYTHON,
        }

    def write_inventory(
        self,
        path: Path,
        fmt: Literal["ini", "yaml"] = "ini",
        host_vars: dict[str, dict[str, Any]] | None = None,
        groups: dict[str, list[str]] | None = None,
    ) -> Path:
        """Write an Ansible inventory of every host (stopped ones too: Ansible then reports them UNREACHABLE).

        ``host_vars[name]`` adds variables to a host (values of YAML's types). In INI they are written inline as
        Python literals (``repr``), which is what Ansible's INI plugin parses (``ast.literal_eval``), so types
        survive: ``'8'`` stays a string, ``8`` an int, lists and dicts stay structured. They come after the
        connection variables, so they may override them (e.g. a wrong ``ansible_port``). ``groups`` maps group
        names to host names (default: every host in ``gpu``). For ``fmt="yaml"`` name the file ``*.yml``/``*.yaml``.
        """
        names = [h.name for h in self.hosts]
        host_vars = host_vars or {}
        groups = {"gpu": names} if groups is None else groups
        unknown = sorted(({*host_vars} | {n for members in groups.values() for n in members}) - set(names))
        if unknown:
            raise FleetError(f"not in the fleet: {', '.join(unknown)} (hosts: {', '.join(names)})")
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "ini":
            lines = ["# the cai-tui fleet lab: real sshd on 127.0.0.1, host keys verified", "[all]"]
            for h in self.hosts:
                conn = " ".join(f"{k}={_ini_token(str(v))}" for k, v in self.connection_vars(h).items())
                own = " ".join(f"{k}={_ini_token(repr(v))}" for k, v in host_vars.get(h.name, {}).items())
                lines.append(f"{h.name} {conn} {own}".rstrip())
            for group, members in groups.items():
                lines += ["", f"[{group}]", *members]
            path.write_text("\n".join(lines) + "\n")
        elif fmt == "yaml":
            from ruamel.yaml import YAML  # only here: the lab's other users don't pay for it

            doc = {
                "all": {
                    "hosts": {h.name: {**self.connection_vars(h), **host_vars.get(h.name, {})} for h in self.hosts},
                    "children": {g: {"hosts": dict.fromkeys(members)} for g, members in groups.items()},
                }
            }
            yaml = YAML()  # round-trip: keeps our key order
            yaml.width = 4096  # no folding of the long ssh arguments
            with path.open("w") as f:
                f.write("# the cai-tui fleet lab: real sshd on 127.0.0.1, host keys verified\n")
                yaml.dump(json.loads(json.dumps(doc)), f)  # plain dicts/lists/str only (tuples etc. normalised)
        else:
            raise FleetError(f"unknown inventory format {fmt!r} (ini or yaml)")
        return path


def start_fleet(
    workdir: Path, count: int, *, extra: dict[str, list[str]] | None = None, timeout: float = START_TIMEOUT_S
) -> Fleet:
    """Start ``count`` sshd on 127.0.0.1 (in parallel) and wait until each answers ``SSH-2.0-``.

    On any failure every sshd already started is stopped and a :class:`FleetError` names the host and its log.
    """
    if count < 1:
        raise FleetError(f"a fleet needs at least one host (count={count})")
    sftp = require_openssh()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    width = max(2, len(str(count)))
    names = [f"host{i:0{width}d}" for i in range(1, count + 1)]
    extra = extra or {}
    unknown = sorted(set(extra) - set(names))
    if unknown:
        raise FleetError(f"extra config for hosts not in the fleet: {', '.join(unknown)} (hosts: {', '.join(names)})")

    client_key = workdir / "client_ed25519"
    hosts = [FleetHost(name=n, port=0, workdir=workdir / n) for n in names]
    for h in hosts:
        h.workdir.mkdir(exist_ok=True)
    _keygen_all([client_key, *(h.host_key for h in hosts)])
    authorized = workdir / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    fleet = Fleet(
        workdir=workdir,
        hosts=hosts,
        client_key=client_key,
        known_hosts=workdir / "known_hosts",
        user=getpass.getuser(),
    )
    atexit.register(fleet.stop)  # a safety net: no sshd outlives this interpreter
    try:
        pending = list(hosts)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            for h, port in zip(pending, _free_ports(len(pending)), strict=True):
                h.port = port
                _write_config(h, fleet, authorized, sftp, extra.get(h.name, []))
                _spawn(h)
            pending = _wait_ready(pending, time.monotonic() + timeout, last_attempt=attempt == PORT_ATTEMPTS)
            if not pending:
                break
        fleet.known_hosts.write_text("".join(h.known_hosts_line() for h in hosts))
    except BaseException:
        fleet.stop()
        raise
    return fleet


def _keygen_all(paths: list[Path]) -> None:
    """ed25519 keys without passphrase, generated in parallel; an existing key is kept."""
    procs = [
        (
            p,
            subprocess.Popen(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"cai-tui-fleet-{p.stem}", "-f", str(p)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            ),
        )
        for p in paths
        if not (p.exists() and p.with_suffix(".pub").exists())
    ]
    failed = []
    for p, proc in procs:
        out, _ = proc.communicate(timeout=30)
        if proc.returncode != 0:
            failed.append(f"{p}: {out.decode(errors='replace').strip()}")
    if failed:
        raise FleetError("ssh-keygen failed:\n" + "\n".join(failed))


def _ini_token(value: str) -> str:
    """One shlex token (Ansible splits INI host lines with shlex): bare where safe, else double-quoted."""
    if shlex.quote(value) == value:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now (all held at once, so no duplicates)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.bind((LOOPBACK, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def sshd_config_lines(port: int, host_key: Path, authorized: Path, user: str, sftp: str) -> list[str]:
    """A loopback sshd for one user's key (no PAM, no passwords): the fleet lab's, and the SSH tests' sshd."""
    return [
        f"ListenAddress {LOOPBACK}",
        f"Port {port}",
        f"HostKey {host_key}",
        f"AuthorizedKeysFile {authorized}",
        "StrictModes no",
        "UsePAM no",
        "PidFile none",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        f"AllowUsers {user}",
        "MaxStartups 100",
        "LogLevel VERBOSE",
        f"Subsystem sftp {sftp}",
    ]


def _write_config(h: FleetHost, fleet: Fleet, authorized: Path, sftp: str, extra: list[str]) -> None:
    split = next((i for i, line in enumerate(extra) if line.split()[:1] in (["Match"], ["match"])), len(extra))
    base = sshd_config_lines(h.port, h.host_key, authorized, fleet.user, sftp)
    h.config.write_text("\n".join([*extra[:split], *base, *extra[split:], ""]))


def _spawn(h: FleetHost) -> None:
    with h.log_path.open("ab") as log:  # the child keeps its own descriptor
        h.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(h.config)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )


def _wait_ready(hosts: list[FleetHost], deadline: float, *, last_attempt: bool) -> list[FleetHost]:
    """Wait for every host's banner; the hosts whose port was taken meanwhile (to retry), or a FleetError."""
    waiting = list(hosts)
    retry: list[FleetHost] = []
    while waiting:
        for h in list(waiting):
            assert h.proc is not None
            if h.proc.poll() is not None:
                h.proc = None
                waiting.remove(h)
                log = h.log
                if not last_attempt and ("Address already in use" in log or "Cannot bind any address" in log):
                    retry.append(h)
                    continue
                raise FleetError(f"sshd for {h.name} (port {h.port}) exited; its config {h.config}, its log:\n{log}")
            if _banner(h.port):
                waiting.remove(h)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(f"{h.name} (port {h.port})" for h in waiting)
            raise FleetError(
                f"sshd did not answer SSH-2.0- in time: {names}; log of {waiting[0].name}:\n{waiting[0].log}"
            )
        if waiting:
            time.sleep(0.02)
    return retry


def _banner(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as s:
            return s.recv(64).startswith(b"SSH-2.0-")
    except OSError:
        return False


def _children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc); empty where /proc can't say."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(entry.path, "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # fields after "(comm)": state, ppid, …
                    found.append(int(entry.name))
    return found
