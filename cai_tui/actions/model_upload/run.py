"""Running an upload: the marker, the small objects in parallel, the large ones, the manifest, ``gocryptfs.conf``
last, then verification; a failure names what is in OSS and how to resume."""

from __future__ import annotations

import functools
import json
import os
import time

from ...clients.oss import OssActionError, is_oss_error, map_oss_error, oss_errors
from ...events import note
from .manifest import _ManifestHasher
from .objects import _Obj, _Progress
from .options import MANIFEST_NAME, SOURCE, UploadInputError
from .report import UploadReport
from .run_large import _LargeObjects
from .run_plan import _Planning
from .run_verify import _Verification
from .tree import crc64_of


class _Run(_Planning, _LargeObjects, _Verification):
    def run(self) -> UploadReport:
        t0 = time.monotonic()
        state = self.journal.open()
        resumed = state.runs > 0
        self.journal.append({"t": "run", "at": time.time(), "pid": os.getpid()})
        if self.encrypt:
            if not state.done and not state.mpu:
                self._refuse_non_empty_prefix()
            self._crypto(state)
        self._plan()
        files_total = sum(1 for o in self.objects if o.counts_as_file)
        report = UploadReport(
            bucket=self.bucket.bucket_name,
            prefix=self.prefix,
            source=self.tree.root,
            encrypted=self.encrypt,
            files=files_total,
            objects=len(self.objects),
            bytes_total=sum(o.size for o in self.objects),
            resumed=resumed,
            state_dir=self.state_dir,
            marker_key=self.marker_key,
        )
        progress = _Progress(self.on_event, report.bytes_total, files_total, self.opt.progress_interval)
        todo = []
        for obj in self.objects:
            if self._already_done(obj):
                self.crcs[obj.key] = int(state.done[obj.key]["crc"])
                report.skipped += 1
                progress.finish(obj, uploaded=False)
            else:
                todo.append(obj)
        progress.emit("")
        self._put_marker(report)
        try:
            conf = [o for o in todo if o.key == self.prefix + "gocryptfs.conf"]  # a cipherdir only when complete
            rest = [o for o in todo if o not in conf]
            small = [o for o in rest if o.size < self.opt.part_size]
            big = [o for o in rest if o.size >= self.opt.part_size]
            if self.encrypt:
                self._hasher = _ManifestHasher(self.tree.files)
            self._parallel(small, progress)
            for obj in big:
                self.user_cancel.check()
                self._upload_big(obj, progress)
            if self._hasher is not None:
                self.user_cancel.check()
                self._upload_manifest(progress)
            self.user_cancel.check()
            self._parallel(conf, progress)  # last: the prefix becomes a cipherdir only when all else is there
        except BaseException as exc:
            self._cancel.set()
            if self._hasher is not None:
                self._hasher.stop()
            if isinstance(exc, Exception) and is_oss_error(exc):
                err = exc if isinstance(exc, OssActionError) else map_oss_error(exc, "uploading", self.bucket.endpoint)
                raise OssActionError(
                    f"{err.message}\nThe upload stopped: {progress.files_done} of {files_total} file(s) are in OSS; "
                    f"the marker {self.marker_key} stays until a run completes. Fix the cause and run the same "
                    "command again: it resumes where this one stopped.",
                    err.faq_id,
                    err.code,
                ) from None
            raise
        report.bytes_uploaded = progress.uploaded
        report.objects = len(self.objects)
        report.bytes_total = progress.bytes_total
        if self.opt.verify:
            if self.on_event is not None:
                self.on_event(note(f"verifying {len(self.objects)} object(s) (size and CRC-64)", source=SOURCE))
            report.problems = self._verify(progress)
            report.extras = self._extras()
            progress.emit("verified" if report.ok else "verification failed")
            if report.ok:
                with oss_errors(f"deleting the marker {self.marker_key}", self.bucket):
                    self.bucket.delete_object(self.marker_key)
        self.journal.append({"t": "end", "ok": report.ok, "at": time.time()})
        report.seconds = time.monotonic() - t0
        return report

    def _upload_manifest(self, progress: _Progress) -> None:
        """``.cai-manifest.json`` (SHA-256 of every plaintext file), encrypted, before ``gocryptfs.conf``."""
        import io

        from ...gocryptfs.content import encrypt_stream

        assert self._hasher is not None
        plain = self._hasher.result()
        out = io.BytesIO()
        encrypt_stream(io.BytesIO(plain), out, self._content)
        obj = _Obj(self._manifest_key, out.tell(), MANIFEST_NAME, data=out.getvalue())
        self.objects.insert(len(self.objects) - 1, obj)  # before gocryptfs.conf
        progress.bytes_total += obj.size
        self._upload_small(obj, progress)

    def _already_done(self, obj: _Obj) -> bool:
        rec = self.journal.state.done.get(obj.key)
        if rec is None or rec.get("size") != obj.size:
            return False
        if obj.src is not None:
            return bool(rec.get("src_size") == obj.src.size and rec.get("src_mtime_ns") == obj.src.mtime_ns)
        assert obj.data is not None
        return bool(rec.get("crc") == crc64_of(obj.data))

    def _put_marker(self, report: UploadReport) -> None:
        note = {
            "tool": "cai-tui model upload",
            "state": "incomplete",
            "meaning": "an upload to this prefix started and has not been verified; do not use the objects yet",
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "objects": report.objects,
            "bytes": report.bytes_total,
            "encrypted": report.encrypted,
        }
        with oss_errors(f"writing the marker {self.marker_key}", self.bucket):
            self.bucket.put_object(
                self.marker_key, json.dumps(note, indent=2).encode(), headers={"Content-Type": "application/json"}
            )

    def _parallel(self, objs: list[_Obj], progress: _Progress) -> None:
        self._run_all([functools.partial(self._upload_small, o, progress) for o in objs], "cai-upload")

    def _upload_small(self, obj: _Obj, progress: _Progress) -> None:
        if self._cancel.is_set():
            return
        self.user_cancel.check()
        data = self._small_body(obj)
        crc = crc64_of(data)

        def cb(consumed: int, _total: int | None) -> None:
            progress.advance(obj.key, consumed, obj.label)

        with oss_errors(f"uploading {obj.label}", self.bucket):
            result = self.bucket.put_object(obj.key, data, progress_callback=cb)
        self._record_done(obj, crc, result.crc)
        progress.finish(obj, uploaded=True)

    def _small_body(self, obj: _Obj) -> bytes:
        if obj.data is not None:
            return obj.data
        assert obj.src is not None
        src = obj.src
        with open(src.path, "rb") as f:
            if not obj.encrypted:
                data = f.read()
            else:
                import io

                from ...gocryptfs.content import encrypt_stream

                out = io.BytesIO()
                encrypt_stream(f, out, self._content)
                data = out.getvalue()
        if len(data) != obj.size:
            raise UploadInputError(f"{src.path} changed while it was uploaded (size); run the command again")
        return data
