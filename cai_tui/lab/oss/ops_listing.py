"""The listing operations: ListObjects (V1 and V2) and ListMultipartUploads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import errors
from .auth import Principal, WireRequest
from .service_base import ServiceBase, _decode_token, _encode_token, _encoding, _etag, _int_param, _url
from .store import ObjectRecord
from .xmlbody import Node, document, iso8601

if TYPE_CHECKING:
    from .wire import OssHandler


class ListingOps(ServiceBase):
    def list_objects(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        assert req.bucket is not None
        q = req.query
        v2 = q.get("list-type") == "2"
        if "list-type" in q and not v2:
            raise errors.invalid_argument("The list-type must be 2.", "list-type", q["list-type"][:64])
        url = _encoding(q)
        prefix = q.get("prefix", "")
        delimiter = q.get("delimiter", "")
        max_keys = _int_param(q, "max-keys", 100, 1, 1000)
        if v2:
            token = q.get("continuation-token", "")
            start_after = q.get("start-after", "")
            marker = _decode_token(token) if token else start_after
        else:
            marker = q.get("marker", "")
        contents: list[ObjectRecord] = []
        prefixes: list[str] = []
        truncated = False
        last = ""
        for rec in self.store.iter_objects(req.bucket, marker, prefix):
            common = None
            if delimiter:
                cut = rec.key.find(delimiter, len(prefix))
                if cut >= 0:
                    common = rec.key[: cut + len(delimiter)]
                    if common <= marker or (prefixes and prefixes[-1] == common):
                        continue
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            if common is not None:
                prefixes.append(common)
                last = common
            else:
                contents.append(rec)
                last = rec.key
        owner = self.store.bucket(req.bucket)
        owner_uid = owner.owner_uid if owner else ""
        with_owner = (not v2) or q.get("fetch-owner", "").lower() == "true"
        nodes: list[Node] = [("Name", req.bucket), ("Prefix", _url(prefix, url))]
        if v2:
            if q.get("start-after"):
                nodes.append(("StartAfter", _url(q["start-after"], url)))
            if q.get("continuation-token"):
                nodes.append(("ContinuationToken", q["continuation-token"]))
        else:
            nodes.append(("Marker", _url(marker, url)))
        nodes += [("MaxKeys", str(max_keys)), ("Delimiter", _url(delimiter, url))]
        if url:
            nodes.append(("EncodingType", "url"))
        nodes.append(("IsTruncated", "true" if truncated else "false"))
        if truncated:
            if v2:
                nodes.append(("NextContinuationToken", _encode_token(last)))
            else:
                nodes.append(("NextMarker", _url(last, url)))
        if v2:
            nodes.append(("KeyCount", str(len(contents) + len(prefixes))))
        for rec in contents:
            entry: list[Node] = [
                ("Key", _url(rec.key, url)),
                ("LastModified", iso8601(rec.mtime)),
                ("ETag", _etag(rec.etag)),
                ("Type", rec.object_type),
                ("Size", str(rec.size)),
                ("StorageClass", "Standard"),
            ]
            if with_owner:
                entry.append(("Owner", [("ID", owner_uid), ("DisplayName", owner_uid)]))
            nodes.append(("Contents", entry))
        nodes += [("CommonPrefixes", [("Prefix", _url(cp, url))]) for cp in prefixes]
        h.answer(200, document(("ListBucketResult", nodes)))

    def list_multipart_uploads(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        assert req.bucket is not None
        url = _encoding(req.query)
        prefix = req.query.get("prefix", "")
        ups = [u for u in self.store.uploads(req.bucket) if u.key.startswith(prefix)]
        nodes: list[Node] = [
            ("Bucket", req.bucket),
            ("KeyMarker", ""),
            ("UploadIdMarker", ""),
            ("NextKeyMarker", ""),
            ("NextUploadIdMarker", ""),
            ("Delimiter", ""),
            ("Prefix", _url(prefix, url)),
            ("MaxUploads", "1000"),
            ("IsTruncated", "false"),
        ]
        if url:
            nodes.append(("EncodingType", "url"))
        nodes += [
            ("Upload", [("Key", _url(u.key, url)), ("UploadId", u.upload_id), ("Initiated", iso8601(u.initiated))])
            for u in ups
        ]
        h.answer(200, document(("ListMultipartUploadsResult", nodes)))
