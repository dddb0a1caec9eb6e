"""The native engine through the CLI: the real gocryptfs mounts its output and `diff -r` is clean, the manifest
decrypts along with the model, and bad input ends with a clear message and nothing changed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cai_tui.actions.model_manifest import MANIFEST_NAME, MARKER_NAME, build_manifest
from tests.helpers import REPO, run_cli
from tests.model.modellib import gocryptfs_mount, passfile


def test_native_output_mounts_with_real_gocryptfs(real_gocryptfs, model: Path, pw: Path, tmp_path: Path) -> None:
    dst = tmp_path / "cipher"
    r = run_cli("model", "encrypt", str(model), str(dst), "--password-file", str(pw))
    assert r.returncode == 0, r.stderr
    assert "native engine" in r.stdout and ".cai-manifest.json inside (9 files)" in r.stdout
    assert (dst / "gocryptfs.conf").exists() and not (dst / MARKER_NAME).exists()
    assert not any(p.name.endswith(".cai-partial") for p in dst.rglob("*"))
    with gocryptfs_mount(dst, tmp_path / "plain", pw, "-ro") as mnt:
        diff = subprocess.run(["diff", "-r", "--no-dereference", str(model), str(mnt)], capture_output=True, text=True)
        assert diff.stdout.strip() == f"Only in {mnt}: {MANIFEST_NAME}", diff.stdout + diff.stderr
        manifest = json.loads((mnt / MANIFEST_NAME).read_text())
    fresh = build_manifest(model)
    assert manifest["files"] == fresh["files"] and manifest["symlinks"] == {"README.md": "docs/README.md"}
    assert manifest["version"] == 1 and manifest["algorithm"] == "sha256"
    assert manifest["created_by"].startswith("cai-tui ")
    fsck = subprocess.run(["gocryptfs", "-fsck", "-passfile", str(pw), "--", str(dst)], capture_output=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_a_decrypted_models_old_manifest_is_replaced(pristine, tmp_path: Path, pw: Path) -> None:
    from cai_tui.gocryptfs import decrypt_tree

    plain = tmp_path / "plain"
    decrypt_tree(pristine[1], plain, b"alibaba@1688")
    assert (plain / MANIFEST_NAME).exists()
    (plain / "docs" / "README.md").write_text("changed\n")
    r = run_cli("model", "encrypt", str(plain), str(tmp_path / "again"), "--password-file", str(pw), "--workers", "1")
    assert r.returncode == 0, r.stderr
    r = run_cli("model", "verify", str(tmp_path / "again"), "--password-file", str(pw))
    assert r.returncode == 0, r.stdout + r.stderr


def test_destination_not_empty_is_an_input_error(model: Path, pw: Path, tmp_path: Path) -> None:
    dst = tmp_path / "cipher"
    dst.mkdir()
    (dst / "keep.txt").write_text("mine")
    for engine in ("native", "fuse"):
        r = run_cli("model", "encrypt", str(model), str(dst), "--password-file", str(pw), "--engine", engine)
        assert r.returncode == 2, r.stderr
        assert f"error: {dst} is not empty; give an absent or empty destination (nothing was changed)" in r.stderr
        assert os.listdir(dst) == ["keep.txt"]


def test_password_file_problems(model: Path, tmp_path: Path) -> None:
    dst = tmp_path / "cipher"
    r = run_cli("model", "encrypt", str(model), str(dst), "--password-file", str(tmp_path / "absent"))
    assert r.returncode == 2 and "cannot read it (No such file or directory)" in r.stderr
    empty = tmp_path / "empty"
    empty.write_bytes(b"\nsecond line")
    r = run_cli("model", "encrypt", str(model), str(dst), "--password-file", str(empty))
    assert r.returncode == 2 and "the first line is empty" in r.stderr
    assert not dst.exists()
    r = run_cli("model", "encrypt", str(model), str(dst), "--password-file", str(empty), "--engine", "nope")
    assert r.returncode == 2 and "--engine 'nope': use native or fuse" in r.stderr


def test_password_is_the_first_line_as_gocryptfs_reads_it(real_gocryptfs, model: Path, tmp_path: Path) -> None:
    """A file with more lines: native writes with the first line; the real gocryptfs opens it with -passfile."""
    pw = tmp_path / "pw"
    pw.write_bytes(b"first-line-secret\nsecond line\n")
    dst = tmp_path / "cipher"
    r = run_cli("model", "encrypt", str(model), str(dst), "--password-file", str(pw))
    assert r.returncode == 0 and "only the first line is the password" in r.stderr
    assert "first-line-secret" not in r.stdout + r.stderr
    with gocryptfs_mount(dst, tmp_path / "m", passfile(tmp_path / "only", b"first-line-secret"), "-ro") as mnt:
        assert (mnt / "config.json").read_bytes() == (model / "config.json").read_bytes()


def test_ctrl_c_leaves_the_output_marked_incomplete(model: Path, pw: Path, tmp_path: Path) -> None:
    with open(model / "big.bin", "wb") as f:
        f.truncate(2 << 30)  # sparse: reads fast, and still takes seconds to encrypt
    dst = tmp_path / "cipher"
    argv = [sys.executable, "-m", "cai_tui.cli.main", "model", "encrypt", str(model), str(dst)]
    proc = subprocess.Popen([*argv, "--password-file", str(pw)], cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not any(p.name.endswith(".cai-partial") for p in dst.glob("*")) and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert f"interrupted: {dst} is left incomplete (marked {MARKER_NAME}, no gocryptfs.conf)" in err
    assert (dst / MARKER_NAME).is_file() and not (dst / "gocryptfs.conf").exists()
