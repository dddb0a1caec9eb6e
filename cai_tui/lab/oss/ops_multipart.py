"""The multipart operations: initiate, upload part, list parts, complete, abort."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING
from urllib.parse import quote

from . import errors
from .auth import Principal, WireRequest
from .errors import OssError
from .service_base import (
    MAX_OBJECT_SIZE,
    MAX_PART_NUMBER,
    ServiceBase,
    _check_part_sizes,
    _encoding,
    _etag,
    _int_param,
    _invalid_part,
    _url,
)
from .store import StoreError, UploadRecord
from .xmlbody import Node, document, iso8601, parse_complete_upload

if TYPE_CHECKING:
    from .wire import OssHandler


class MultipartOps(ServiceBase):
    def _upload(self, req: WireRequest) -> UploadRecord:
        upload_id = req.query.get("uploadId", "")
        up = self.store.upload(upload_id) if upload_id else None
        if up is None or up.bucket != req.bucket or up.key != req.key:
            raise errors.no_such_upload(upload_id)
        return up

    def initiate_upload(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        assert req.bucket is not None
        url = _encoding(req.query)
        up = self.store.create_upload(
            req.bucket, req.key, req.headers.get("content-type") or "application/octet-stream", self._stored_headers(h)
        )
        nodes: list[Node] = [("Bucket", req.bucket), ("Key", _url(req.key, url)), ("UploadId", up.upload_id)]
        if url:
            nodes.append(("EncodingType", "url"))
        h.answer(200, document(("InitiateMultipartUploadResult", nodes)))

    def upload_part(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        number = _int_param(req.query, "partNumber", -1, 1, MAX_PART_NUMBER)
        if number == -1:
            raise errors.invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive.", "partNumber"
            )
        up = self._upload(req)
        blob = self._receive(h, MAX_OBJECT_SIZE)
        try:
            part = self.store.put_part(up.upload_id, number, blob)
        except StoreError:
            self.store.discard(blob)
            raise errors.no_such_upload(up.upload_id) from None
        except BaseException:
            self.store.discard(blob)
            raise
        h.answer(
            200,
            headers={
                "ETag": _etag(part.etag),
                "x-oss-hash-crc64ecma": str(part.crc64),
                "Content-MD5": base64.b64encode(part.md5).decode(),
            },
        )

    def list_parts(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        up = self._upload(req)
        q = req.query
        url = _encoding(q)
        marker = _int_param(q, "part-number-marker", 0, 0, MAX_PART_NUMBER)
        max_parts = _int_param(q, "max-parts", 1000, 1, 1000)
        parts = [pt for pt in self.store.parts(up.upload_id) if pt.number > marker]
        page, truncated = parts[:max_parts], len(parts) > max_parts
        next_marker = page[-1].number if page else marker
        nodes: list[Node] = [
            ("Bucket", up.bucket),
            ("Key", _url(up.key, url)),
            ("UploadId", up.upload_id),
            ("PartNumberMarker", str(marker)),
            ("NextPartNumberMarker", str(next_marker)),
            ("MaxParts", str(max_parts)),
            ("IsTruncated", "true" if truncated else "false"),
        ]
        if url:
            nodes.append(("EncodingType", "url"))
        nodes += [
            (
                "Part",
                [
                    ("PartNumber", str(pt.number)),
                    ("LastModified", iso8601(pt.mtime)),
                    ("ETag", _etag(pt.etag)),
                    ("HashCrc64ecma", str(pt.crc64)),
                    ("Size", str(pt.size)),
                ],
            )
            for pt in page
        ]
        h.answer(200, document(("ListPartsResult", nodes)))

    def complete_upload(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        assert h.body is not None
        up = self._upload(req)
        url = _encoding(req.query)
        body = h.body.read_small(4 * 1024 * 1024)
        have = {pt.number: pt for pt in self.store.parts(up.upload_id)}
        if req.headers.get("x-oss-complete-all").lower() == "yes":
            if body.strip():
                raise errors.invalid_argument(
                    "With x-oss-complete-all: yes the request body must be empty.", "x-oss-complete-all"
                )
            chosen = [have[n] for n in sorted(have)]
            if not chosen:
                raise _invalid_part()
        else:
            wanted = parse_complete_upload(body)
            chosen = []
            previous = 0
            for number, etag in wanted:
                if number <= previous:
                    raise OssError(
                        400,
                        "InvalidPartOrder",
                        "The list of parts was not in ascending order. "
                        "Parts list must specified in order by part number.",
                        "0042-00000204",
                    )
                previous = number
                part = have.get(number)
                if part is None or part.etag.upper() != etag:
                    raise _invalid_part()
                chosen.append(part)
        _check_part_sizes(chosen)
        try:
            rec = self.store.complete_upload(up, chosen)
        except StoreError:
            raise errors.no_such_upload(up.upload_id) from None
        host = self._endpoint(h)
        nodes: list[Node] = []
        if url:
            nodes.append(("EncodingType", "url"))
        nodes += [
            ("Location", f"http://{host}/{req.bucket}/{quote(req.key, safe='/')}"),
            ("Bucket", up.bucket),
            ("Key", _url(up.key, url)),
            ("ETag", _etag(rec.etag)),
        ]
        h.answer(
            200,
            document(("CompleteMultipartUploadResult", nodes)),
            {"ETag": _etag(rec.etag), "x-oss-hash-crc64ecma": str(rec.crc64)},
        )

    def abort_upload(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        up = self._upload(req)
        if not self.store.abort_upload(up.upload_id):
            raise errors.no_such_upload(up.upload_id)
        h.answer(204)
