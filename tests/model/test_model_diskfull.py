"""Disk full during encryption (a 2 MiB tmpfs as the destination): a clear message, the output marked incomplete
and never taken for complete by `verify`; the FUSE engine unmounts."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cai_tui.actions.model_encrypt import INCOMPLETE_CONF
from cai_tui.actions.model_manifest import MARKER_NAME
from tests.helpers import run_cli
from tests.model.modellib import build_model, fuse_mounts_under, is_mounted


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    assert r.returncode == 0, f"cannot mount a tmpfs (these tests run as root): {r.stderr}"
    try:
        yield mnt
    finally:
        for sub in fuse_mounts_under(str(mnt)):
            subprocess.run(["fusermount3", "-u", "-z", sub], capture_output=True)
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
    assert not is_mounted(mnt)


@pytest.fixture
def big_model(tmp_path: Path) -> Path:
    return build_model(tmp_path / "model", shard_sizes=(1_500_000, 1_500_000))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_native_disk_full(small_disk: Path, big_model: Path, pw: Path, workers: str) -> None:
    dst = small_disk / "cipher"
    r = run_cli("model", "encrypt", str(big_model), str(dst), "--password-file", str(pw), "--workers", workers)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "error: disk full while encrypting (No space left on device)" in r.stderr
    assert f"{dst} is left incomplete (marked {MARKER_NAME}, no gocryptfs.conf)" in r.stderr
    assert (dst / MARKER_NAME).is_file() and not (dst / "gocryptfs.conf").exists()
    assert not any(p.name.endswith(".cai-partial") for p in dst.rglob("*"))
    r = run_cli("model", "verify", str(dst), "--password-file", str(pw))
    assert r.returncode == 1 and "unfinished encryption" in r.stderr and "not a usable model" in r.stderr


def test_fuse_disk_full(real_gocryptfs, small_disk: Path, big_model: Path, pw: Path) -> None:
    dst = small_disk / "cipher"
    r = run_cli("model", "encrypt", str(big_model), str(dst), "--password-file", str(pw), "--engine", "fuse")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "error: disk full while copying into the gocryptfs mount" in r.stderr
    assert f"{dst} is left incomplete (marked {MARKER_NAME}, no gocryptfs.conf)" in r.stderr
    assert (dst / MARKER_NAME).is_file() and not (dst / "gocryptfs.conf").exists() and (dst / INCOMPLETE_CONF).exists()
    assert fuse_mounts_under("/tmp/cai-tui-plain-") == []
    r = run_cli("model", "verify", str(dst), "--password-file", str(pw))
    assert r.returncode == 1 and "unfinished encryption" in r.stderr
