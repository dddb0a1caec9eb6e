"""CAI-6.2: the TNG client on this machine — the real ``tng`` binary of the ``tng-sdk`` wheel, started in the background.

The config is the tng-client artifact's (:func:`cai_tui.render.tng.client_config`), generated for the version of the
binary that runs it and validated against that version's schema. The process writes its log under the state
directory; a small JSON file beside it (pid, listen address, binary) lets ``cai-tui tng stop`` find it again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
SETTLE_S = 2.0  # still running this long after its port listens: it got past its start-up checks
TAIL_LINES = 12
INSTALL_HINT = (
    "install it with `pip install 'cai-tui[tng]'` (the tng-sdk wheel brings the tng binary), or run the documented "
    "container instead: `cai-tui render tng-client --recipe FILE` prints its docker run line"
)


class TngError(Exception):
    """A launch or stop that did not work; the message is one paragraph a person reads."""


@dataclass(frozen=True)
class Running:
    pid: int
    host: str
    port: int
    binary: str
    log: str


def state_files() -> tuple[Path, Path]:
    """(the JSON pid file, the log) of the TNG client cai-tui starts."""
    from ..paths import state_dir

    d = state_dir() / "tng"
    return d / "tng-client.json", d / "tng-client.log"


def find_binary() -> str | None:
    """The tng binary: beside this interpreter (the wheel's script), else on PATH."""
    beside = Path(sys.executable).with_name("tng")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("tng")


def binary_version(binary: str) -> str | None:
    """``tng --version`` → "2.12.0"; None when it says nothing recognisable."""
    try:
        res = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"\btng\s+v?(\d+\.\d+\.\d+)", res.stdout + res.stderr)
    return m.group(1) if m else None


def config_for(recipe: Any, version: str | None) -> tuple[dict[str, Any], str]:
    """The client config for the binary's version (the recipe's tng.version when unknown), validated; and that version.

    RenderError/TngConfigError (from cai_tui.render) when the recipe cannot make one."""
    from ..render.base import RenderError
    from ..render.tng import client_config, parse_version, validate_config

    use = recipe.answers.tng.version
    if version is not None:
        try:
            parse_version(version)
            use = version
        except Exception:
            pass
    local = recipe.model_copy(deep=True)
    local.answers.tng.version = use
    config = client_config(local)
    try:
        validate_config(config, use)
    except Exception as e:
        raise RenderError(f"the generated TNG {use} config is invalid: {e}") from None
    return config, use


def listens(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process is not alive
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def _is_tng(pid: int, binary: str) -> bool:
    """The process is still the tng we started (its command line), not a recycled pid."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _alive(pid)
    return (
        bool(argv) and (argv[0].decode(errors="replace") == binary or argv[0].endswith(b"/tng")) and b"launch" in argv
    )


def running() -> Running | None:
    """The TNG client cai-tui started, when it still runs; a stale pid file is removed."""
    pid_file, _log = state_files()
    try:
        doc = json.loads(pid_file.read_text("utf-8"))
        info = Running(int(doc["pid"]), str(doc["host"]), int(doc["port"]), str(doc["binary"]), str(doc["log"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _alive(info.pid) and _is_tng(info.pid, info.binary):
        return info
    pid_file.unlink(missing_ok=True)
    return None


def meaningful_tail(text: str, limit: int = TAIL_LINES) -> list[str]:
    """tng's own words: the ERROR lines with their "Caused by" chains (no stack backtrace), else the last lines."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    picked: list[str] = []
    keep = False
    for ln in lines:
        if " ERROR " in ln or (" WARN " in ln and "error" in ln.lower()):
            keep = True
        elif ln.strip().startswith("Stack backtrace") or re.match(r"^\s+\d+: <unknown>$", ln):
            keep = False
            continue
        elif re.match(r"^\d{4}-\d\d-\d\dT", ln):
            keep = False
        if keep:
            picked.append(ln)
    chosen = picked or [ln for ln in lines if not re.match(r"^\s+\d+: ", ln)]
    return chosen[-limit:]


def launch(recipe: Any, binary: str, *, timeout: float = START_TIMEOUT_S) -> tuple[Running, str]:
    """Start ``tng launch`` in the background and wait until its proxy port listens; (running, config version).

    TngError when it exits first (its own log lines quoted), or does not listen in time (then it is stopped)."""
    t = recipe.answers.tng
    host, port = str(t.proxy_host), int(t.proxy_port)
    config, version = config_for(recipe, binary_version(binary))
    pid_file, log = state_files()
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    taken = listens(host, port)
    with log.open("ab") as out:
        start = out.tell()
        out.write(
            f"--- cai-tui tng launch {time.strftime('%Y-%m-%dT%H:%M:%S%z')} ({binary}, config {version})\n".encode()
        )
        out.flush()
        proc = subprocess.Popen(
            [binary, "launch", "--config-content", json.dumps(config, separators=(",", ":"))],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    info = Running(proc.pid, host, port, binary, str(log))
    deadline = time.monotonic() + timeout
    settled: float | None = None
    while True:
        rc = proc.poll()
        if rc is not None:
            said = meaningful_tail(_read_from(log, start))
            where = f"{host}:{port} was already in use before the launch; " if taken else ""
            when = "right after its proxy listened" if settled is not None else "before its proxy listened"
            raise TngError(
                f"tng exited with code {rc} {when} on {host}:{port}; {where}its log ({log}) says:\n"
                + "\n".join(f"  {ln}" for ln in said)
            )
        if not taken and listens(host, port):
            if settled is None:
                settled = time.monotonic() + SETTLE_S  # tng listens before it fetches the AS certificate
            elif time.monotonic() >= settled:
                break
        if time.monotonic() > deadline:
            _terminate(proc.pid)
            proc.wait(5)
            why = f"{host}:{port} is used by another program" if taken else f"nothing listens on {host}:{port}"
            said = meaningful_tail(_read_from(log, start))
            raise TngError(
                f"tng did not start its proxy within {timeout:g}s ({why}); stopped it. Its log ({log}) says:\n"
                + "\n".join(f"  {ln}" for ln in said)
            )
        time.sleep(0.1)
    pid_file.write_text(
        json.dumps({"pid": info.pid, "host": host, "port": port, "binary": binary, "log": str(log)}), "utf-8"
    )
    return info, version


def _read_from(log: Path, offset: int) -> str:
    try:
        with log.open("rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _terminate(pid: int, timeout: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; True when it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it when it is our child
        except ChildProcessError:
            pass
        if not _alive(pid):
            return True
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    return False


def stop() -> Running | None:
    """Stop the TNG client cai-tui started; what was stopped, or None when none runs."""
    info = running()
    if info is None:
        return None
    _terminate(info.pid)
    state_files()[0].unlink(missing_ok=True)
    return info


__all__ = [
    "INSTALL_HINT",
    "Running",
    "TngError",
    "binary_version",
    "config_for",
    "find_binary",
    "launch",
    "listens",
    "meaningful_tail",
    "running",
    "state_files",
]
