"""Helpers of the model tests: small synthetic model directories and the real gocryptfs binary."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

PASSWORD = b"alibaba@1688"
BLOCK, CIPHER_BLOCK, HEADER = 4096, 4128, 18
SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"


def write_safetensors(path: Path, n: int, seed: int) -> None:
    """A valid safetensors file: one U8 tensor of ``n`` random bytes."""
    header = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        f.write(random.Random(seed).randbytes(n))


def build_model(root: Path, *, shard_sizes: tuple[int, int] = (300_000, 70_001)) -> Path:
    """A small model as ModelScope lays it out, plus a sub-folder, an empty file and a symlink."""
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}))
    (root / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {"a": 0}}}))
    (root / "tokenizer_config.json").write_text("{}")
    (root / "generation_config.json").write_text('{"do_sample": true}')
    write_safetensors(root / SHARD1, shard_sizes[0], 1)
    write_safetensors(root / SHARD2, shard_sizes[1], 2)
    weight_map = {"a.weight": SHARD1, "b.weight": SHARD2}
    (root / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (root / "docs").mkdir()
    (root / "docs" / "README.md").write_text("# a model\n")
    (root / "docs" / "empty.txt").write_bytes(b"")
    os.symlink("docs/README.md", root / "README.md")
    return root


def passfile(path: Path, password: bytes = PASSWORD) -> Path:
    path.write_bytes(password + b"\n")
    return path


def is_mounted(path: Path | str) -> bool:
    real = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return any(line.split()[1] == real for line in f)


def fuse_mounts_under(prefix: str) -> list[str]:
    """FUSE mountpoints under ``prefix``, or whose source (a gocryptfs cipherdir) is under it."""
    with open("/proc/mounts") as f:
        rows = [line.split() for line in f]
    return [r[1] for r in rows if "fuse" in r[2] and (r[1].startswith(prefix) or r[0].startswith(prefix))]


def require_real_gocryptfs() -> tuple[str, str]:
    """The real gocryptfs and fusermount; fails (never skips) when missing: scripts/test.sh installs them."""
    import pytest

    exe = shutil.which("gocryptfs")
    fm = shutil.which("fusermount3") or shutil.which("fusermount")
    problems = [
        m
        for ok, m in (
            (exe, "gocryptfs is not on PATH"),
            (fm, "fusermount3/fusermount is not on PATH"),
            (os.path.exists("/dev/fuse"), "/dev/fuse is missing"),
            (os.geteuid() == 0, "FUSE mounts in these tests need root"),
        )
        if not ok
    ]
    if problems:
        pytest.fail("model tests need the real gocryptfs with FUSE: " + "; ".join(problems), pytrace=False)
    assert exe is not None and fm is not None
    return exe, fm


def unmount(mnt: Path | str) -> None:
    fm = shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount"
    for attempt in range(20):
        if not is_mounted(mnt):
            return
        subprocess.run([fm, "-u", str(mnt)], capture_output=True)
        time.sleep(0.05 * attempt)
    subprocess.run([fm, "-u", "-z", str(mnt)], capture_output=True)


@contextlib.contextmanager
def gocryptfs_mount(cipher: Path, mnt: Path, pw_file: Path, *extra: str) -> Iterator[Path]:
    """Mount ``cipher`` with the real binary (output to a file: the daemon inherits it); always unmount."""
    mnt.mkdir(parents=True, exist_ok=True)
    log = mnt.parent / f"{mnt.name}.mount.log"
    with open(log, "wb") as out:
        rc = subprocess.run(
            ["gocryptfs", "-q", *extra, "-passfile", str(pw_file), "--", str(cipher), str(mnt)],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            timeout=60,
        ).returncode
    assert rc == 0, f"gocryptfs mount failed ({rc}): {log.read_text()}"
    try:
        yield mnt
    finally:
        unmount(mnt)
    assert not is_mounted(mnt)


def block_offset(block: int) -> int:
    return HEADER + block * CIPHER_BLOCK


def cipher_file_of(cipher_dir: Path, rel: str, password: bytes = PASSWORD) -> Path:
    """The ciphertext file that holds plaintext ``rel`` (found through the native reader)."""
    from cai_tui.gocryptfs import open_cipherdir

    return Path(open_cipherdir(cipher_dir, password).lookup(rel).cipher_path)
