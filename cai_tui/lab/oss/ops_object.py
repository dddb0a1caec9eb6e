"""The object operations: put, get/head (preconditions, ranges, response overrides, the stall fault), meta, delete."""

from __future__ import annotations

import base64
import re
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from . import errors
from .auth import Principal, WireRequest
from .errors import OssError
from .service_base import MAX_OBJECT_SIZE, RESPONSE_OVERRIDES, ServiceBase, _etag, _unsatisfiable
from .store import ObjectRecord, StoreError
from .xmlbody import http_date

if TYPE_CHECKING:
    from .wire import OssHandler


class ObjectOps(ServiceBase):
    def put_object(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        assert req.bucket is not None
        blob = self._receive(h, MAX_OBJECT_SIZE)
        forbid = req.headers.get("x-oss-forbid-overwrite").lower() == "true"
        try:
            rec = self.store.put_object(
                req.bucket,
                req.key,
                blob,
                req.headers.get("content-type") or "application/octet-stream",
                self._stored_headers(h),
                base64.b64encode(blob.md5).decode(),
                forbid_overwrite=forbid,
            )
        except StoreError as e:
            self.store.discard(blob)
            if str(e) == "FileAlreadyExists":
                raise OssError(
                    409,
                    "FileAlreadyExists",
                    "The object you specified already exists and can not be overwritten.",
                    "0026-00000004",
                ) from None
            raise errors.no_such_bucket(req.bucket) from None
        except BaseException:
            self.store.discard(blob)
            raise
        h.answer(
            200,
            headers={
                "ETag": _etag(rec.etag),
                "x-oss-hash-crc64ecma": str(rec.crc64),
                "Content-MD5": rec.content_md5,
            },
        )

    def _object_headers(self, rec: ObjectRecord) -> dict[str, str]:
        hdrs = {
            "Content-Type": rec.content_type,
            "ETag": _etag(rec.etag),
            "Last-Modified": http_date(rec.mtime),
            "Accept-Ranges": "bytes",
            "x-oss-object-type": rec.object_type,
            "x-oss-storage-class": "Standard",
            "x-oss-hash-crc64ecma": str(rec.crc64),
        }
        if rec.content_md5:
            hdrs["Content-MD5"] = rec.content_md5
        for k, v in rec.headers.items():
            hdrs[k] = v
        return hdrs

    @staticmethod
    def _preconditions(h: OssHandler, rec: ObjectRecord) -> int:
        """0 when the request goes ahead, else 304/412 as the conditional headers demand."""

        def when(name: str) -> float | None:
            raw = h.headers.get(name)
            if not raw:
                return None
            try:
                return parsedate_to_datetime(raw).timestamp()
            except (TypeError, ValueError, IndexError):
                return None

        mtime = int(rec.mtime)
        if_match = h.headers.get("If-Match")
        if if_match is not None and if_match.strip() != "*":
            tags = {t.strip().strip('"').upper() for t in if_match.split(",")}
            if rec.etag.upper() not in tags:
                return 412
        t = when("If-Unmodified-Since")
        if t is not None and mtime > t:
            return 412
        if_none = h.headers.get("If-None-Match")
        if if_none is not None:
            tags = {t.strip().strip('"').upper() for t in if_none.split(",")}
            if "*" in tags or rec.etag.upper() in tags:
                return 304
        t = when("If-Modified-Since")
        if t is not None and mtime <= t:
            return 304
        return 0

    @staticmethod
    def _range(h: OssHandler, size: int) -> tuple[int, int] | None:
        """(start, length) for a satisfiable single range, None for the whole object; 416 in standard mode."""
        raw = h.headers.get("Range")
        if not raw:
            return None
        standard = (h.headers.get("x-oss-range-behavior") or "").lower() == "standard"
        m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", raw)
        if not m or (m.group(1) == "" and m.group(2) == ""):
            return None
        first, last = m.group(1), m.group(2)
        if first == "":
            n = int(last)
            if n == 0 or size == 0:
                return _unsatisfiable(size) if standard else None
            n = min(n, size)
            return size - n, n
        start = int(first)
        end = int(last) if last else size - 1
        if end < start:
            return None
        if start >= size:
            return _unsatisfiable(size) if standard else None
        if end >= size:
            if not standard:
                return None
            end = size - 1
        return start, end - start + 1

    def _answer_object(self, h: OssHandler, req: WireRequest, with_body: bool) -> None:
        assert req.bucket is not None
        opened = self.store.open_object(req.bucket, req.key)
        if opened is None:
            raise errors.no_such_key(req.key)
        rec, f = opened
        try:
            hdrs = self._object_headers(rec)
            cond = self._preconditions(h, rec)
            if cond == 412:
                raise OssError(
                    412,
                    "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold.",
                    "0026-00000011",
                )
            if cond == 304:
                keep = {k: v for k, v in hdrs.items() if k in ("ETag", "Last-Modified")}
                h.start_answer(304, keep, None)
                return
            for param, header in RESPONSE_OVERRIDES.items():
                if req.query.get(param):
                    hdrs[header] = req.query[param]
            rng = self._range(h, rec.size)
            status, start, length = 200, 0, rec.size
            if rng is not None:
                start, length = rng
                status = 206
                hdrs["Content-Range"] = f"bytes {start}-{start + length - 1}/{rec.size}"
                hdrs.pop("Content-MD5", None)
            h.start_answer(status, hdrs, length)
            if not with_body or h.command == "HEAD":
                return
            if self.faults.is_on("oss-stall-body") and not self._stall():
                h.close_connection = True
                return
            h.stream_file(f, start, length)
        finally:
            f.close()

    def _stall(self) -> bool:
        """Hold the body back while oss-stall-body is on; False when the lab is stopping (hang up instead)."""
        with self._stall_lock:
            self.stalled += 1
        try:
            while self.faults.is_on("oss-stall-body"):
                if self.stopping.wait(0.05):
                    return False
            return not self.stopping.is_set()
        finally:
            with self._stall_lock:
                self.stalled -= 1

    def get_object(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        self._answer_object(h, req, with_body=True)

    def head_object(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        self._answer_object(h, req, with_body=False)

    def get_object_meta(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        assert req.bucket is not None
        rec = self.store.get_object(req.bucket, req.key)
        if rec is None:
            raise errors.no_such_key(req.key)
        h.start_answer(
            200,
            {
                "ETag": _etag(rec.etag),
                "Last-Modified": http_date(rec.mtime),
                "x-oss-hash-crc64ecma": str(rec.crc64),
                "x-oss-last-access-time": http_date(rec.mtime),
            },
            rec.size,
        )

    def delete_object(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        assert req.bucket is not None
        self.store.delete_object(req.bucket, req.key)
        h.answer(204)
