"""``cai-tui model upload --encrypt``: gocryptfs encryption on the way to the lab OSS, file by file.

What lands in OSS must be exactly a cipherdir: downloaded with oss2, the real ``gocryptfs`` mounts it and ``diff -r``
against the source is clean. No ciphertext copy of the model may be written to disk: the bytes on disk in the
places a temporary copy could go (the state dir, TMPDIR, the working directory) never exceed the largest single
file's ciphertext — sampled continuously, and synchronously inside the lab at every object and part it receives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import loopback_env

MiB = 1024 * 1024
PASSWORD = b"upload and encrypt"
MARKER = ".cai-upload-incomplete"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "weights").mkdir(parents=True)
    (root / "weights" / "model-00001.safetensors").write_bytes(os.urandom(13 * MiB + 17))
    (root / "weights" / "model-00002.safetensors").write_bytes(os.urandom(11 * MiB + 5))
    (root / "config.json").write_text('{"model_type": "qwen2"}\n')
    for i in range(8):
        (root / "weights" / f"part-{i}.json").write_bytes(os.urandom(3000 * i))
    (root / "empty.txt").write_bytes(b"")
    (root / "empty-dir").mkdir()
    (root / "x" / "y").mkdir(parents=True)
    (root / "x" / "y" / ("long-name-" * 20)).write_bytes(b"a name of 200 bytes needs gocryptfs.longname + .name")
    os.symlink("config.json", root / "config-link.json")  # uploaded as the file it points to
    return root


@pytest.fixture
def pw(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_bytes(PASSWORD + b"\n")
    return path


def owner_bucket(lab: Any) -> Any:
    from cai_tui.clients.oss import Credentials, make_bucket

    k = lab.keys
    return make_bucket(
        lab.oss_endpoint, "lab-models", Credentials(k.oss_access_key_id, k.oss_access_key_secret), region="cn-lab"
    )


def disk_bytes(dirs: list[Path]) -> int:
    total = 0
    for d in dirs:
        for dirpath, _dirs, files in os.walk(d):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                except FileNotFoundError:
                    pass
    return total


class DiskWatch:
    """Peak bytes on disk under ``dirs``: a polling thread, plus :meth:`sample` called from the lab's handlers."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def sample(self) -> None:
        n = disk_bytes(self.dirs)
        with self._lock:
            self.peak = max(self.peak, n)
            self.samples += 1

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self.sample()

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def sampling_lab(lab: Any) -> Iterator[tuple[Any, list[DiskWatch]]]:
    """The lab, with every PutObject / UploadPart sampling the watched disk usage before it answers."""
    service = lab.oss_lab.service
    watches: list[DiskWatch] = []
    originals = {op: getattr(service, op) for op in ("put_object", "upload_part")}

    def wrap(op: str) -> Any:
        def run(h: Any, req: Any, p: Any) -> None:
            for w in watches:
                w.sample()
            originals[op](h, req, p)

        return run

    for op in originals:
        setattr(service, op, wrap(op))
    yield lab, watches
    for op, fn in originals.items():
        setattr(service, op, fn)


def download(bucket: Any, prefix: str, dst: Path) -> list[str]:
    import oss2

    keys = []
    for obj in oss2.ObjectIterator(bucket, prefix=prefix):
        keys.append(obj.key[len(prefix) :])
        target = dst / keys[-1]
        target.parent.mkdir(parents=True, exist_ok=True)
        bucket.get_object_to_file(obj.key, str(target))
    return keys


def mount(cipher: Path, mnt: Path, pw: Path) -> None:
    mnt.mkdir()
    rc = subprocess.run(
        ["gocryptfs", "-q", "-ro", "-passfile", str(pw), "--", str(cipher), str(mnt)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        timeout=60,
    ).returncode
    assert rc == 0, f"gocryptfs could not mount the downloaded prefix (exit {rc})"


def test_encrypt_and_upload_mounts_with_real_gocryptfs(
    sampling_lab: tuple[Any, list[DiskWatch]], tree: Path, pw: Path, tmp_path: Path
) -> None:
    from cai_tui.actions.model_manifest import verify_plain
    from cai_tui.gocryptfs import cipher_size

    lab, watches = sampling_lab
    for tool in ("gocryptfs", "fusermount3"):
        assert shutil.which(tool), f"{tool} is needed (scripts/test.sh installs it)"
    home, tmpdir, work = tmp_path / "home", tmp_path / "tmpdir", tmp_path / "work"
    for d in (home, tmpdir, work):
        d.mkdir()
    env = loopback_env()
    env.update(CAI_TUI_HOME=str(home), TMPDIR=str(tmpdir))
    prefix = "enc/qwen/"
    cmd = [sys.executable, "-m", "cai_tui.cli.main", "model", "upload", str(tree), f"oss://lab-models/{prefix}"]
    cmd += ["--recipe", str(lab.recipe_path), "--encrypt", "--password-file", str(pw), "--threads", "3"]
    with DiskWatch([home, tmpdir, work]) as watch:
        watches.append(watch)
        result = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "encrypted with gocryptfs on the way" in result.stdout

    sizes = [p.stat().st_size for p in tree.rglob("*") if p.is_file()]
    largest_cipher = cipher_size(max(sizes))
    whole_cipher = sum(cipher_size(s) for s in sizes)
    assert watch.samples > 20
    assert watch.peak <= largest_cipher, f"{watch.peak} bytes on disk at peak > one file's ciphertext"
    assert whole_cipher > largest_cipher * 1.5  # so a full ciphertext copy would have been caught

    bucket = owner_bucket(lab)
    cipher = tmp_path / "downloaded"
    keys = download(bucket, prefix, cipher)
    assert "gocryptfs.conf" in keys and "gocryptfs.diriv" in keys and MARKER not in keys
    assert sum(k.endswith(".name") for k in keys) == 1  # the long name
    assert not any(part in k for k in keys for part in ("weights", "config", "safetensors", "empty"))
    fsck = subprocess.run(
        ["gocryptfs", "-fsck", "-q", "-passfile", str(pw), "--", str(cipher)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )
    assert fsck.returncode == 0
    mnt = tmp_path / "mnt"
    try:
        mount(cipher, mnt, pw)
        diff = subprocess.run(["diff", "-r", "-x", ".cai-manifest.json", str(tree), str(mnt)], capture_output=True)
        assert diff.returncode == 0, diff.stdout.decode() + diff.stderr.decode()
        assert (mnt / "empty-dir").is_dir()
        report = verify_plain(mnt)  # the manifest inside covers every file
        assert report.ok and report.checked == len(sizes), report.bad
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_encrypted_upload_refuses_a_non_empty_prefix(lab: Any, tree: Path, tmp_path: Path) -> None:
    from cai_tui.actions.model_upload import UploadInputError, UploadOptions, upload_tree

    bucket = owner_bucket(lab)
    bucket.put_object("enc/used/old-object", b"old")
    opts = UploadOptions(password=PASSWORD, scrypt_logn=10, state_root=tmp_path / "state")
    with pytest.raises(UploadInputError, match=r"already holds objects .*old-object.*needs an empty prefix"):
        upload_tree(bucket, tree, "enc/used/", options=opts)
    assert not bucket.object_exists("enc/used/" + MARKER), "refused before writing anything"


def test_resume_with_another_password_is_refused(lab: Any, tree: Path, tmp_path: Path) -> None:
    from cai_tui.actions.model_upload import UploadInputError, UploadOptions, upload_tree
    from cai_tui.clients.oss import OssActionError

    bucket = owner_bucket(lab)
    state = tmp_path / "state"
    service = lab.oss_lab.service
    original = service.put_object
    count = {"n": 0}

    def put(h: Any, req: Any, p: Any) -> None:  # the marker and 3 objects go through, then AccessDenied
        original(h, req, p)
        count["n"] += 1
        if count["n"] == 4:
            lab.faults.set("oss-access-denied", True)

    service.put_object = put
    try:
        with pytest.raises(OssActionError, match="AccessDenied"):
            opts = UploadOptions(password=PASSWORD, scrypt_logn=10, state_root=state, threads=1)
            upload_tree(bucket, tree, "enc/pw/", options=opts)
    finally:
        service.put_object = original
    lab.faults.set("oss-access-denied", False)
    with pytest.raises(UploadInputError, match="password does not open the gocryptfs config"):
        upload_tree(bucket, tree, "enc/pw/", options=UploadOptions(password=b"other", state_root=state))
    t0 = time.monotonic()
    report = upload_tree(bucket, tree, "enc/pw/", options=UploadOptions(password=PASSWORD, state_root=state))
    assert report.ok and report.skipped > 0 and time.monotonic() - t0 < 30
