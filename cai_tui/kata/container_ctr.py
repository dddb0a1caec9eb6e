"""``ctr`` and ``ip`` as the KATA-2.4/KATA-5 doers call them: every command line shown, its output streamed line by line.

Nothing here knows the recipe beyond the containerd address/namespace it is given; the doers in
:mod:`cai_tui.kata.container` and :mod:`cai_tui.kata.image_import` decide what to run.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from .. import events
from ..events import EventSink


class KataRunError(Exception):
    """A doer cannot go on; the message says why and what to do. ``rc``: 2 for bad input, 1 for a failure."""

    def __init__(self, message: str, rc: int = 1) -> None:
        super().__init__(message)
        self.rc = rc


@dataclass(frozen=True)
class Ctr:
    """``ctr -a ADDRESS -n NAMESPACE`` on this machine."""

    address: str
    namespace: str
    binary: str = "ctr"

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "-a", self.address, "-n", self.namespace, *args]

    def need(self) -> None:
        if shutil.which(self.binary) is None:
            raise KataRunError(f"{self.binary} is not installed: apt-get install -y containerd (it ships ctr)")
        if not os.path.exists(self.address):
            raise KataRunError(
                f"containerd does not answer on {self.address}: no such socket; start containerd, or set "
                "answers.container.address to its socket"
            )

    def quiet(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run without streaming (listings); ``KataRunError`` when containerd cannot be reached."""
        self.need()
        r = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout, check=False)
        if r.returncode != 0 and ("failed to dial" in r.stderr or "connection refused" in r.stderr):
            raise KataRunError(
                f"containerd does not answer on {self.address}: {r.stderr.strip()}; start containerd, or set "
                "answers.container.address to its socket"
            )
        return r

    def images(self) -> set[str]:
        r = self.quiet("images", "ls", "-q")
        return {ln.strip() for ln in r.stdout.splitlines() if ln.strip()} if r.returncode == 0 else set()

    def containers(self) -> set[str]:
        r = self.quiet("containers", "ls", "-q")
        return {ln.strip() for ln in r.stdout.splitlines() if ln.strip()} if r.returncode == 0 else set()

    def tasks(self) -> dict[str, str]:
        """task id → status (RUNNING, STOPPED, …) from ``ctr task ls``."""
        r = self.quiet("tasks", "ls")
        out: dict[str, str] = {}
        for ln in r.stdout.splitlines()[1:]:
            parts = ln.split()
            if len(parts) >= 3:
                out[parts[0]] = parts[2]
        return out


def shown(argv: Sequence[str]) -> str:
    return shlex.join(list(argv))


def _pump(stream: IO[bytes], name: str, sink: EventSink, step: str, source: str, lines: list[str]) -> None:
    for raw in iter(stream.readline, b""):
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        lines.append(text)
        sink(events.line(text, stream=name, source=source, step=step))


def stream(
    argv: Sequence[str],
    sink: EventSink,
    *,
    step: str = "",
    stdin: IO[bytes] | int | None = subprocess.DEVNULL,
    timeout: float | None = None,
    source: str = "host",
) -> tuple[int, list[str]]:
    """Run ``argv`` here, each stdout/stderr line an event as it comes; (exit status, the lines)."""
    sink(events.note(f"$ {shown(argv)}", step=step))
    try:
        proc = subprocess.Popen(list(argv), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise KataRunError(f"{argv[0]} is not installed here") from None
    lines: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, "stdout", sink, step, source, lines), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, "stderr", sink, step, source, lines), daemon=True),
    ]
    for t in pumps:
        t.start()
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = 124
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    for t in pumps:
        t.join(5)
    return rc, lines


def netns_address(netns: str, device: str = "eth0") -> str | None:
    """The first IPv4 address of ``device`` in the network namespace ``netns`` (``ip -n NETNS -j addr show``)."""
    if shutil.which("ip") is None:
        raise KataRunError("ip is not installed: apt-get install -y iproute2")
    r = subprocess.run(
        ["ip", "-n", netns, "-j", "addr", "show", device], capture_output=True, text=True, timeout=10, check=False
    )
    if r.returncode != 0:
        return None
    try:
        doc: Any = json.loads(r.stdout or "[]")
    except ValueError:
        return None
    for link in doc if isinstance(doc, list) else []:
        for a in link.get("addr_info", []) if isinstance(link, dict) else []:
            if a.get("family") == "inet" and a.get("local"):
                return str(a["local"])
    return None


__all__ = ["Ctr", "KataRunError", "netns_address", "shown", "stream"]
