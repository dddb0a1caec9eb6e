"""Large objects of an upload run: multipart uploads, plain (resumable with oss2's checkpoint) or encrypted part by
part (resumed from the journal)."""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

from ...clients.oss import OssActionError, oss_errors
from .objects import _Obj, _Progress
from .options import MAX_PARTS, UploadInputError
from .run_base import _RunBase
from .tree import crc64_of, crc64_of_file


class _LargeObjects(_RunBase):
    def _upload_big(self, obj: _Obj, progress: _Progress) -> None:
        if obj.encrypted:
            self._upload_big_encrypted(obj, progress)
        else:
            self._upload_big_plain(obj, progress)

    def _upload_big_plain(self, obj: _Obj, progress: _Progress) -> None:
        import oss2

        assert obj.src is not None
        src = obj.src
        store = oss2.ResumableStore(root=str(self.state_dir), dir="oss2")
        crc_box: dict[str, Any] = {}

        def local_crc() -> None:
            try:
                crc_box["crc"], crc_box["n"] = crc64_of_file(src.path)
            except OSError as exc:
                crc_box["error"] = exc

        crc_thread = threading.Thread(target=local_crc, name="cai-upload-crc", daemon=True)
        crc_thread.start()

        def cb(consumed: int, _total: int | None) -> None:
            # oss2 calls this before each part (and at the end): raising here stops each of its threads before its
            # next part, after the part it was sending; the checkpoint and the open upload let a rerun resume
            self.user_cancel.check()
            progress.advance(obj.key, consumed, obj.label)

        with oss_errors(f"uploading {obj.label}", self.bucket):
            result = oss2.resumable_upload(
                self.bucket,
                obj.key,
                src.path,
                store=store,
                multipart_threshold=self.opt.part_size,
                part_size=self.opt.part_size,
                num_threads=self.opt.threads,
                progress_callback=cb,
            )
        crc_thread.join()
        if "error" in crc_box:
            raise UploadInputError(f"{src.path}: cannot read ({crc_box['error']})")
        if crc_box["n"] != src.size or _mtime_ns(src.path) != src.mtime_ns:
            raise UploadInputError(f"{src.path} changed while it was uploaded; run the command again")
        self._record_done(obj, crc_box["crc"], result.crc)
        progress.finish(obj, uploaded=True)

    def _upload_big_encrypted(self, obj: _Obj, progress: _Progress) -> None:
        from oss2.models import PartInfo
        from oss2.utils import Crc64

        from ...gocryptfs.content import BLOCK_SIZE, CIPHER_BLOCK_SIZE, block_count, new_file_id

        assert obj.src is not None
        src = obj.src
        total_blocks = block_count(src.size)
        state = self.journal.state
        rec = state.mpu.get(obj.key)
        upload_id = ""
        have: dict[int, tuple[str, int, int]] = {}
        if rec is not None and (rec.get("src_size") != src.size or rec.get("src_mtime_ns") != src.mtime_ns):
            self._abort_quietly(obj.key, str(rec["upload_id"]))  # the file changed: its old parts are of no use
        elif rec is not None:
            listed = self._list_parts(obj.key, str(rec["upload_id"]))
            if listed is not None:
                upload_id = str(rec["upload_id"])
                file_id = bytes.fromhex(rec["file_id"])
                blocks = int(rec["blocks"])
                mine = state.parts.get((obj.key, upload_id), {})
                have = {n: v for n, v in mine.items() if listed.get(n) == (v[0], v[1])}
        if not upload_id:
            file_id = new_file_id()
            blocks = max(-(-self.opt.part_size // CIPHER_BLOCK_SIZE), -(-total_blocks // MAX_PARTS))
            with oss_errors(f"starting the multipart upload of {obj.label}", self.bucket):
                upload_id = self.bucket.init_multipart_upload(obj.key).upload_id
            self.journal.append(
                {
                    "t": "mpu",
                    "key": obj.key,
                    "upload_id": upload_id,
                    "file_id": file_id.hex(),
                    "blocks": blocks,
                    "src_size": src.size,
                    "src_mtime_ns": src.mtime_ns,
                }
            )
        parts = [
            (i + 1, first, min(first + blocks, total_blocks)) for i, first in enumerate(range(0, total_blocks, blocks))
        ]
        done_bytes = sum(v[1] for v in have.values())
        lock = threading.Lock()
        progress.advance(obj.key, done_bytes, obj.label)

        def one(n: int, first: int, end: int) -> None:
            nonlocal done_bytes
            if self._cancel.is_set():
                return
            self.user_cancel.check()
            fd = os.open(src.path, os.O_RDONLY)  # one per part: nothing shared with threads left running on failure
            try:
                body = _encrypt_blocks(fd, self._content, file_id, first, end, src.size, BLOCK_SIZE)
            finally:
                os.close(fd)
            crc = crc64_of(body)
            with oss_errors(f"uploading part {n} of {obj.label}", self.bucket):
                result = self.bucket.upload_part(obj.key, upload_id, n, body)
            if result.crc is not None and result.crc != crc:
                raise OssActionError(
                    f"uploading part {n} of {obj.label}: OSS computed CRC-64 {result.crc}, the data sent has {crc}",
                    "oss-crc-mismatch",
                    "InconsistentError",
                )
            self.journal.append(
                {
                    "t": "part",
                    "key": obj.key,
                    "upload_id": upload_id,
                    "n": n,
                    "etag": result.etag,
                    "size": len(body),
                    "crc": crc,
                }
            )
            with lock:
                have[n] = (result.etag, len(body), crc)
                done_bytes += len(body)
                now = done_bytes
            progress.advance(obj.key, now, obj.label)

        todo = [p for p in parts if p[0] not in have]
        self._run_all([functools.partial(one, *p) for p in todo], "cai-upload-part")
        if _mtime_ns(src.path) != src.mtime_ns:
            raise UploadInputError(f"{src.path} changed while it was uploaded; run the command again")
        crc_all = Crc64()
        crc = 0
        for n, _first, _end in parts:
            _etag, size, part_crc = have[n]
            crc = crc_all.combine(crc, part_crc, size) if n > 1 else part_crc
        with oss_errors(f"completing the multipart upload of {obj.label}", self.bucket):
            result = self.bucket.complete_multipart_upload(
                obj.key, upload_id, [PartInfo(n, have[n][0]) for n, _, _ in parts]
            )
        self._record_done(obj, int(crc), result.crc)
        progress.finish(obj, uploaded=True)

    def _abort_quietly(self, key: str, upload_id: str) -> None:
        """Drop an unfinished multipart upload (its parts cost storage until aborted); failures are not fatal."""
        import oss2

        try:
            self.bucket.abort_multipart_upload(key, upload_id)
        except oss2.exceptions.OssError:
            pass

    def _list_parts(self, key: str, upload_id: str) -> dict[int, tuple[str, int]] | None:
        """{part number: (etag, size)} of an open multipart upload; None when it no longer exists."""
        import oss2

        out: dict[int, tuple[str, int]] = {}
        with oss_errors(f"listing the parts of {key}", self.bucket):
            try:
                for p in oss2.PartIterator(self.bucket, key, upload_id):
                    out[int(p.part_number)] = (str(p.etag), int(p.size))
            except oss2.exceptions.NoSuchUpload:
                return None
        return out


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _encrypt_blocks(fd: int, content: Any, file_id: bytes, first: int, end: int, size: int, block_size: int) -> bytes:
    """gocryptfs ciphertext of plaintext blocks ``[first, end)`` (with the file header when ``first == 0``)."""
    from ...gocryptfs.content import CIPHER_BLOCK_SIZE, IO_BLOCKS, block_count, make_header

    want_total = max(0, min(end * block_size, size) - first * block_size)
    out = bytearray(make_header(file_id) if first == 0 else b"")
    cbuf = bytearray(IO_BLOCKS * CIPHER_BLOCK_SIZE)
    block = first
    got = 0
    while block < end:
        want = min(IO_BLOCKS, end - block) * block_size
        data = os.pread(fd, want, block * block_size)
        while 0 < len(data) < want:  # short reads are allowed; fill up or reach EOF
            more = os.pread(fd, want - len(data), block * block_size + len(data))
            if not more:
                break
            data += more
        if not data:
            break
        out += content.encrypt_chunk(memoryview(data), block, file_id, cbuf)
        got += len(data)
        block += block_count(len(data))
        if len(data) < want:
            break
    if got != want_total:
        raise UploadInputError("a file changed size while it was encrypted and uploaded; run the command again")
    return bytes(out)
