"""The real ``tng`` binary as the judge of a configuration: parse and check only, with no network.

``tng`` has no parse-only mode: ``tng launch --config-content`` parses, checks the configuration, then starts. It runs
here in a fresh network namespace (``unshare --net`` as root, else ``unshare --user --map-root-user --net``), so it can
reach nothing and nothing can reach it, and it is stopped as soon as its log shows how it went:

- ``Failed to load config`` before ``Starting tng instance now``: serde refused the document (a parse error);
- after that line, an error that names a configuration rule (``Invalid parameter``: no_ra with verify, a bad URL …;
  capture_dst rules; a regex that does not compile): the configuration is refused;
- an error about this machine (a certificate file missing, DNS, connect, bind, iptables), or
  ``All services are ready``, or still running when the time is up: the configuration passed parsing and checks.

Each attestation agent socket the configuration names (``aa_addr``) is pointed at an empty stand-in file, because
TNG checks that the socket exists before the entry's other checks. TNG checks its entries one by one and stops at the
first error, so when an entry stopped at this machine's error the entries are run again one at a time.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

RUN_TIMEOUT_S = 8.0
PARSED = "Starting tng instance now"
READY = "All services are ready"
LOAD_FAILED = "Failed to load config"
# errors that come from this machine, not from the configuration: the configuration was accepted
MACHINE_ERRORS = (
    "AA socket file",
    "certificate path does not exist",
    "file path does not exist",
    "Policy file path does not exist",
    "No such file or directory",
    "error sending request",
    "dns error",
    "error resolving",
    "client error (Connect)",
    "Connection refused",
    "Network is unreachable",
    "Address already in use",
    "Cannot assign requested address",
    "Permission denied",
    "Operation not permitted",
    "Failed to setup iptables rules",
    "not running in cgroup v2",
    "Failed to connect to Attestation Agent",
    "ttrpc",
    "Failed to fetch certificates",
    "is not yet implemented",
    "os error",
)
_TS = re.compile(r"^\S+Z\s+(INFO|WARN|ERROR|DEBUG|TRACE)\s+")


@dataclass
class BinaryRun:
    """How one ``tng launch`` went: ``refused`` (stage parse or check) or ``accepted`` (stage runtime or ready)."""

    outcome: Literal["refused", "accepted"]
    stage: Literal["parse", "check", "runtime", "ready", "running"]
    message: str  # tng's own error chain, "" when none
    log: list[str] = field(default_factory=list)
    path: str = ""  # the JSON path a parse error points at (serde's line, in the one-key-a-line text tng was given)


@functools.lru_cache(maxsize=1)
def sandbox() -> tuple[str, ...] | None:
    """The command prefix that gives a fresh network namespace here, or None when none works (then the models judge)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefixes: list[tuple[str, ...]] = []
    if os.geteuid() == 0:
        prefixes.append((unshare, "--net"))
    prefixes.append((unshare, *USER_NS))
    for prefix in prefixes:
        try:
            ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return prefix
    return None


def pretty_with_paths(value: Any) -> tuple[str, list[str]]:
    """``value`` as JSON with one key or item a line, and the JSON path each line holds (serde names a line)."""
    lines: list[str] = []
    paths: list[str] = []

    def emit(text: str, path: str) -> None:
        lines.append(text)
        paths.append(path)

    def walk(v: Any, path: str, indent: str, head: str, tail: str) -> None:
        if isinstance(v, dict) and v:
            emit(indent + head + "{", path)
            items = list(v.items())
            for n, (k, x) in enumerate(items):
                sub = f"{path}.{k}" if path else str(k)
                walk(x, sub, indent + "  ", json.dumps(str(k)) + ": ", "," if n < len(items) - 1 else "")
            emit(indent + "}" + tail, path)
        elif isinstance(v, list) and v:
            emit(indent + head + "[", path)
            for n, x in enumerate(v):
                walk(x, f"{path}[{n}]", indent + "  ", "", "," if n < len(v) - 1 else "")
            emit(indent + "]" + tail, path)
        else:
            emit(indent + head + json.dumps(v, ensure_ascii=False) + tail, path)

    walk(value, "", "", "", "")
    return "\n".join(lines), paths


def path_of(message: str, paths: list[str]) -> str:
    """The JSON path serde's "at line L column C" points at ("" when the message names no line)."""
    m = re.search(r"at line (\d+) column \d+", message)
    if not m or not 0 < int(m.group(1)) <= len(paths):
        return ""
    return paths[int(m.group(1)) - 1]


def _error_chain(lines: list[str]) -> str:
    """The ERROR line's ``error=…`` and its "Caused by" chain, without the stack backtrace."""
    out: list[str] = []
    taking = False
    for ln in lines:
        m = _TS.match(ln)
        if m:
            if taking:
                break
            if m.group(1) == "ERROR":
                taking = True
                text = ln[m.end() :]
                out.append(text.split("error=", 1)[1] if "error=" in text else text)
            continue
        if not taking:
            continue
        s = ln.strip()
        if s.startswith("Stack backtrace"):
            break
        if s and s != "Caused by:":
            out.append(re.sub(r"^\d+:\s*", "", s))
    return ": ".join(out)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=3)


def _stand_ins(config: Any, where: Path) -> Any:
    """``config`` with each ``aa_addr`` socket (unix:///…) pointed at an empty file under ``where``: TNG checks that the
    socket exists before its later checks of the entry, and that is this machine's business, not the schema's."""
    if isinstance(config, list):
        return [_stand_ins(x, where) for x in config]
    if not isinstance(config, dict):
        return config
    out: dict[str, Any] = {}
    for k, v in config.items():
        if k == "aa_addr" and isinstance(v, str) and v.startswith("unix:///"):
            sock = where / f"aa-{len(list(where.iterdir()))}.sock"
            sock.touch()
            out[k] = "unix://" + str(sock)
        else:
            out[k] = _stand_ins(v, where)
    return out


USER_NS = ("--user", "--map-root-user", "--net")  # what a user other than root gets


def run_once(
    binary: str, config: Any, *, timeout: float = RUN_TIMEOUT_S, prefix: tuple[str, ...] | None = None
) -> BinaryRun:
    """Launch ``binary`` on ``config`` in a fresh network namespace (``prefix``: the command that makes it, default
    :func:`sandbox`'s); stop it as soon as its verdict shows."""
    with tempfile.TemporaryDirectory(prefix="tng-judge-") as tmp:
        return _run_once(binary, _stand_ins(config, Path(tmp)), timeout=timeout, prefix=prefix or sandbox())


def _run_once(binary: str, config: Any, *, timeout: float, prefix: tuple[str, ...] | None) -> BinaryRun:
    if prefix is None:
        raise OSError("no network namespace can be made here (unshare --net needs root or user namespaces)")
    text, paths = (config, []) if isinstance(config, str) else pretty_with_paths(config)
    env = {**os.environ, "RUST_BACKTRACE": "0", "RUST_LIB_BACKTRACE": "0", "NO_COLOR": "1", "TNG_LOG_FORMAT": "text"}
    proc = subprocess.Popen(
        [*prefix, binary, "launch", "--config-content", text],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env=env,
        start_new_session=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for ln in proc.stdout:
            lines.append(ln.rstrip("\n"))
            if READY in ln:
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.05):
        if time.monotonic() > deadline:
            break
    still_running = proc.poll() is None
    _stop(proc)
    reader.join(timeout=3)
    log = list(lines)
    parsed = any(PARSED in ln for ln in log)
    chain = _error_chain(log)
    if any(READY in ln for ln in log) and not chain:
        return BinaryRun("accepted", "ready", "", log)
    if chain:
        if not parsed or LOAD_FAILED in chain:
            return BinaryRun("refused", "parse", chain.removeprefix(LOAD_FAILED + ": "), log, path_of(chain, paths))
        if any(m.lower() in chain.lower() for m in MACHINE_ERRORS):
            return BinaryRun("accepted", "runtime", chain, log)
        return BinaryRun("refused", "check", chain.removeprefix("Invalid parameter: "), log)
    if still_running and parsed:
        return BinaryRun("accepted", "running", "", log)
    tail = " | ".join(ln for ln in log[-5:] if ln.strip())
    if parsed:
        return BinaryRun("accepted", "runtime", tail, log)
    return BinaryRun("refused", "parse", tail or f"tng exited {proc.returncode} without a word", log)


def judge(binary: str, config: Any, *, timeout: float = RUN_TIMEOUT_S) -> tuple[BinaryRun, list[str]]:
    """The binary's verdict on the whole configuration, and notes.

    When the run stopped at this machine's error, each entry is run alone (TNG stops at the first error, so later
    entries were not reached), and an entry with ``attest`` is run once more with its ``attest`` set aside (its
    attestation agent does not run here, and TNG connects to it before the checks that follow: a peer_shared key's
    own ``verify``, for one). A refusal there counts unless it is about the ``no_ra`` put in its place."""
    first = run_once(binary, config, timeout=timeout)
    notes: list[str] = []
    if first.stage != "runtime" or not isinstance(config, dict):
        return first, notes
    notes.append(f"tng stopped at an error of this machine, not of the configuration: {first.message}")
    entries = [(k, i, e) for k in ("add_ingress", "add_egress") for i, e in enumerate(config.get(k) or [])]
    for key, i, entry in entries:
        run = run_once(binary, {key: [entry]}, timeout=timeout) if len(entries) > 1 else first
        if run.outcome == "refused":
            run.message = f"{key}[{i}]: {run.message}"
            return run, notes
        if run.stage == "runtime" and isinstance(entry, dict) and "attest" in entry:
            variant = {k: v for k, v in entry.items() if k != "attest"}
            if "verify" not in variant:
                variant["no_ra"] = True
            probe = run_once(binary, {key: [variant]}, timeout=timeout)
            if probe.outcome == "refused" and "no_ra" not in probe.message:
                probe.message = f"{key}[{i}] (its attest set aside: no attestation agent runs here): {probe.message}"
                return probe, notes
    return first, notes
