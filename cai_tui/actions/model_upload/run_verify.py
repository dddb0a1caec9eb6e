"""Verification of an upload run: a HEAD of every object (size and CRC-64), and the objects under the prefix that are
not part of the upload."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ...clients.oss import oss_errors
from .objects import _Obj, _Progress
from .report import Mismatch
from .run_base import _RunBase


class _Verification(_RunBase):
    def _verify(self, progress: _Progress) -> list[Mismatch]:
        import oss2

        progress.emit("verifying")

        def head(obj: _Obj) -> Mismatch | None:
            try:
                meta = self.bucket.head_object(obj.key)
            except oss2.exceptions.NotFound:
                return Mismatch(obj.key, "missing")
            want = self.crcs.get(obj.key)
            if meta.content_length != obj.size:
                return Mismatch(obj.key, f"size {meta.content_length}, expected {obj.size}")
            if meta.server_crc is None:
                return Mismatch(obj.key, "OSS sent no x-oss-hash-crc64ecma; cannot verify the content")
            if want is not None and int(meta.server_crc) != want:
                return Mismatch(obj.key, f"CRC-64 {meta.server_crc}, expected {want}")
            return None

        with (
            oss_errors(f"verifying oss://{self.bucket.bucket_name}/{self.prefix}", self.bucket),
            ThreadPoolExecutor(max_workers=self.opt.threads, thread_name_prefix="cai-verify") as pool,
        ):
            results = list(pool.map(head, self.objects))
        problems = [m for m in results if m is not None]
        for m in problems:
            self.journal.append({"t": "undone", "key": m.key})
        return problems

    def _extras(self) -> list[str]:
        import oss2

        wanted = {o.key for o in self.objects} | {self.marker_key}
        extras = []
        with oss_errors(f"listing oss://{self.bucket.bucket_name}/{self.prefix}", self.bucket):
            for info in oss2.ObjectIterator(self.bucket, prefix=self.prefix):
                if info.key not in wanted:
                    extras.append(str(info.key))
        return extras
