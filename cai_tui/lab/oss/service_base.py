"""What the OSS operations share: the limits, the route record, request-parameter helpers, OSS's own error bodies
for parts and ranges, and :class:`ServiceBase` (the service's state, the endpoint, receiving a body)."""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import quote

from . import errors
from .auth import Authenticator, Principal, WireRequest
from .credentials import OssCredentials
from .errors import OssError
from .policy import Policy, parse_policy
from .store import Blob, PartRecord, Store

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


class ServiceBase:
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

    def _endpoint(self, h: OssHandler) -> str:
        return h.headers.get("Host") or f"127.0.0.1:{h.server.port}"

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
