"""A ``cai-tui model upload`` killed with SIGKILL in the middle of a multipart upload resumes on the next run:
the parts already in OSS are not sent again (counted with the lab's op_counts), and the result verifies.

The lab runs in this process, so the test can hold the third UploadPart request inside the server until the CLI
(a subprocess) is killed: exactly two parts are in OSS at that moment, whatever the machine's speed.
"""

from __future__ import annotations

import os
import signal
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
PARTS = 5
BIG = 4 * 10 * MiB + 777  # five parts of 10 MiB (plaintext; the ciphertext is 0.8 % larger, still five)
MARKER = ".cai-upload-incomplete"


class PartGate:
    """Lets ``allow`` UploadPart requests through, then holds the next one until :meth:`release`; that request
    then fails (its client is gone by then)."""

    def __init__(self, lab: Any, allow: int) -> None:
        from cai_tui.lab.oss.errors import OssError

        self.service = lab.oss_lab.service
        self.original = self.service.upload_part
        self.allow = allow
        self.passed = 0
        self.held = threading.Event()
        self.release_event = threading.Event()
        self._lock = threading.Lock()

        def gate(h: Any, req: Any, p: Any) -> None:
            with self._lock:
                go = self.passed < self.allow
                if go:
                    self.passed += 1
            if go:
                self.original(h, req, p)
                return
            self.held.set()
            self.release_event.wait(30)
            raise OssError(500, "InternalError", "the test gate dropped this part", "0000-00000000")

        self.service.upload_part = gate

    def release(self) -> None:
        self.release_event.set()

    def remove(self) -> None:
        self.release_event.set()
        self.service.upload_part = self.original


@pytest.fixture
def gate(lab: Any) -> Iterator[PartGate]:
    g = PartGate(lab, allow=2)
    yield g
    g.remove()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "model.safetensors").write_bytes(os.urandom(BIG))
    for i in range(12):
        (root / "sub" / f"f{i}.json").write_bytes(os.urandom(100 + i * 1000))
    return root


def owner_bucket(lab: Any) -> Any:
    from cai_tui.clients.oss import Credentials, make_bucket

    k = lab.keys
    return make_bucket(
        lab.oss_endpoint, "lab-models", Credentials(k.oss_access_key_id, k.oss_access_key_secret), region="cn-lab"
    )


def argv(tree: Path, dest: str, recipe: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cai_tui.cli.main", "model", "upload", str(tree), dest, "--recipe", str(recipe),
            "--threads", "1", *extra]  # fmt: skip


def env_for(home: Path) -> dict[str, str]:
    env = loopback_env()
    env["CAI_TUI_HOME"] = str(home)
    return env


def kill_during_third_part(cmd: list[str], env: dict[str, str], gate: PartGate, tmp_path: Path) -> None:
    with open(tmp_path / "killed.out", "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            assert gate.held.wait(60), (tmp_path / "killed.out").read_text()
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    gate.remove()  # the held request fails; later parts go straight through


def ops(lab: Any) -> dict[str, int]:
    """The lab's per-operation success counts once they are settled: the server counts an operation just after it
    has sent the answer, so the client can be a step ahead of the counter for a moment."""
    last = lab.oss_lab.op_counts
    while True:
        time.sleep(0.05)
        now = lab.oss_lab.op_counts
        if now == last:
            return now
        last = now


def delta(after: dict[str, int], before: dict[str, int], op: str) -> int:
    return after.get(op, 0) - before.get(op, 0)


def test_killed_upload_resumes_from_the_checkpoint(lab: Any, tree: Path, tmp_path: Path, gate: PartGate) -> None:
    home = tmp_path / "home"
    bucket = owner_bucket(lab)
    cmd = argv(tree, "oss://lab-models/resume/plain/", lab.recipe_path)
    before = ops(lab)
    kill_during_third_part(cmd, env_for(home), gate, tmp_path)
    mid = ops(lab)
    assert delta(mid, before, "UploadPart") == 2
    assert delta(mid, before, "InitiateMultipartUpload") == 1
    assert bucket.object_exists("resume/plain/" + MARKER)
    assert not bucket.object_exists("resume/plain/model.safetensors")
    checkpoints = list((home / "state" / "uploads").glob("*/oss2/*"))
    assert len(checkpoints) == 1, "oss2's ResumableStore checkpoint lives under the state dir"

    rerun = subprocess.run(cmd, env=env_for(home), capture_output=True, text=True, timeout=120)
    after = ops(lab)
    assert rerun.returncode == 0, rerun.stderr
    assert delta(after, mid, "UploadPart") == PARTS - 2, "the two parts already in OSS must not be sent again"
    assert delta(after, mid, "InitiateMultipartUpload") == 0, "the interrupted multipart upload is resumed"
    assert delta(after, mid, "PutObject") == 1, "the small files finished before the kill are skipped"
    assert "12 already there from an earlier run" in rerun.stdout
    assert bucket.get_object("resume/plain/model.safetensors").read() == (tree / "model.safetensors").read_bytes()
    assert not bucket.object_exists("resume/plain/" + MARKER)
    assert not list((home / "state" / "uploads").glob("*/oss2/*")), "oss2 deletes its checkpoint when done"


def test_killed_encrypted_upload_resumes_and_mounts(lab: Any, tree: Path, tmp_path: Path, gate: PartGate) -> None:
    from cai_tui.actions.model_manifest import verify_cipherdir
    from tests.model.modellib import gocryptfs_mount, require_real_gocryptfs

    require_real_gocryptfs()
    home = tmp_path / "home"
    pw = tmp_path / "pw"
    pw.write_bytes(b"resume me\n")
    bucket = owner_bucket(lab)
    prefix = "resume/enc/"
    cmd = argv(tree, f"oss://lab-models/{prefix}", lab.recipe_path, "--encrypt", "--password-file", str(pw))
    before = ops(lab)
    kill_during_third_part(cmd, env_for(home), gate, tmp_path)
    mid = ops(lab)
    assert delta(mid, before, "UploadPart") == 2
    assert not bucket.object_exists(prefix + "gocryptfs.conf"), "no config until every file is there"

    rerun = subprocess.run(cmd, env=env_for(home), capture_output=True, text=True, timeout=120)
    after = ops(lab)
    assert rerun.returncode == 0, rerun.stderr
    assert delta(after, mid, "UploadPart") == PARTS - 2
    assert delta(after, mid, "InitiateMultipartUpload") == 0

    import oss2

    cipher = tmp_path / "downloaded"
    for obj in oss2.ObjectIterator(bucket, prefix=prefix):
        target = cipher / obj.key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        bucket.get_object_to_file(obj.key, str(target))
    assert not (cipher / MARKER).exists()
    report = verify_cipherdir(cipher, b"resume me")  # every plaintext SHA-256 matches the manifest inside
    assert report.ok and report.checked == 13, report.bad
    with gocryptfs_mount(cipher, tmp_path / "mnt", pw, "-ro") as mnt:
        diff = subprocess.run(["diff", "-r", "-x", ".cai-manifest.json", str(tree), str(mnt)], capture_output=True)
        assert diff.returncode == 0, diff.stdout.decode()


def test_ctrl_c_says_how_to_resume_and_the_rerun_completes(
    lab: Any, tree: Path, tmp_path: Path, gate: PartGate
) -> None:
    """SIGINT while a part is in flight (held by the lab): exit 130 at once, the resume hint, the marker kept."""
    home = tmp_path / "home"
    cmd = argv(tree, "oss://lab-models/resume/int/", lab.recipe_path)
    proc = subprocess.Popen(cmd, env=env_for(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert gate.held.wait(60)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=10)  # does not wait for the held request
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    gate.remove()
    assert proc.returncode == 130, err
    assert "Run the same command again to resume" in err and "Traceback" not in err
    assert str(home / "state" / "uploads") in err
    assert owner_bucket(lab).object_exists("resume/int/" + MARKER)

    before = ops(lab)
    rerun = subprocess.run(cmd, env=env_for(home), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert delta(ops(lab), before, "UploadPart") == PARTS - 2
    assert not owner_bucket(lab).object_exists("resume/int/" + MARKER)


def test_a_file_changed_between_runs_is_uploaded_afresh(lab: Any, tree: Path, tmp_path: Path, gate: PartGate) -> None:
    """The large file changes after the kill: its stale multipart upload is aborted and it is encrypted and uploaded
    again from the start (the same gocryptfs key and names: the rest stays valid)."""
    from cai_tui.actions.model_manifest import verify_cipherdir

    home = tmp_path / "home"
    pw = tmp_path / "pw"
    pw.write_bytes(b"changed\n")
    prefix = "resume/changed/"
    cmd = argv(tree, f"oss://lab-models/{prefix}", lab.recipe_path, "--encrypt", "--password-file", str(pw))
    kill_during_third_part(cmd, env_for(home), gate, tmp_path)
    with open(tree / "model.safetensors", "r+b") as f:
        f.seek(123)
        f.write(b"changed after the kill")
    mid = ops(lab)
    rerun = subprocess.run(cmd, env=env_for(home), capture_output=True, text=True, timeout=120)
    after = ops(lab)
    assert rerun.returncode == 0, rerun.stderr
    assert delta(after, mid, "AbortMultipartUpload") == 1
    assert delta(after, mid, "InitiateMultipartUpload") == 1
    assert delta(after, mid, "UploadPart") == PARTS

    import oss2

    bucket = owner_bucket(lab)
    cipher = tmp_path / "downloaded"
    for obj in oss2.ObjectIterator(bucket, prefix=prefix):
        target = cipher / obj.key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        bucket.get_object_to_file(obj.key, str(target))
    report = verify_cipherdir(cipher, b"changed")
    assert report.ok and report.checked == 13, report.bad
