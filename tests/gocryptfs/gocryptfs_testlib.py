"""Shared helpers of the gocryptfs engine tests: sample trees and the driver of the real binary."""

from __future__ import annotations

import contextlib
import os
import random
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PASSWORD = b"correct horse battery staple"
FAST_LOGN = 10  # unit tests only; interop tests use the default N=65536

# Sizes around the 4096-byte block boundary.
SIZES = {
    "size-0.bin": 0,
    "size-1.bin": 1,
    "size-4095.bin": 4095,
    "size-4096.bin": 4096,
    "size-4097.bin": 4097,
    "size-5000.bin": 5000,
    "size-1MiB+3.bin": (1 << 20) + 3,
}
LONG_FILE = "L" * 176  # the shortest plaintext name that needs a long name
NOT_LONG_FILE = "S" * 175  # the longest that does not
LONG_UNICODE = "模型权重" * 21  # 252 bytes of UTF-8
MAX_NAME = "M" * 255
LONG_DIR = "D" * 200
NON_UTF8 = os.fsdecode(b"raw-\xff\xfe-name.bin")


def data(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def build_sample_tree(root: Path) -> Path:
    """A plaintext tree with every feature the format has. Deterministic contents."""
    root.mkdir(parents=True, exist_ok=True)
    for i, (name, size) in enumerate(SIZES.items()):
        (root / name).write_bytes(data(i, size))
    (root / "empty").write_bytes(b"")
    (root / "zero-blocks.bin").write_bytes(bytes(3 * 4096))  # full blocks of zeros
    with open(root / "sparse.bin", "wb") as f:  # a sparse source file (holes read as zeros)
        f.truncate(2 * 4096 + 100)
    deep = root / "nested" / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text("deep inside\n")
    (root / "nested" / "a" / "mid.bin").write_bytes(data(50, 8192))
    (root / "emptydir").mkdir()
    (root / "目录 ünïcødé").mkdir()
    (root / "目录 ünïcødé" / "文件-naïve.txt").write_text("unicode 内容\n", encoding="utf-8")
    (root / LONG_FILE).write_bytes(b"long name 176")
    (root / NOT_LONG_FILE).write_bytes(b"name of 175 bytes")
    (root / LONG_UNICODE).write_bytes(data(60, 300))
    (root / MAX_NAME).write_bytes(b"255")
    (root / LONG_DIR).mkdir()
    (root / LONG_DIR / ("f" * 180)).write_bytes(data(61, 4097))
    (root / LONG_DIR / "short").write_bytes(b"short name in a long-named dir")
    (root / NON_UTF8).write_bytes(b"name is not UTF-8")
    os.symlink("nested/a/b/c/deep.txt", root / "link-rel")
    os.symlink("/nonexistent/dangling/target", root / "link-dangling")
    os.symlink("../" + "t" * 300, root / ("link-long-" + "n" * 180))
    exe = root / "run.sh"
    exe.write_text("#!/bin/sh\necho hi\n")
    exe.chmod(0o755)
    ro = root / "readonly.txt"
    ro.write_text("read only\n")
    ro.chmod(0o444)
    priv = root / "private.key"
    priv.write_bytes(b"secret")
    priv.chmod(0o600)
    (root / "hard-a").write_bytes(data(70, 5000))
    os.link(root / "hard-a", root / "hard-b")
    rodir = root / "ro-dir"
    rodir.mkdir()
    (rodir / "inside.txt").write_text("in a read-only dir\n")
    rodir.chmod(0o555)
    return root


def tree_snapshot(root: Path) -> dict[str, tuple[str, object, int]]:
    """``{relative path: (kind, content or target, permission bits)}`` of a plaintext tree."""
    out: dict[str, tuple[str, object, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            perms = st.st_mode & 0o7777
            if path.is_symlink():
                out[rel] = ("symlink", os.readlink(path), 0)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", None, perms)
            elif stat.S_ISFIFO(st.st_mode):
                out[rel] = ("fifo", None, perms)
            else:
                out[rel] = ("file", path.read_bytes(), perms)
    return out


# ------------------------------------------------------------------------------------------------- the real binary
@dataclass
class RealGocryptfs:
    exe: str
    fusermount: str
    workdir: Path

    def passfile(self, password: bytes = PASSWORD) -> Path:
        path = self.workdir / f"pass-{password.hex()[:32]}"
        path.write_bytes(password + b"\n")
        return path

    def _log(self, name: str) -> Path:
        return self.workdir / f"{name}-{time.monotonic_ns()}.log"

    def run(self, *args: str, timeout: float = 60) -> tuple[int, str]:
        """Run a foreground gocryptfs command (not a mount); return exit code and output."""
        log = self._log("cmd")
        with open(log, "wb") as out:
            rc = subprocess.run([self.exe, *args], stdout=out, stderr=out, stdin=subprocess.DEVNULL, timeout=timeout)
        return rc.returncode, log.read_text(errors="replace")

    def init(self, cipher: Path, *extra: str, password: bytes = PASSWORD) -> None:
        cipher.mkdir(parents=True, exist_ok=True)
        rc, out = self.run("-init", "-q", *extra, "-passfile", str(self.passfile(password)), "--", str(cipher))
        assert rc == 0, f"gocryptfs -init failed ({rc}): {out}"

    def fsck(self, cipher: Path, password: bytes = PASSWORD) -> tuple[int, str]:
        return self.run("-fsck", "-passfile", str(self.passfile(password)), "--", str(cipher))

    @contextlib.contextmanager
    def mount(self, cipher: Path, mnt: Path, *extra: str, password: bytes = PASSWORD) -> Iterator[Path]:
        mnt.mkdir(parents=True, exist_ok=True)
        log = self._log("mount")
        # The daemon inherits stdout/stderr: send them to a file, never a pipe.
        with open(log, "wb") as out:
            proc = subprocess.run(
                [self.exe, "-q", *extra, "-passfile", str(self.passfile(password)), "--", str(cipher), str(mnt)],
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                timeout=60,
            )
        assert proc.returncode == 0, f"gocryptfs mount failed ({proc.returncode}): {log.read_text(errors='replace')}"
        try:
            yield mnt
        finally:
            self.unmount(mnt)

    def unmount(self, mnt: Path) -> None:
        for attempt in range(20):
            rc = subprocess.run(
                [self.fusermount, "-u", str(mnt)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            ).returncode
            if rc == 0:
                return
            time.sleep(0.1 * (attempt + 1))
        subprocess.run([self.fusermount, "-u", "-z", str(mnt)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
