"""The OSS operations: routing, the order of checks, authorization, and each operation's answer.

Order of checks for every request (as OSS does it): request syntax (bucket/object name, URI) → the fault switches →
the bucket exists → authentication (key, STS token, clock skew, signature) → the operation is one the lab serves →
authorization (owner / bucket policy) → the operation.
"""

from __future__ import annotations

import base64
import binascii
import collections
import functools
import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import quote

from . import errors
from .auth import V1_SUBRESOURCES, Authenticator, Principal, WireRequest
from .credentials import OssCredentials
from .errors import OssError
from .policy import POLICY_MAX_BYTES, Policy, RequestContext, evaluate, parse_policy
from .store import Blob, ObjectRecord, PartRecord, Store, StoreError, UploadRecord
from .xmlbody import Node, document, has_invalid_xml_chars, http_date, iso8601, parse, parse_complete_upload

if TYPE_CHECKING:
    from cai_tui.lab.faults import FaultSwitches

    from .wire import OssHandler

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
MAX_OBJECT_SIZE = 5 * 1024**3
MIN_PART_SIZE = 100 * 1024
MAX_PART_NUMBER = 10000
MAX_KEY_BYTES = 1023
POLICY_ADMIN = {"oss:PutBucketPolicy", "oss:GetBucketPolicy", "oss:DeleteBucketPolicy"}
ECHOED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "expires")
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def valid_bucket_name(name: str) -> bool:
    return BUCKET_RE.match(name) is not None


@dataclass(frozen=True)
class Route:
    name: str
    action: str
    run: Callable[[OssHandler, WireRequest, Principal], None] | None
    error: OssError | None = None


@lru_cache(maxsize=256)
def _cached_policy(text: str, bucket: str) -> Policy:
    return parse_policy(text, bucket)


def _url(text: str, encode: bool) -> str:
    return quote(text, safe="") if encode else text


def _etag(value: str) -> str:
    return f'"{value}"'


def _int_param(q: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = q.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.invalid_argument(f"Argument {name} is not a valid integer.", name, raw[:64]) from None
    if not lo <= value <= hi:
        raise errors.invalid_argument(f"Argument {name} must be between {lo} and {hi}.", name, raw[:64])
    return value


def _encoding(q: dict[str, str]) -> bool:
    enc = q.get("encoding-type", "")
    if enc not in ("", "url"):
        raise errors.invalid_argument("The encoding-type must be url.", "encoding-type", enc[:64])
    return enc == "url"


def _content_md5(h: OssHandler) -> bytes | None:
    raw = h.headers.get("Content-MD5")
    if raw is None:
        return None
    try:
        digest = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise errors.invalid_digest() from None
    if len(digest) != 16:
        raise errors.invalid_digest()
    return digest


class OssService:
    def __init__(
        self,
        store: Store,
        credentials: OssCredentials,
        faults: FaultSwitches,
        region: str,
        now: Callable[[], float],
        stopping: threading.Event,
    ) -> None:
        self.store = store
        self.credentials = credentials
        self.faults = faults
        self.region = region
        self.now = now
        self.stopping = stopping
        self.auth = Authenticator(credentials, region, now, faults.is_on)
        self._counts_lock = threading.Lock()
        self.op_counts: collections.Counter[str] = collections.Counter()
        self._stall_lock = threading.Lock()
        self.stalled = 0

    # --- entry ------------------------------------------------------------------------------------------------------

    def handle(self, h: OssHandler, req: WireRequest) -> None:
        if req.bucket is not None and not valid_bucket_name(req.bucket):
            raise errors.invalid_bucket_name(req.bucket)
        if req.bucket is not None and req.key:
            self._check_key(req.key)
        route = self._route(req)
        if self.faults.is_on("oss-access-denied"):
            raise errors.access_denied()
        if req.bucket is not None and self.faults.is_on("oss-no-such-bucket"):
            raise errors.no_such_bucket(req.bucket)
        bucket = self.store.bucket(req.bucket) if req.bucket is not None else None
        if req.bucket is not None and bucket is None and route.name != "PutBucket":
            raise errors.no_such_bucket(req.bucket)
        principal = self.auth.authenticate(req)
        if route.error is not None:
            raise route.error
        self._authorize(h, req, route, principal)
        assert route.run is not None
        h.on_success = functools.partial(self._count, route.name)
        route.run(h, req, principal)

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self.op_counts[name] += 1

    @staticmethod
    def _check_key(key: str) -> None:
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise errors.invalid_object_name("The Length of Object name must be less than 1024")
        if key.startswith(("/", "\\")):
            raise errors.invalid_object_name("Object name cannot begin with / or \\.")
        if has_invalid_xml_chars(key):
            raise errors.invalid_object_name()

    def _route(self, req: WireRequest) -> Route:
        m, q = req.method, req.query
        served = {
            "bucketInfo",
            "location",
            "acl",
            "policy",
            "uploads",
            "uploadId",
            "partNumber",
            "objectMeta",
            "continuation-token",
            "security-token",
            *RESPONSE_OVERRIDES,
        }
        unserved = sorted(k for k in q if k in V1_SUBRESOURCES and k not in served)

        def ni(name: str = "NotImplemented") -> Route:
            what = (
                f"The lab OSS does not implement ?{unserved[0]}"
                if unserved
                else f"The lab OSS does not implement {m} here."
            )
            return Route(name, "oss:*", None, errors.not_implemented(what))

        def mna() -> Route:
            return Route("MethodNotAllowed", "oss:*", None, errors.method_not_allowed(m))

        if req.bucket is None:
            return Route("ListBuckets", "oss:ListBuckets", self.list_buckets) if m == "GET" else mna()
        if unserved:
            return ni()
        if not req.key:
            if m == "GET":
                getters: list[tuple[str, str, Callable[[OssHandler, WireRequest, Principal], None]]] = [
                    ("bucketInfo", "GetBucketInfo", self.get_bucket_info),
                    ("location", "GetBucketLocation", self.get_bucket_location),
                    ("acl", "GetBucketAcl", self.get_bucket_acl),
                    ("policy", "GetBucketPolicy", self.get_bucket_policy),
                    ("uploads", "ListMultipartUploads", self.list_multipart_uploads),
                ]
                for sub, name, run in getters:
                    if sub in q:
                        return Route(name, f"oss:{name}", run)
                return Route("ListObjects", "oss:ListObjects", self.list_objects)
            if m == "PUT":
                if "policy" in q:
                    return Route("PutBucketPolicy", "oss:PutBucketPolicy", self.put_bucket_policy)
                if "acl" in q:
                    return ni()
                return Route("PutBucket", "oss:PutBucket", self.put_bucket)
            if m == "DELETE":
                if "policy" in q:
                    return Route("DeleteBucketPolicy", "oss:DeleteBucketPolicy", self.delete_bucket_policy)
                return Route("DeleteBucket", "oss:DeleteBucket", self.delete_bucket)
            if m in ("POST", "OPTIONS"):
                return ni()
            return mna()
        if m == "GET":
            if "uploadId" in q:
                return Route("ListParts", "oss:ListParts", self.list_parts)
            if "acl" in q:
                return ni()
            return Route("GetObject", "oss:GetObject", self.get_object)
        if m == "HEAD":
            if "objectMeta" in q:
                return Route("GetObjectMeta", "oss:GetObject", self.get_object_meta)
            return Route("HeadObject", "oss:GetObject", self.head_object)
        if m == "PUT":
            if "uploadId" in q or "partNumber" in q:
                return Route("UploadPart", "oss:PutObject", self.upload_part)
            if "acl" in q or "x-oss-copy-source" in req.headers:
                return ni()
            return Route("PutObject", "oss:PutObject", self.put_object)
        if m == "POST":
            if "uploads" in q:
                return Route("InitiateMultipartUpload", "oss:PutObject", self.initiate_upload)
            if "uploadId" in q:
                return Route("CompleteMultipartUpload", "oss:PutObject", self.complete_upload)
            return ni()
        if m == "DELETE":
            if "uploadId" in q:
                return Route("AbortMultipartUpload", "oss:AbortMultipartUpload", self.abort_upload)
            return Route("DeleteObject", "oss:DeleteObject", self.delete_object)
        return ni()

    # --- authorization ----------------------------------------------------------------------------------------------

    def _authorize(self, h: OssHandler, req: WireRequest, route: Route, p: Principal) -> None:
        if route.name == "ListBuckets":
            if p.kind != "owner":
                raise errors.access_denied("You have no right to list buckets.", "0003-00000801")
            return
        assert req.bucket is not None
        bucket = self.store.bucket(req.bucket)
        if route.name == "PutBucket":
            # accounts may create buckets (a name taken by another account is a 409 from the store);
            # RAM users have no grants of their own
            if p.kind != "owner":
                raise errors.access_denied("You have no right to create a bucket.", "0003-00000801")
            return
        if bucket is None:
            raise errors.no_such_bucket(req.bucket)
        is_owner = p.kind == "owner" and p.uid == bucket.owner_uid
        policy = _cached_policy(bucket.policy, bucket.name) if bucket.policy else None
        resource = f"acs:oss:{self.region}:{bucket.owner_uid}:{bucket.name}" + (f"/{req.key}" if req.key else "")
        values = {
            "acs:sourceip": h.client_ip,
            "acs:securetransport": "false",
            "acs:useragent": req.headers.get("user-agent"),
            "acs:referer": req.headers.get("referer"),
            "acs:currenttime": iso8601(self.now()),
        }
        if route.name == "ListObjects":
            values["oss:prefix"] = req.query.get("prefix", "")
            values["oss:delimiter"] = req.query.get("delimiter", "")
        ctx = RequestContext(
            action=route.action,
            resource=resource,
            principal_ids=() if p.anonymous else (p.uid,),
            is_bucket_owner=is_owner,
            values=values,
        )
        decision = evaluate(policy, ctx)
        if is_owner:
            if decision == "deny" and route.action not in POLICY_ADMIN:
                raise errors.policy_denied()
            return
        if decision == "allow":
            return
        if decision == "deny":
            raise errors.policy_denied()
        if p.kind == "owner":
            raise errors.access_denied("The bucket you access does not belong to you.", "0003-00000001")
        raise errors.access_denied()

    # --- service / bucket -------------------------------------------------------------------------------------------

    def _endpoint(self, h: OssHandler) -> str:
        return h.headers.get("Host") or f"127.0.0.1:{h.server.port}"

    def list_buckets(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        buckets = [] if self.faults.is_on("oss-no-such-bucket") else self.store.buckets(p.uid)
        ep = self._endpoint(h)
        nodes: list[Node] = [
            (
                "Bucket",
                [
                    ("CreationDate", iso8601(b.created)),
                    ("ExtranetEndpoint", ep),
                    ("IntranetEndpoint", ep),
                    ("Location", f"oss-{self.region}"),
                    ("Name", b.name),
                    ("Region", self.region),
                    ("StorageClass", "Standard"),
                ],
            )
            for b in buckets
        ]
        doc = document(
            (
                "ListAllMyBucketsResult",
                [
                    ("Owner", [("ID", p.uid), ("DisplayName", p.uid)]),
                    ("Buckets", nodes),
                ],
            )
        )
        h.answer(200, doc)

    def get_bucket_info(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        assert req.bucket is not None
        b = self.store.bucket(req.bucket)
        if b is None:
            raise errors.no_such_bucket(req.bucket)
        ep = self._endpoint(h)
        doc = document(
            (
                "BucketInfo",
                [
                    (
                        "Bucket",
                        [
                            ("AccessMonitor", "Disabled"),
                            ("CreationDate", iso8601(b.created)),
                            ("ExtranetEndpoint", ep),
                            ("IntranetEndpoint", ep),
                            ("Location", f"oss-{self.region}"),
                            ("StorageClass", "Standard"),
                            ("TransferAcceleration", "Disabled"),
                            ("CrossRegionReplication", "Disabled"),
                            ("Name", b.name),
                            ("Owner", [("DisplayName", b.owner_uid), ("ID", b.owner_uid)]),
                            ("AccessControlList", [("Grant", b.acl)]),
                            ("Comment", ""),
                            ("DataRedundancyType", "LRS"),
                            ("ServerSideEncryptionRule", [("SSEAlgorithm", "None")]),
                            ("BucketPolicy", [("LogBucket", ""), ("LogPrefix", "")]),
                        ],
                    )
                ],
            )
        )
        h.answer(200, doc)

    def get_bucket_location(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        h.answer(200, document(("LocationConstraint", f"oss-{self.region}")))

    def get_bucket_acl(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        assert req.bucket is not None
        b = self.store.bucket(req.bucket)
        if b is None:
            raise errors.no_such_bucket(req.bucket)
        doc = document(
            (
                "AccessControlPolicy",
                [
                    ("Owner", [("ID", b.owner_uid), ("DisplayName", b.owner_uid)]),
                    ("AccessControlList", [("Grant", b.acl)]),
                ],
            )
        )
        h.answer(200, doc)

    def put_bucket(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        assert req.bucket is not None and h.body is not None
        body = h.body.read_small(64 * 1024)
        if body.strip():
            root = parse(body)
            if root.tag != "CreateBucketConfiguration":
                raise errors.malformed_xml()
        try:
            self.store.create_bucket(req.bucket, p.uid)
        except StoreError:
            raise OssError(
                409,
                "BucketAlreadyExists",
                "The requested bucket name is not available. "
                "The bucket namespace is shared by all users of the system. "
                "Please select a different name and try again.",
                "0015-00000002",
                {"BucketName": req.bucket},
            ) from None
        h.answer(200, headers={"Location": f"/{req.bucket}"})

    def delete_bucket(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        assert req.bucket is not None
        try:
            self.store.delete_bucket(req.bucket)
        except StoreError:
            raise OssError(
                409,
                "BucketNotEmpty",
                "The bucket you tried to delete is not empty.",
                "0015-00000301",
                {"BucketName": req.bucket},
            ) from None
        h.answer(204)

    def put_bucket_policy(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        assert req.bucket is not None and h.body is not None
        body = h.body.read_small(POLICY_MAX_BYTES + 1)
        digest = _content_md5(h)
        if digest is not None and digest != _md5(body):
            raise errors.invalid_digest()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise OssError(
                400, "InvalidPolicyDocument", "Invalid policy: the document is not UTF-8.", "0030-00000001"
            ) from None
        parse_policy(text, req.bucket)
        self.store.set_policy(req.bucket, text)
        h.answer(200)

    def get_bucket_policy(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        assert req.bucket is not None
        b = self.store.bucket(req.bucket)
        if b is None:
            raise errors.no_such_bucket(req.bucket)
        if b.policy is None:
            raise errors.no_such_policy(req.bucket)
        h.answer(200, b.policy.encode("utf-8"), {"Content-Type": "application/json"})

    def delete_bucket_policy(self, h: OssHandler, req: WireRequest, p: Principal) -> None:
        assert req.bucket is not None
        self.store.set_policy(req.bucket, None)
        h.answer(204)

    # --- listing ----------------------------------------------------------------------------------------------------

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

    # --- objects ----------------------------------------------------------------------------------------------------

    @staticmethod
    def _stored_headers(h: OssHandler) -> dict[str, str]:
        out = {}
        for k, v in h.headers.items():
            lk = k.lower()
            if lk.startswith("x-oss-meta-") or lk in ECHOED_HEADERS:
                out[lk] = v
        return out

    def _receive(self, h: OssHandler, limit: int) -> Blob:
        body = h.body
        assert body is not None
        if not body.declared and h.command == "PUT":
            raise errors.missing_content_length()
        if body.length is not None and body.length > limit:
            raise errors.entity_too_large()
        digest = _content_md5(h)
        blob = self.store.receive(body.chunks())
        if blob.size > limit or (digest is not None and digest != blob.md5):
            self.store.discard(blob)
            raise errors.entity_too_large() if blob.size > limit else errors.invalid_digest()
        return blob

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

    # --- multipart --------------------------------------------------------------------------------------------------

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


def _invalid_part() -> OssError:
    return OssError(
        400,
        "InvalidPart",
        "One or more of the specified parts could not be found or the specified entity tag might not have matched the "
        "part's entity tag.",
        "0042-00000205",
    )


def _check_part_sizes(parts: list[PartRecord]) -> None:
    for part in parts[:-1]:
        if part.size < MIN_PART_SIZE:
            raise OssError(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size.",
                "0042-00000206",
                {"PartNumber": str(part.number), "ProposedSize": str(part.size), "MinSizeAllowed": str(MIN_PART_SIZE)},
            )


def _unsatisfiable(size: int) -> tuple[int, int]:
    raise OssError(
        416,
        "InvalidRange",
        "The requested range cannot be satisfied",
        "0026-00000012",
        {"ActualObjectSize": str(size)},
        {"Content-Range": f"bytes */{size}"},
    )


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def _encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii").rstrip("=")


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise errors.invalid_argument(
            "The continuation token provided is incorrect.", "continuation-token", token[:64]
        ) from None
