"""The OSS operations: routing, the order of checks, authorization, and each operation's answer.

Order of checks for every request (as OSS does it): request syntax (bucket/object name, URI) → the fault switches →
the bucket exists → authentication (key, STS token, clock skew, signature) → the operation is one the lab serves →
authorization (owner / bucket policy) → the operation.

The operations live beside it, one module a group: :mod:`.ops_bucket` (service / bucket), :mod:`.ops_listing`,
:mod:`.ops_object`, :mod:`.ops_multipart`; what they share in :mod:`.service_base`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import errors
from .auth import V1_SUBRESOURCES, Principal, WireRequest
from .ops_bucket import BucketOps
from .ops_listing import ListingOps
from .ops_multipart import MultipartOps
from .ops_object import ObjectOps
from .policy import RequestContext, evaluate
from .service_base import MAX_KEY_BYTES, POLICY_ADMIN, RESPONSE_OVERRIDES, Route, _cached_policy, valid_bucket_name
from .xmlbody import has_invalid_xml_chars, iso8601

if TYPE_CHECKING:
    from .wire import OssHandler


class OssService(BucketOps, ListingOps, ObjectOps, MultipartOps):
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
