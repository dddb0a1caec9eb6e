"""Helpers for the end-to-end tests of the installed wizard (tmux) and of ``cai-tui serve`` (a browser, a websocket).

Each run gets its own ``CAI_TUI_HOME``; the processes of a run are found by that variable in their environment, so a
test can prove that nothing of its run is left once the wizard or the server has stopped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import helpers
from tests.conftest import REPO_ROOT, loopback_env

CHROMIUM = "/usr/bin/chromium"
ANSI = re.compile(r"\x1b(?:\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[@-Z\\-_])")


def plain(terminal_output: str) -> str:
    """Terminal output without its escape sequences (the text of each styled run stays whole)."""
    return ANSI.sub("", terminal_output)


def pids_with_env(name: str, value: str) -> list[int]:
    """Processes (other than this one) whose environment has ``name=value``."""
    needle = f"{name}={value}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(int(entry.name))
    return found


def describe(pids: list[int]) -> str:
    out = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            out.append(f"{pid}: {cmdline}")
        except OSError:
            out.append(f"{pid}: (gone)")
    return "\n".join(out)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """tests.helpers.wait_until, polling less often (the end-to-end tests watch whole processes)."""
    return helpers.wait_until(predicate, timeout, interval)


def require_tool(path_or_name: str, install: str) -> str:
    """The tool's path; fails (never skips) when it is missing: scripts/test.sh installs it."""
    found = shutil.which(path_or_name)
    if found is None:
        pytest.fail(f"{path_or_name} is missing: {install} (scripts/test.sh installs it)")
    return found


def installed_cai_tui() -> Path:
    """The ``cai-tui`` console script of this interpreter's environment (what ``pip install`` put there)."""
    exe = Path(sys.executable).parent / "cai-tui"
    if not exe.is_file():
        pytest.fail(f"{exe} is missing: install the package into this environment (pip install -e '.[test]')")
    return exe


@dataclass
class Served:
    """A ``cai-tui serve --port 0`` subprocess and the address it printed once listening."""

    proc: subprocess.Popen[str]
    url: str
    home: Path
    stderr_path: Path

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text("utf-8", "replace")

    def stop(self, timeout: float = 30) -> int:
        """Ctrl-C (SIGINT) and the exit code; fails when it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(2)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            pytest.fail(f"cai-tui serve did not stop within {timeout} s of SIGINT\n{self.stderr}")

    def leftovers(self) -> list[int]:
        return pids_with_env("CAI_TUI_HOME", str(self.home))


def start_serve(tmp_path: Path, *args: str, timeout: float = 20) -> Served:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {**loopback_env(), "CAI_TUI_HOME": str(home)}
    err = tmp_path / "serve.stderr"
    with open(err, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cai_tui.cli.main", "serve", "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=f,
            text=True,
            env=env,
            cwd=tmp_path,
        )
    served = Served(proc, "", home, err)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or "http://" in line:
            break
    match = re.search(r"http://\S+", line)
    if match is None:
        proc.kill()
        proc.wait(timeout=10)
        pytest.fail(f"cai-tui serve printed no address (got {line!r})\nstderr:\n{served.stderr}")
    served.url = match.group(0)
    return served


__all__ = ["CHROMIUM", "REPO_ROOT", "Served", "describe", "pids_with_env", "plain", "require_tool", "start_serve"]
