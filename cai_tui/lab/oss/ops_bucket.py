"""The service and bucket operations: list buckets, bucket info/location/ACL, create/delete, the bucket policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import errors
from .auth import Principal, WireRequest
from .errors import OssError
from .policy import POLICY_MAX_BYTES, parse_policy
from .service_base import ServiceBase, _content_md5, _md5
from .store import StoreError
from .xmlbody import Node, document, iso8601, parse

if TYPE_CHECKING:
    from .wire import OssHandler


class BucketOps(ServiceBase):
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
