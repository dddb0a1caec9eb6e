"""The FUSE engine with the real gocryptfs: init, mount, copy the contents, unmount on every exit path (success, an
error mid-copy, SIGINT/SIGTERM to the CLI), and gocryptfs' exit codes turned into clear messages."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from cai_tui.actions import ActionError
from cai_tui.actions.model_encrypt import INCOMPLETE_CONF, GocryptfsBinary, parse_version
from cai_tui.actions.model_manifest import MANIFEST_NAME, MARKER_NAME
from tests.helpers import REPO, run_cli
from tests.model.modellib import PASSWORD, gocryptfs_mount, is_mounted, passfile, unmount


def assert_left_incomplete(dst: Path) -> None:
    assert (dst / MARKER_NAME).is_file()
    assert not (dst / "gocryptfs.conf").exists()
    assert (dst / INCOMPLETE_CONF).exists()


def test_fuse_engine_end_to_end(real_gocryptfs, model: Path, pw: Path, tmp_path: Path) -> None:
    dst, mnt = tmp_path / "cipher", tmp_path / "plain"
    mnt.mkdir()
    temps_before = {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("cai-tui-plain-")}
    r = run_cli("model", "encrypt", str(model), str(dst), "--password-file", str(pw), "--engine", "fuse")
    assert r.returncode == 0, r.stderr
    temps_after = {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("cai-tui-plain-")}
    assert temps_after <= temps_before  # the temporary mountpoint is gone
    given = tmp_path / "given-mountpoint"
    given.mkdir()
    r2 = run_cli(
        "model", "encrypt", str(model), str(tmp_path / "c2"), "--password-file", str(pw), "--engine", "fuse",
        "--mountpoint", str(given),
    )  # fmt: skip
    assert r2.returncode == 0, r2.stderr
    assert not is_mounted(given) and os.listdir(given) == []  # the user's mountpoint is kept, empty
    version = subprocess.run(["gocryptfs", "-version"], capture_output=True, text=True).stdout
    shown = ".".join(map(str, parse_version(version) or ()))
    assert f"gocryptfs {shown}" in r.stderr and "FUSE engine" in r.stdout
    assert not (dst / MARKER_NAME).exists() and (dst / "gocryptfs.conf").exists()
    r = run_cli("model", "verify", str(dst), "--password-file", str(pw))
    assert r.returncode == 0 and "ok: 9 of 9 files" in r.stdout, r.stdout + r.stderr
    with gocryptfs_mount(dst, mnt, pw, "-ro"):
        diff = subprocess.run(["diff", "-r", "--no-dereference", str(model), str(mnt)], capture_output=True, text=True)
        assert diff.stdout.strip() == f"Only in {mnt}: {MANIFEST_NAME}", diff.stdout + diff.stderr
    with open("/proc/mounts") as f:
        assert "cai-tui-plain-" not in f.read()


def test_error_mid_copy_unmounts_and_marks_incomplete(real_gocryptfs, model: Path, pw: Path, tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(model / "docs" / "zz.sock"))  # copied after docs/README.md and docs/empty.txt
    dst, mnt = tmp_path / "cipher", tmp_path / "plain"
    mnt.mkdir()
    try:
        r = run_cli(
            "model", "encrypt", str(model), str(dst), "--password-file", str(pw), "--engine", "fuse",
            "--mountpoint", str(mnt),
        )  # fmt: skip
        left_mounted = is_mounted(mnt)
    finally:
        sock.close()
        unmount(mnt)
    assert not left_mounted, "the CLI left the mount behind"
    assert r.returncode == 2, r.stderr
    assert "zz.sock: cannot copy a device node, FIFO or socket" in r.stderr
    assert f"{dst} is left incomplete (marked {MARKER_NAME}, no gocryptfs.conf)" in r.stderr
    assert os.listdir(mnt) == []
    assert_left_incomplete(dst)
    r = run_cli("model", "verify", str(dst), "--password-file", str(pw))
    assert r.returncode == 1 and "unfinished encryption (CAI-INCOMPLETE marker present)" in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_copy_unmounts(real_gocryptfs, model: Path, pw: Path, tmp_path: Path, sig: int) -> None:
    with open(model / "big.bin", "wb") as f:
        f.truncate(1 << 30)  # sparse: cheap to read, about 3 s through the FUSE mount
    dst, mnt = tmp_path / "cipher", tmp_path / "plain"
    mnt.mkdir()
    argv = [sys.executable, "-m", "cai_tui.cli.main", "model", "encrypt", str(model), str(dst)]
    argv += ["--password-file", str(pw), "--engine", "fuse", "--mountpoint", str(mnt)]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # mounted, and the big file's ciphertext is being written
            if is_mounted(mnt) and any(p.stat().st_size > (8 << 20) for p in dst.iterdir() if p.is_file()):
                break
            time.sleep(0.01)
        else:
            pytest.fail("the copy into the mount never started")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        left_mounted = is_mounted(mnt)
    finally:
        if proc.poll() is None:
            proc.kill()
        unmount(mnt)
    assert not left_mounted, "the CLI left the mount behind"
    assert proc.returncode == 130, err
    assert f"interrupted: {dst} is left incomplete (marked CAI-INCOMPLETE, no gocryptfs.conf)" in err
    assert_left_incomplete(dst)


def _binary(tmp_path: Path) -> GocryptfsBinary:
    log = tmp_path / "gocryptfs.log"
    log.touch()
    return GocryptfsBinary.find(str(log))


def test_exit_codes_become_messages(real_gocryptfs, tmp_path: Path) -> None:
    gb = _binary(tmp_path)
    assert gb.version is not None and gb.version[0] == 2 and "gocryptfs" in gb.version_line
    cipher, mnt = tmp_path / "c", tmp_path / "m"
    cipher.mkdir()
    mnt.mkdir()
    gb.init(str(cipher), str(passfile(tmp_path / "pw")))
    with pytest.raises(ActionError) as e:
        gb.mount(str(cipher), str(mnt), str(passfile(tmp_path / "bad", b"not the password")))
    assert "gocryptfs mount failed: exit 12: wrong password" in e.value.message and e.value.exit_code == 2
    assert "Password incorrect" in e.value.message and not is_mounted(mnt)
    with pytest.raises(ActionError) as e:
        gb.init(str(cipher), str(tmp_path / "pw"))
    assert "exit 6: the cipher directory is not empty or not valid" in e.value.message
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with pytest.raises(ActionError) as e:
        gb.init(str(fresh), str(empty))
    assert "exit 9: the password is empty" in e.value.message
    with pytest.raises(ActionError) as e:
        gb.mount(str(fresh), str(mnt), str(tmp_path / "pw"))
    assert "exit 11: gocryptfs.conf is missing" in e.value.message
    assert PASSWORD.decode() not in (tmp_path / "gocryptfs.log").read_text()


def test_bad_mountpoint(real_gocryptfs, model: Path, pw: Path, tmp_path: Path) -> None:
    dst, mnt = tmp_path / "cipher", tmp_path / "busy"
    mnt.mkdir()
    (mnt / "something").write_text("x")
    r = run_cli(
        "model", "encrypt", str(model), str(dst), "--password-file", str(pw), "--engine", "fuse",
        "--mountpoint", str(mnt),
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "gocryptfs mount failed: exit 10: the mountpoint is not valid" in r.stderr
    assert not is_mounted(mnt) and os.listdir(mnt) == ["something"]
    assert_left_incomplete(dst)


def test_missing_binary(model: Path, pw: Path, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"  # everything the tool may need, without gocryptfs
    bindir.mkdir()
    for tool in ("fusermount3", "fusermount"):
        path = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if path:
            os.symlink(path, bindir / tool)
    r = run_cli(
        "model", "encrypt", str(model), str(tmp_path / "c"), "--password-file", str(pw), "--engine", "fuse",
        env={"PATH": str(bindir)},
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "error: gocryptfs is not on PATH; install gocryptfs v2.4.0" in r.stderr
    assert not (tmp_path / "c").exists()


def test_missing_dev_fuse(real_gocryptfs, model: Path, pw: Path, tmp_path: Path) -> None:
    """In a private mount namespace whose /dev holds only null."""
    script = 'mount -t tmpfs none /dev && mknod -m 666 /dev/null c 1 3 && exec "$@"'
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", sys.executable, "-m"]
    argv += ["cai_tui.cli.main", "model", "encrypt", str(model), str(tmp_path / "c"), "--password-file", str(pw)]
    r = subprocess.run([*argv, "--engine", "fuse"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "error: /dev/fuse is missing: load the module (`modprobe fuse`)" in r.stderr
    assert os.path.exists("/dev/fuse")  # the namespace stayed private
