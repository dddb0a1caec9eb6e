"""Interoperability with the real gocryptfs binary (Debian 2.3, same on-disk format as 2.4.0): the acceptance tests.

They need root, /dev/fuse, ``gocryptfs`` and ``fusermount3``; the ``gocryptfs`` fixture fails with a clear message
when any is missing. All configs here use the default scrypt N=65536.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from gocryptfs_testlib import LONG_FILE, PASSWORD, RealGocryptfs, build_sample_tree, data, tree_snapshot

from cai_tui.gocryptfs import (
    CipherdirWriter,
    CorruptFile,
    UnsupportedConfig,
    WrongPassword,
    cipher_size,
    create_config,
    encrypt_tree,
    load_config,
    open_cipherdir,
    verify_password,
)
from cai_tui.gocryptfs.content import CIPHER_BLOCK_SIZE, HEADER_LEN, block_offset
from cai_tui.gocryptfs.writer import PARTIAL_SUFFIX

FSCK_CORRUPT = 26
WRONG_PASSWORD = 12


def _diff(a: Path, b: Path) -> str:
    # --no-dereference: the sample tree has dangling symlinks, which must compare as links.
    proc = subprocess.run(
        ["diff", "-r", "--no-dereference", str(a), str(b)], capture_output=True, text=True, errors="replace"
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.stdout + proc.stderr


def _write_with_ranges(src: Path, cipher: Path) -> None:
    config, master = create_config(PASSWORD)  # default N
    with CipherdirWriter(cipher, config, master, workers=2, parallel_min_size=64 * 1024, range_blocks=16) as w:
        w.add_tree(src)


@pytest.mark.parametrize("how", ["encrypt_tree", "workers2_block_ranges"])
def test_real_gocryptfs_mounts_what_the_engine_writes(gocryptfs: RealGocryptfs, tmp_path: Path, how: str) -> None:
    src = build_sample_tree(tmp_path / "plain")
    (src / "zero-length-sparse").touch()
    cipher, mnt = tmp_path / "cipher", tmp_path / "mnt"
    if how == "encrypt_tree":
        encrypt_tree(src, cipher, PASSWORD)
    else:
        _write_with_ranges(src, cipher)
    assert load_config(cipher).scrypt.n == 65536
    with gocryptfs.mount(cipher, mnt):
        assert _diff(src, mnt) == ""
        assert tree_snapshot(mnt) == tree_snapshot(src)  # contents, symlink targets, permission bits
        assert os.stat(mnt / "hard-a").st_ino == os.stat(mnt / "hard-b").st_ino
        assert os.stat(mnt / "size-5000.bin").st_mtime_ns == os.stat(src / "size-5000.bin").st_mtime_ns
    rc, out = gocryptfs.fsck(cipher)
    assert rc == 0, out
    assert "no problems found" in out


def test_engine_reads_what_real_gocryptfs_writes(gocryptfs: RealGocryptfs, tmp_path: Path) -> None:
    src = build_sample_tree(tmp_path / "plain")
    cipher, mnt, out = tmp_path / "cipher", tmp_path / "mnt", tmp_path / "out"
    gocryptfs.init(cipher)
    conf_text = (cipher / "gocryptfs.conf").read_text()
    with gocryptfs.mount(cipher, mnt):
        subprocess.run(["cp", "-a", f"{src}/.", str(mnt)], check=True)
        with open(mnt / "holes-aligned", "wb") as f:
            f.truncate(3 * 4096)  # gocryptfs stores all-zero ciphertext blocks (file holes)
        os.chmod(mnt / "holes-aligned", 0o640)
        with open(mnt / "holes-then-data", "wb") as f:
            f.seek(5 * 4096 + 10)
            f.write(b"tail")
        os.mkfifo(mnt / "fifo")
        os.chmod(mnt / "fifo", 0o620)
    expected = tree_snapshot(src)
    cd = open_cipherdir(cipher, PASSWORD)
    assert cd.config.to_json() == conf_text  # the config layout round-trips byte for byte
    stats = cd.decrypt_tree(out)
    got = tree_snapshot(out)
    assert got.pop("holes-aligned") == ("file", bytes(3 * 4096), 0o640)
    assert got.pop("holes-then-data")[1] == bytes(5 * 4096 + 10) + b"tail"
    assert got.pop("fifo") == ("fifo", None, 0o620)
    assert got == expected
    assert _diff(src, out).count("Only in") == 3
    assert stats.hardlinks == 1 and stats.fifos == 1
    assert cd.lookup("fifo").kind == "fifo"
    holes = Path(cd.lookup("holes-aligned").cipher_path).read_bytes()
    assert holes[HEADER_LEN : HEADER_LEN + CIPHER_BLOCK_SIZE] == bytes(CIPHER_BLOCK_SIZE)  # really a hole on disk
    for entry in cd.walk():  # exact sizes, as the real binary wrote them
        if entry.kind == "file":
            assert os.stat(entry.cipher_path).st_size == cipher_size(entry.size)
    assert cd.read_file(LONG_FILE) == (src / LONG_FILE).read_bytes()  # lookup by encrypting names
    assert cd.check() == []
    assert verify_password(cipher, PASSWORD) and not verify_password(cipher, b"wrong")
    with pytest.raises(WrongPassword):
        open_cipherdir(cipher, b"wrong")


@pytest.mark.parametrize("flags", [["-plaintextnames"], ["-deterministic-names"], ["-longnamemax", "100"]])
def test_engine_reads_variants(gocryptfs: RealGocryptfs, tmp_path: Path, flags: list[str]) -> None:
    src = tmp_path / "plain"
    (src / "dir" / "sub").mkdir(parents=True)
    (src / "dir" / "sub" / "f.bin").write_bytes(data(1, 9000))
    (src / ("n" * 120)).write_bytes(b"120-byte name: hashed when LongNameMax=100")
    (src / "ünï").write_bytes(b"")
    os.symlink("dir/sub/f.bin", src / "link")
    cipher, mnt, out = tmp_path / "cipher", tmp_path / "mnt", tmp_path / "out"
    gocryptfs.init(cipher, *flags)
    with gocryptfs.mount(cipher, mnt):
        subprocess.run(["cp", "-a", f"{src}/.", str(mnt)], check=True)
    if flags[0] == "-longnamemax":
        assert any(p.name.startswith("gocryptfs.longname.") for p in cipher.iterdir())
    if flags[0] == "-plaintextnames":
        assert (cipher / "dir" / "sub" / "f.bin").exists()
    cd = open_cipherdir(cipher, PASSWORD)
    cd.decrypt_tree(out)
    assert tree_snapshot(out) == tree_snapshot(src)
    assert cd.read_file("dir/sub/f.bin") == data(1, 9000)


@pytest.mark.parametrize("flag", ["-aessiv", "-xchacha"])
def test_unsupported_real_configs_are_refused(gocryptfs: RealGocryptfs, tmp_path: Path, flag: str) -> None:
    cipher = tmp_path / "cipher"
    gocryptfs.init(cipher, flag)
    with pytest.raises(UnsupportedConfig):
        open_cipherdir(cipher, PASSWORD)


def test_tampering_is_found_by_both(gocryptfs: RealGocryptfs, tmp_path: Path) -> None:
    src = tmp_path / "plain"
    src.mkdir()
    (src / "model.bin").write_bytes(data(2, 3 * 4096))
    (src / "ok.txt").write_text("fine\n")
    cipher = tmp_path / "cipher"
    encrypt_tree(src, cipher, PASSWORD)
    # the real binary refuses a wrong password on the engine's config
    rc, _ = gocryptfs.run("-info", str(cipher))
    assert rc == 0
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    log = tmp_path / "wrong.log"
    with open(log, "wb") as f:
        rc = subprocess.run(
            [gocryptfs.exe, "-q", "-passfile", str(gocryptfs.passfile(b"wrong")), "--", str(cipher), str(mnt)],
            stdout=f,
            stderr=f,
            stdin=subprocess.DEVNULL,
            timeout=60,
        ).returncode
    assert rc == WRONG_PASSWORD, log.read_text()
    cd = open_cipherdir(cipher, PASSWORD)
    target = cd.lookup("model.bin").cipher_path
    with open(target, "r+b") as f:
        f.seek(block_offset(2) + 500)
        byte = f.read(1)
        f.seek(block_offset(2) + 500)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(CorruptFile) as info:
        cd.read_file("model.bin")
    assert (info.value.path, info.value.block) == ("model.bin", 2)
    rc, out = gocryptfs.fsck(cipher)
    assert rc == FSCK_CORRUPT, out


def test_leftover_partial_file_fails_real_fsck(gocryptfs: RealGocryptfs, tmp_path: Path) -> None:
    src = tmp_path / "plain"
    src.mkdir()
    (src / "a").write_bytes(data(3, 5000))
    cipher = tmp_path / "cipher"
    encrypt_tree(src, cipher, PASSWORD)
    victim = open_cipherdir(cipher, PASSWORD).lookup("a").cipher_path
    shutil.copy(victim, victim + PARTIAL_SUFFIX)
    rc, out = gocryptfs.fsck(cipher)
    assert rc == FSCK_CORRUPT, out
