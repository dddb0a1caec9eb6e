"""Cancellation with real data: the token is cancelled from another thread after N progress events; the run raises
Cancelled, leaves a state the next run handles (encrypt: marked unfinished, cleared and redone; upload: journal and
open multipart uploads that a rerun resumes), and the rerun completes and verifies."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from cai_tui.actions.model_manifest import MARKER_NAME
from cai_tui.events import Cancelled, CancelToken, Event
from tests.model.modellib import PASSWORD, build_model, is_mounted

MiB = 1024 * 1024


class CancelAfter:
    """An event sink that counts progress events of ``source`` (about file ``text``, when given) and, at the
    ``n``-th, has another thread cancel the token (as a UI or a signal handler would); it waits until the token is
    set so that the point is exact."""

    def __init__(self, n: int, source: str, text: str | None = None) -> None:
        self.token = CancelToken()
        self.n = n
        self.source = source
        self.text = text
        self.seen = 0
        self.events: list[Event] = []
        self._go = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._cancel, daemon=True)
        self._thread.start()

    def _cancel(self) -> None:
        self._go.wait(120)
        self.token.cancel("test")

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if event.kind != "progress" or event.source != self.source or self.text not in (None, event.text):
            return
        with self._lock:
            self.seen += 1
            hit = self.seen == self.n
        if hit:
            self._go.set()
            self._thread.join(10)


@pytest.fixture
def big_model(tmp_path: Path) -> Path:
    return build_model(tmp_path / "model", shard_sizes=(6 * MiB + 5, 3 * MiB))


def _leftovers(dst: Path) -> list[str]:
    return [p.name for p in dst.rglob("*") if p.name.endswith(".cai-partial")]


@pytest.mark.parametrize("workers", [1, 2])
def test_cancelled_native_encryption_is_redone_by_the_next_run(big_model: Path, tmp_path: Path, workers: int) -> None:
    from cai_tui.actions.model_encrypt import encrypt_native
    from cai_tui.actions.model_manifest import verify_cipherdir

    dst = tmp_path / "cipher"
    sink = CancelAfter(3, "encrypt")
    with pytest.raises(Cancelled):
        encrypt_native(str(big_model), str(dst), PASSWORD, workers=workers, on_event=sink, cancel=sink.token)
    assert sink.seen >= 3
    done = [e.done or 0 for e in sink.events if e.source == "encrypt"]
    total = next(e.total for e in sink.events if e.source == "encrypt")
    assert total is not None and max(done) < total, "cancelled before the end"
    assert (dst / MARKER_NAME).is_file() and not (dst / "gocryptfs.conf").exists()
    assert _leftovers(dst) == [], "partial files are removed"

    again: list[Event] = []
    result = encrypt_native(str(big_model), str(dst), PASSWORD, workers=workers, on_event=again.append)
    notes = [e.text for e in again if e.kind == "note"]
    assert any("unfinished encryption" in n and "starting over" in n for n in notes), notes
    assert result.manifest_files == 9 and not (dst / MARKER_NAME).exists()
    enc = [e for e in again if e.kind == "progress" and e.source == "encrypt"]
    assert enc[-1].done == enc[-1].total and enc[-1].done > result.plain_bytes  # the model, then the manifest
    report = verify_cipherdir(dst, PASSWORD)
    assert report.ok and report.checked == 9, report.bad


def test_a_foreign_non_empty_destination_is_still_refused(big_model: Path, tmp_path: Path) -> None:
    from cai_tui.actions import ActionError
    from cai_tui.actions.model_encrypt import encrypt_native

    dst = tmp_path / "cipher"
    dst.mkdir()
    (dst / MARKER_NAME).write_text("not ours\n")  # a file of that name that this tool did not write
    with pytest.raises(ActionError, match="is not empty"):
        encrypt_native(str(big_model), str(dst), PASSWORD, workers=1)
    assert os.listdir(dst) == [MARKER_NAME]


def test_cancelled_fuse_encryption_unmounts_and_is_redone(
    real_gocryptfs: Any, big_model: Path, tmp_path: Path, pw: Path
) -> None:
    from cai_tui.actions.model_encrypt import encrypt_fuse
    from cai_tui.actions.model_manifest import verify_cipherdir

    dst, mnt = tmp_path / "cipher", tmp_path / "plain"
    mnt.mkdir()
    sink = CancelAfter(2, "encrypt")
    with pytest.raises(Cancelled):
        encrypt_fuse(str(big_model), str(dst), str(pw), mountpoint=str(mnt), on_event=sink, cancel=sink.token)
    assert not is_mounted(mnt) and os.listdir(mnt) == []
    assert (dst / MARKER_NAME).is_file() and not (dst / "gocryptfs.conf").exists()
    assert any(e.kind == "note" and e.source == "gocryptfs" for e in sink.events), "the binary's version is noted"

    encrypt_fuse(str(big_model), str(dst), str(pw), mountpoint=str(mnt))
    assert not is_mounted(mnt) and not (dst / MARKER_NAME).exists()
    report = verify_cipherdir(dst, PASSWORD)
    assert report.ok and report.checked == 9, report.bad


# ------------------------------------------------------------------------------------------------ upload
def _bucket(lab: Any) -> Any:
    from cai_tui.clients.oss import Credentials, make_bucket

    k = lab.keys
    return make_bucket(
        lab.oss_endpoint, "lab-models", Credentials(k.oss_access_key_id, k.oss_access_key_secret), region="cn-lab"
    )


def _ops(lab: Any) -> dict[str, int]:
    import time

    last = lab.oss_lab.op_counts
    while True:
        time.sleep(0.05)
        now = lab.oss_lab.op_counts
        if now == last:
            return dict(now)
        last = now


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "model.safetensors").write_bytes(os.urandom(4 * 10 * MiB + 777))  # five parts, plain or encrypted
    for i in range(6):
        (root / "sub" / f"f{i}.json").write_bytes(os.urandom(100 + i * 1000))
    return root


@pytest.mark.parametrize("encrypt", [False, True], ids=["plain", "encrypted"])
def test_cancelled_upload_resumes_and_verifies(lab: Any, tree: Path, tmp_path: Path, encrypt: bool) -> None:
    import oss2

    from cai_tui.actions.model_manifest import verify_cipherdir
    from cai_tui.actions.model_upload import JOURNAL_NAME, MARKER_NAME, UploadOptions, upload_tree

    bucket = _bucket(lab)
    prefix = f"cancel/{'enc' if encrypt else 'plain'}/"
    opts = UploadOptions(
        threads=1, password=b"cancel me" if encrypt else None, state_root=tmp_path / "state", progress_interval=0
    )
    before = _ops(lab)
    # the big file's events: encrypted, one before its first part and one after each; plain, oss2's before each
    sink = CancelAfter(3, "upload", "model.safetensors")
    with pytest.raises(Cancelled):
        upload_tree(bucket, tree, prefix, options=opts, on_event=sink, cancel=sink.token)
    mid = _ops(lab)
    sent = mid.get("UploadPart", 0) - before.get("UploadPart", 0)
    assert 1 <= sent < 5, f"{sent} part(s) were sent before the cancel took effect"
    assert bucket.object_exists(prefix + MARKER_NAME), "the marker stays"
    assert not bucket.object_exists(prefix + "gocryptfs.conf"), "not a cipherdir until complete"
    assert mid.get("CompleteMultipartUpload", 0) == before.get("CompleteMultipartUpload", 0)
    journals = list((tmp_path / "state").glob(f"*/{JOURNAL_NAME}"))
    assert len(journals) == 1

    report = upload_tree(bucket, tree, prefix, options=opts)
    after = _ops(lab)
    assert report.ok and report.resumed, report.problems
    assert after.get("UploadPart", 0) - mid.get("UploadPart", 0) == 5 - sent, "the sent parts are not sent again"
    assert after.get("InitiateMultipartUpload", 0) == mid.get("InitiateMultipartUpload", 0), "the upload resumed"
    assert not bucket.object_exists(prefix + MARKER_NAME)
    if not encrypt:
        assert bucket.get_object(prefix + "model.safetensors").read() == (tree / "model.safetensors").read_bytes()
        return
    local = tmp_path / "downloaded"
    for obj in oss2.ObjectIterator(bucket, prefix=prefix):
        target = local / obj.key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        bucket.get_object_to_file(obj.key, str(target))
    verified = verify_cipherdir(local, b"cancel me")
    assert verified.ok and verified.checked == 7, verified.bad
