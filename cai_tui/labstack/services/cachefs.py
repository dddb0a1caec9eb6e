"""cachefs stand-in: decrypt and mount the model at MODEL_MOUNT_POINT with the REAL gocryptfs.

It waits (bounded, ``CAI_LAB_WAIT_S``, default 60 s) for the oss service's ``cipher.ready`` and CDH's
``model.key``, then runs ``gocryptfs -fg -passfile <key> [-allow_other] <cipher> <MODEL_MOUNT_POINT>`` with its
stdout/stderr inherited (its own messages, e.g. ``Password incorrect.``, reach the container log untouched) and
exits with its exit code (12 wrong password, 11 no gocryptfs.conf — a nested layout fails so, 10 bad mount
point, …). SIGTERM/SIGINT are passed on: gocryptfs unmounts and exits.

``MODEL_ENCRYPTION_METHOD=sam``: the real stack decrypts Sam packages, which the lab stand-in cannot; it says so,
and on a gocryptfs tree it fails as a Sam loader would on a file that is not a Sam package.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from . import _env
from ._log import emit

SERVICE = "cachefs"
GOCRYPTFS = "gocryptfs"
WAIT_LOG_EVERY_S = 5.0


def log(message: str) -> None:
    emit(f"cachefs: {message}")


def wait_for_inputs(timeout: float) -> bool:
    """True once cipher.ready and a non-empty model.key exist; logs what it still waits for."""
    ready, key = _env.cipher_ready(), _env.model_key()
    deadline = time.monotonic() + timeout
    next_log = 0.0
    while True:
        missing = [str(p) for p, ok in ((ready, ready.exists()), (key, _nonempty(key))) if not ok]
        if not missing:
            return True
        now = time.monotonic()
        if now >= deadline:
            log(f"gave up after {timeout:g} s waiting for {' and '.join(missing)} (written by the oss and "
                "confidential-data-hub services: check those containers)")  # fmt: skip
            return False
        if now >= next_log:
            log(f"waiting for {' and '.join(missing)}")
            next_log = now + WAIT_LOG_EVERY_S
        time.sleep(0.2)


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def find_gocryptfs_conf(root: Path) -> Path | None:
    for candidate in [root / "gocryptfs.conf", *sorted(root.glob("*/gocryptfs.conf"))]:
        if candidate.is_file():
            return candidate
    return None


def run_gocryptfs(cipher: Path, mount_point: Path, key: Path) -> int:
    binary = os.environ.get("CAI_LAB_GOCRYPTFS") or shutil.which(GOCRYPTFS) or GOCRYPTFS
    argv = [binary, "-fg", "-passfile", str(key)]
    if os.environ.get("CAI_LAB_ALLOW_OTHER", "1") != "0":
        argv.append("-allow_other")
    argv += ["--", str(cipher), str(mount_point)]
    try:
        mount_point.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log(f"cannot create mount point {mount_point}: {exc.strerror}")
    log(f"running {' '.join(argv)}")
    sys.stderr.flush()
    try:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)  # stdout/stderr inherited: gocryptfs's own output
    except OSError as exc:
        log(f"cannot run {binary}: {exc.strerror}")
        return 127

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    rc = child.wait()
    if rc < 0:  # killed by a signal: report it the shell's way
        rc = 128 - rc
    log(f"gocryptfs exited with code {rc}")
    return rc


def sam_unsupported(cipher: Path) -> int:
    log("MODEL_ENCRYPTION_METHOD=sam: the real CAI stack decrypts Sam packages; the cai-tui lab stand-in does not "
        "support the Sam format")  # fmt: skip
    conf = find_gocryptfs_conf(cipher)
    files = sorted(p for p in cipher.rglob("*") if p.is_file())
    if conf is not None:
        head = conf.read_bytes()[:8]
        emit(f"sam: {conf}: not a Sam package (magic {head.hex()} {head!r}): this looks like a gocryptfs cipherdir, "
             "set MODEL_ENCRYPTION_METHOD=gocryptfs")  # fmt: skip
    elif files:
        head = files[0].read_bytes()[:8]
        emit(f"sam: {files[0]}: not a Sam package the lab can read (magic {head.hex()})")
    else:
        emit(f"sam: {cipher}: no model package found")
    return 1


def main(argv: list[str]) -> int:
    try:
        method = _env.require("MODEL_ENCRYPTION_METHOD", SERVICE).lower()
        mount_point = Path(_env.require("MODEL_MOUNT_POINT", SERVICE))
    except _env.EnvProblem as exc:
        return _env.report(exc)
    if method not in ("gocryptfs", "sam"):
        emit(f"cachefs: MODEL_ENCRYPTION_METHOD={method!r} is not supported; use gocryptfs or sam (cai.env)")
        return 1
    if not wait_for_inputs(_env.env_float("CAI_LAB_WAIT_S", 60.0)):
        return 1
    cipher = _env.cipher_dir()
    if method == "sam":
        return sam_unsupported(cipher)
    return run_gocryptfs(cipher, mount_point, _env.model_key())
