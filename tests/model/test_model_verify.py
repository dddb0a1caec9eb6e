"""`cai-tui model verify`: tampered, zeroed and truncated blocks, missing and extra files are named (exit 1);
wrong password and a missing or corrupt gocryptfs.conf are input errors (exit 2); `--plain` on decrypted trees."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cai_tui.actions.model_manifest import MANIFEST_NAME
from tests.helpers import run_cli
from tests.model.modellib import CIPHER_BLOCK, SHARD1, SHARD2, block_offset, cipher_file_of, gocryptfs_mount, passfile


def verify(cipher: Path, pw: Path) -> tuple[int, str, str]:
    r = run_cli("model", "verify", str(cipher), "--password-file", str(pw))
    return r.returncode, r.stdout, r.stderr


def test_pristine_passes(cipher: Path, pw: Path) -> None:
    rc, out, err = verify(cipher, pw)
    assert rc == 0, out + err
    assert "ok: 9 of 9 files" in out and "all match .cai-manifest.json" in out


def test_a_flipped_ciphertext_byte_names_the_file_and_block(cipher: Path, pw: Path) -> None:
    target = cipher_file_of(cipher, SHARD1)
    with open(target, "r+b") as f:
        f.seek(block_offset(5) + 100)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))
    rc, out, err = verify(cipher, pw)
    assert rc == 1, out + err
    assert f"BAD {SHARD1}: does not decrypt: " in out and "(block 5, bytes 20480–24575)" in out
    assert "verification FAILED: 1 problem(s)" in err


def test_a_zeroed_block_is_caught_by_the_manifest_only(real_gocryptfs, cipher: Path, pw: Path) -> None:
    """gocryptfs reads an all-zero ciphertext block as a hole: its -fsck passes; the manifest does not."""
    target = cipher_file_of(cipher, SHARD1)
    with open(target, "r+b") as f:
        f.seek(block_offset(3))
        f.write(bytes(CIPHER_BLOCK))
    fsck = subprocess.run(["gocryptfs", "-fsck", "-passfile", str(pw), "--", str(cipher)], capture_output=True)
    assert fsck.returncode == 0, "gocryptfs -fsck was expected to accept a zeroed block"
    rc, out, _ = verify(cipher, pw)
    assert rc == 1
    assert f"BAD {SHARD1}: content differs from the manifest (modified or zeroed block)" in out


def test_truncated_missing_and_extra_files(real_gocryptfs, pristine, cipher: Path, pw: Path, tmp_path: Path) -> None:
    size = (pristine[0] / SHARD2).stat().st_size
    with open(cipher_file_of(cipher, SHARD2), "r+b") as f:
        f.truncate(block_offset(10))  # at a block boundary: still a well-formed gocryptfs file
    os.unlink(cipher_file_of(cipher, "docs/README.md"))
    with gocryptfs_mount(cipher, tmp_path / "m", pw) as mnt:
        (mnt / "docs" / "added.txt").write_text("not from the model\n")
    rc, out, _ = verify(cipher, pw)
    assert rc == 1
    assert f"BAD {SHARD2}: truncated: 40960 of {size} bytes" in out
    assert "BAD docs/README.md: missing" in out
    assert "BAD docs/added.txt: extra: not in the manifest" in out


def test_input_errors(cipher: Path, pw: Path, tmp_path: Path) -> None:
    rc, _, err = verify(cipher, passfile(tmp_path / "wrong", b"not-the-password"))
    assert rc == 2 and f"wrong password for {cipher}" in err
    conf = cipher / "gocryptfs.conf"
    os.chmod(conf, 0o600)
    conf.write_text('{"Creator": "garbage", ')
    rc, _, err = verify(cipher, pw)
    assert rc == 2 and "gocryptfs.conf is missing or corrupt" in err
    os.unlink(conf)
    rc, _, err = verify(cipher, pw)
    assert rc == 2 and "gocryptfs.conf is missing or corrupt" in err and "no gocryptfs.conf" in err
    r = run_cli("model", "verify", str(cipher))
    assert r.returncode == 2 and "--password-file is required" in r.stderr


def test_plain_verify_of_a_decrypted_and_a_mounted_tree(real_gocryptfs, pristine, tmp_path: Path, pw: Path) -> None:
    from cai_tui.gocryptfs import decrypt_tree

    plain = tmp_path / "plain"
    decrypt_tree(pristine[1], plain, b"alibaba@1688")
    r = run_cli("model", "verify", "--plain", str(plain))
    assert r.returncode == 0 and "ok: 9 of 9 files" in r.stdout, r.stdout + r.stderr
    with gocryptfs_mount(pristine[1], tmp_path / "model-mount-point", pw, "-ro") as mnt:
        r = run_cli("model", "verify", "--plain", str(mnt))  # as MODEL_MOUNT_POINT inside the instance
        assert r.returncode == 0, r.stdout + r.stderr
    with open(plain / SHARD1, "r+b") as f:
        f.seek(5000)
        f.write(b"\0" * 10)
    os.unlink(plain / "docs" / "empty.txt")
    os.unlink(plain / "README.md")
    os.symlink("elsewhere", plain / "README.md")
    r = run_cli("model", "verify", str(plain), "--plain")
    assert r.returncode == 1
    assert f"BAD {SHARD1}: content differs" in r.stdout and "BAD docs/empty.txt: missing" in r.stdout
    assert "BAD README.md: symlink points to 'elsewhere', the manifest says 'docs/README.md'" in r.stdout
    r = run_cli("model", "verify", str(plain), "--password-file", str(pw))
    assert r.returncode == 2 and "to check a decrypted model use --plain" in r.stderr
    r = run_cli("model", "verify", "--plain", str(pristine[1]))
    assert r.returncode == 2 and "is a cipherdir: verify it without --plain" in r.stderr
    (plain / MANIFEST_NAME).unlink()
    r = run_cli("model", "verify", "--plain", str(plain))
    assert r.returncode == 1 and f"has no {MANIFEST_NAME}: it was not encrypted by cai-tui" in r.stderr


def test_a_damaged_manifest_is_reported(tmp_path: Path, model: Path) -> None:
    from cai_tui.actions.model_manifest import build_manifest, manifest_bytes

    (model / MANIFEST_NAME).write_bytes(manifest_bytes(build_manifest(model)))
    r = run_cli("model", "verify", "--plain", str(model))
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads((model / MANIFEST_NAME).read_text())
    doc["version"] = 7
    (model / MANIFEST_NAME).write_text(json.dumps(doc))
    r = run_cli("model", "verify", "--plain", str(model))
    assert r.returncode == 1 and "has version 7; this tool reads 1" in r.stderr
