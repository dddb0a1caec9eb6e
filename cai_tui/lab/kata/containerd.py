"""The kata lab's containerd: Debian's ``/usr/bin/containerd`` run privately under a directory the lab gives it.

Its own ``--root``, state directory and socket (``<dir>/containerd.sock``), the CRI plugin disabled (there is no
kubelet), no metrics or debug listener: never the system's or Docker's containerd. ``ctr -a <address>`` reaches it;
``ctr run`` there uses runc where the host would use kata (see :mod:`cai_tui.lab.kata.not_real`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONTAINERD = "/usr/bin/containerd"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
RUNC_ROOT = "/run/containerd/runc"  # the runc shim's default root, one folder per namespace

CONFIG = """\
# cai-tui kata lab: a private containerd (not the system's, not Docker's)
version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{address}"

[ttrpc]
  address = "{ttrpc}"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""
"""


class LabContainerdError(RuntimeError):
    """The private containerd cannot start; the message says why and what to install or fix."""


@dataclass
class LabContainerd:
    """A running private containerd: ``address`` is its socket (``ctr -a``), ``stop()`` ends it and removes its state."""

    address: str
    dir: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """End containerd (SIGTERM, then SIGKILL), its shims' leftovers, and unmount what its snapshotter left."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            self._remove_tasks()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
        _unmount_under(self.dir)

    def _remove_tasks(self) -> None:
        """Kill and delete every task and container it still has (their shims would outlive containerd)."""

        def ctr(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["ctr", "-a", self.address, *args], capture_output=True, text=True, timeout=30, check=False
            )

        for ns in ctr("namespaces", "ls", "-q").stdout.split():
            for line in ctr("-n", ns, "tasks", "ls").stdout.splitlines()[1:]:
                if line.split():
                    task = line.split()[0]
                    ctr("-n", ns, "tasks", "kill", "--signal", "SIGKILL", task)
                    ctr("-n", ns, "tasks", "delete", "--force", task)
            for cid in ctr("-n", ns, "containers", "ls", "-q").stdout.split():
                ctr("-n", ns, "containers", "delete", cid)
            with contextlib.suppress(OSError):  # runc's state folder of the namespace, shared root: only if empty
                os.rmdir(os.path.join(RUNC_ROOT, ns))

    def __enter__(self) -> LabContainerd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _unmount_under(folder: Path) -> None:
    """Lazily unmount every mount below ``folder`` (deepest first): overlay rootfs a killed task may have left."""
    prefix = str(folder.resolve()) + "/"
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    points = [m.split()[1].replace("\\040", " ") for m in mounts if len(m.split()) > 1]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def start_containerd(dir: str | os.PathLike[str]) -> LabContainerd:
    """Start a private containerd under ``dir`` (made if missing); returns once its socket answers ``ctr version``."""
    if not os.access(CONTAINERD, os.X_OK):
        raise LabContainerdError(f"{CONTAINERD} is missing: apt-get install -y containerd")
    ctr = shutil.which("ctr")
    if ctr is None:
        raise LabContainerdError("ctr is missing: apt-get install -y containerd (it ships ctr)")
    if shutil.which("runc") is None:
        raise LabContainerdError("runc is missing: apt-get install -y runc")
    if os.geteuid() != 0:
        raise LabContainerdError("the lab's containerd needs root (it mounts snapshots and starts runc)")
    base = Path(dir).resolve()
    if len(str(base)) > 80:  # unix socket paths are limited to 107 bytes
        raise LabContainerdError(f"{base}: too long a path for containerd's socket; use a shorter directory")
    for sub in ("root", "state"):
        (base / sub).mkdir(parents=True, exist_ok=True, mode=0o711)
    address = str(base / "containerd.sock")
    config = base / "config.toml"
    config.write_text(
        CONFIG.format(
            root=base / "root", state=base / "state", address=address, ttrpc=str(base / "containerd.sock.ttrpc")
        )
    )
    log = base / "containerd.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [CONTAINERD, "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    lab = LabContainerd(address=address, dir=base, log=log, proc=proc)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-5:]
            lab.stop()
            raise LabContainerdError(f"containerd exited {proc.returncode} at start: " + " | ".join(tail))
        if os.path.exists(address):
            r = subprocess.run([ctr, "-a", address, "version"], capture_output=True, text=True, check=False)
            if r.returncode == 0:
                return lab
        if time.monotonic() > deadline:
            with contextlib.suppress(Exception):
                lab.stop()
            raise LabContainerdError(
                f"containerd did not answer on {address} within {START_TIMEOUT_S:.0f} s; see {log}"
            )
        time.sleep(0.1)


LAB_NAMESPACE = "cai-kata-lab"
LAB_RUNTIME = "io.containerd.runc.v2"  # for io.containerd.kata.v2 (see not_real)


def lab_container_answers(ctrd: LabContainerd, *, namespace: str = LAB_NAMESPACE, name: str = "arch") -> dict[str, Any]:
    """The recipe answers that point KATA-2.4/KATA-5 at this containerd, with runc for the kata runtime."""
    return {
        "kata": {"runtime": LAB_RUNTIME},
        "container": {"address": ctrd.address, "namespace": namespace, "name": name},
    }


def lab_guest_target(ctrd: LabContainerd, *, namespace: str = LAB_NAMESPACE, name: str = "arch") -> str:
    """``targets.guest`` for the container (guest.nvidia_smi runs nvidia-smi there through ctr task exec)."""
    return f"ctr://{namespace}/{name}?address={ctrd.address}"


__all__ = [
    "LAB_NAMESPACE",
    "LAB_RUNTIME",
    "LabContainerd",
    "LabContainerdError",
    "lab_container_answers",
    "lab_guest_target",
    "start_containerd",
]
