"""Request authentication: OSS signature V1 (``OSS ak:sig``, and V1 signed URLs), V2 (``OSS2``) and V4
(``OSS4-HMAC-SHA256``), STS security tokens, and the 15-minute clock-skew window.

The server recomputes the string to sign from what arrived on the wire — method, decoded path, query and headers — the
same way oss2 builds it before sending (oss2/auth.py), and compares HMACs in constant time. A mismatch answers
SignatureDoesNotMatch carrying the server's StringToSign (and CanonicalRequest for V4), as OSS does, so a client can
diff its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from . import errors
from .credentials import OssCredentials
from .errors import OssError
from .xmlbody import http_date

MAX_SKEW_SECONDS = 15 * 60

# The query parameters that take part in a V1 signature (oss2.auth.ProviderAuth._subresource_key_set).
V1_SUBRESOURCES = frozenset(
    """response-content-type response-content-language response-cache-control logging response-content-encoding acl
    uploadId uploads partNumber group link delete website location objectInfo objectMeta response-expires
    response-content-disposition cors lifecycle restore qos referer stat bucketInfo append position security-token
    live comp status vod startTime endTime x-oss-process symlink callback callback-var tagging encryption versions
    versioning versionId policy requestPayment x-oss-traffic-limit qosInfo asyncFetch x-oss-request-payer
    sequential inventory inventoryId continuation-token worm wormId wormExtend replication replicationLocation
    replicationProgress transferAcceleration cname metaQuery x-oss-ac-source-ip x-oss-ac-subnet-mask
    x-oss-ac-vpc-id x-oss-ac-forward-allow resourceGroup style styleName x-oss-async-process regionList
    x-oss-write-get-object-response bucketArchiveDirectRead httpsConfig redundancyTransition
    x-oss-target-redundancy-type x-oss-redundancy-transition-taskid accessPoint accessPointPolicy publicAccessBlock
    x-oss-access-point-name requesterQosInfo qosRequester resourcePoolInfo resourcePool resourcePoolBuckets""".split()  # noqa: SIM905
)
V1_URL_PARAMS = frozenset({"OSSAccessKeyId", "Expires", "Signature"})
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-~.")


class Headers:
    """Request headers as received: case-insensitive lookup, plus every (lowercase name, value) pair."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = [(k.lower(), v) for k, v in pairs]
        self._first: dict[str, str] = {}
        for k, v in self.pairs:
            self._first.setdefault(k, v)

    def get(self, name: str, default: str = "") -> str:
        return self._first.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def joined(self, name: str) -> str:
        """All values of a repeated header joined with ',' (how a single-valued dict on the client would hold it)."""
        return ",".join(v for k, v in self.pairs if k == name)

    def names(self) -> list[str]:
        return list(self._first)


@dataclass(frozen=True)
class WireRequest:
    """The parts of an HTTP request a signature covers."""

    method: str
    bucket: str | None
    key: str
    query: dict[str, str]
    headers: Headers


@dataclass(frozen=True)
class Principal:
    kind: str  # owner | user | anonymous
    uid: str
    access_key_id: str
    via_sts: bool = False
    signature_version: str = ""

    @property
    def anonymous(self) -> bool:
        return self.kind == "anonymous"


ANONYMOUS = Principal("anonymous", "", "")


def uri_encode(text: str, keep_slash: bool) -> str:
    """oss2's v2_uri_encode / __v4_uri_encode: RFC 3986 unreserved kept, everything else %XX of its UTF-8 bytes."""
    out = []
    for b in text.encode("utf-8", "surrogatepass"):
        c = chr(b)
        if c in _UNRESERVED or (keep_slash and c == "/"):
            out.append(c)
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


# --- string-to-sign builders (one per version, kept close to oss2's own) ---------------------------------------


def v1_string_to_sign(req: WireRequest, date: str, query: dict[str, str] | None = None) -> str:
    h = req.headers
    oss_headers = sorted((k, h.joined(k)) for k in h.names() if k.startswith("x-oss-"))
    canon = "".join(f"{k}:{v}\n" for k, v in oss_headers)
    params = req.query if query is None else query
    sub = sorted((k, v) for k, v in params.items() if k in V1_SUBRESOURCES)
    sub_str = ("?" + "&".join(f"{k}={v}" if v else k for k, v in sub)) if sub else ""
    resource = f"/{req.bucket}/{req.key}{sub_str}" if req.bucket else f"/{sub_str}"
    return "\n".join([req.method, h.get("content-md5"), h.get("content-type"), date, canon + resource])


def v2_string_to_sign(req: WireRequest, additional: list[str]) -> str:
    h = req.headers
    add = sorted(set(additional))
    canon = sorted((k, h.joined(k)) for k in h.names() if k.startswith("x-oss-") or k in add)
    resource = uri_encode(f"/{req.bucket}/{req.key}" if req.bucket else "/", keep_slash=False)
    params = sorted((uri_encode(k, False), uri_encode(v, False)) for k, v in req.query.items())
    if params:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in params)
    return (
        f"{req.method}\n{h.get('content-md5')}\n{h.get('content-type')}\n{h.get('date')}\n"
        + "".join(f"{k}:{v}\n" for k, v in canon)
        + ";".join(add)
        + "\n"
        + resource
    )


def v4_canonical_request(req: WireRequest, additional: list[str]) -> str:
    h = req.headers
    uri = uri_encode(f"/{req.bucket}/{req.key}" if req.bucket else "/", keep_slash=True)
    params = sorted((uri_encode(k, False), uri_encode(v, False)) for k, v in req.query.items())
    query = "&".join(f"{k}={v}" if v else k for k, v in params)
    signed = {"content-type", "content-md5", *additional}
    canon = sorted((k, h.joined(k)) for k in h.names() if k.startswith("x-oss-") or k in signed)
    headers = "".join(f"{k}:{v}\n" for k, v in canon)
    payload = h.get("x-oss-content-sha256") or "UNSIGNED-PAYLOAD"
    return f"{req.method}\n{uri}\n{query}\n{headers}\n{';'.join(additional)}\n{payload}"


def v4_signing_key(secret: str, date: str, region: str, product: str = "oss") -> bytes:
    k = hmac.new(("aliyun_v4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    k = hmac.new(k, region.encode(), hashlib.sha256).digest()
    k = hmac.new(k, product.encode(), hashlib.sha256).digest()
    return hmac.new(k, b"aliyun_v4_request", hashlib.sha256).digest()


def _hmac_b64(secret: str, text: str, algo: Callable) -> str:
    return base64.b64encode(
        hmac.new(secret.encode("utf-8"), text.encode("utf-8", "surrogatepass"), algo).digest()
    ).decode()


# --- the authenticator -------------------------------------------------------------------------------------------


class Authenticator:
    def __init__(
        self,
        credentials: OssCredentials,
        region: str,
        now: Callable[[], float],
        fault: Callable[[str], bool],
    ) -> None:
        self.credentials = credentials
        self.region = region
        self.now = now
        self.fault = fault

    def authenticate(self, req: WireRequest) -> Principal:
        auth = req.headers.get("authorization")
        if auth:
            if auth.startswith("OSS4-HMAC-SHA256 "):
                return self._v4(req, auth[len("OSS4-HMAC-SHA256 ") :])
            if auth.startswith("OSS2 "):
                return self._v2(req, auth[len("OSS2 ") :])
            if auth.startswith("OSS "):
                return self._v1(req, auth[len("OSS ") :])
            raise errors.invalid_argument(
                "Authorization header is invalid.", "Authorization", auth[:64], "0002-00000001"
            )
        q = req.query
        if "OSSAccessKeyId" in q or "Signature" in q:
            return self._v1_url(req)
        if "x-oss-signature" in q or "x-oss-signature-version" in q:
            raise errors.not_implemented("Signed URLs of signature version 2/4 are not supported by the lab OSS.")
        return ANONYMOUS

    # -- credentials --

    def _secret_for(self, req: WireRequest, access_key_id: str, token: str) -> tuple[str, Principal]:
        if token:
            sts = self.credentials.sts_token(token)
            if sts is None:
                raise errors.invalid_security_token()
            if not hmac.compare_digest(sts.access_key_id.encode(), access_key_id.encode()):
                raise errors.invalid_access_key_id(access_key_id, "0002-00000002")
            if self.fault("oss-token-expired") or self.now() >= sts.expires_at:
                raise errors.security_token_expired()
            return sts.secret, Principal(sts.kind, sts.uid, access_key_id, via_sts=True)
        key = self.credentials.key(access_key_id)
        if key is None:
            ec = "0002-00000002" if self.credentials.is_sts_access_key(access_key_id) else "0002-00000902"
            raise errors.invalid_access_key_id(access_key_id, ec)
        return key.secret, Principal(key.kind, key.uid, access_key_id)

    def _check_skew(self, request_time: float, raw: str) -> None:
        now = self.now()
        if abs(now - request_time) > MAX_SKEW_SECONDS:
            raise errors.time_too_skewed(raw, http_date(now))

    @staticmethod
    def _parse_http_date(raw: str) -> float:
        try:
            dt = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            raise errors.access_denied("OSS authentication requires a valid Date.", "0002-00000017") from None
        if dt is None:
            raise errors.access_denied("OSS authentication requires a valid Date.", "0002-00000017")
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()

    def _compare(self, expected: str, provided: str, ak: str, sts_text: str, canonical: str | None = None) -> None:
        if self.fault("oss-bad-signature") or not hmac.compare_digest(
            expected.encode(), provided.encode("utf-8", "replace")
        ):
            raise errors.signature_mismatch(ak, sts_text, provided, canonical)

    # -- V1 --

    def _v1(self, req: WireRequest, rest: str) -> Principal:
        ak, sep, provided = rest.rpartition(":")
        if not sep or not ak or not provided:
            raise errors.invalid_argument(
                "Authorization header is invalid.", "Authorization", rest[:64], "0002-00000001"
            )
        secret, principal = self._secret_for(req, ak, req.headers.get("x-oss-security-token"))
        date = req.headers.get("x-oss-date") or req.headers.get("date")
        self._check_skew(self._parse_http_date(date), date)
        sts_text = v1_string_to_sign(req, date)
        self._compare(_hmac_b64(secret, sts_text, hashlib.sha1), provided, ak, sts_text)
        return _with_version(principal, "v1")

    def _v1_url(self, req: WireRequest) -> Principal:
        q = req.query
        ak, expires, provided = q.get("OSSAccessKeyId", ""), q.get("Expires", ""), q.get("Signature", "")
        if not ak or not expires or not provided:
            raise errors.access_denied(
                "Missing OSSAccessKeyId, Expires or Signature in the signed URL.", "0002-00000020"
            )
        secret, principal = self._secret_for(req, ak, q.get("security-token", ""))
        try:
            expires_at = int(expires)
        except ValueError:
            raise errors.access_denied("Invalid Expires in the signed URL.", "0002-00000021") from None
        if self.now() > expires_at:
            err = errors.access_denied("Request has expired.", "0002-00000069")
            err.extra.update({"Expires": http_date(expires_at), "ServerTime": http_date(self.now())})
            raise err
        query = {k: v for k, v in q.items() if k not in V1_URL_PARAMS}
        sts_text = v1_string_to_sign(req, expires, query)
        self._compare(_hmac_b64(secret, sts_text, hashlib.sha1), provided, ak, sts_text)
        return _with_version(principal, "v1-url")

    # -- V2 --

    def _v2(self, req: WireRequest, rest: str) -> Principal:
        fields: dict[str, str] = {}
        for item in rest.split(","):
            name, sep, value = item.strip().partition(":")
            if sep:
                fields[name] = value
        ak, provided = fields.get("AccessKeyId", ""), fields.get("Signature", "")
        if not ak or not provided:
            raise errors.invalid_argument(
                "Authorization header is invalid.", "Authorization", rest[:64], "0002-00000101"
            )
        additional = [a.strip().lower() for a in fields.get("AdditionalHeaders", "").split(";") if a.strip()]
        secret, principal = self._secret_for(req, ak, req.headers.get("x-oss-security-token"))
        date = req.headers.get("date")
        self._check_skew(self._parse_http_date(date), date)
        sts_text = v2_string_to_sign(req, additional)
        self._compare(_hmac_b64(secret, sts_text, hashlib.sha256), provided, ak, sts_text)
        return _with_version(principal, "v2")

    # -- V4 --

    def _v4(self, req: WireRequest, rest: str) -> Principal:
        fields: dict[str, str] = {}
        for item in rest.split(","):
            name, sep, value = item.strip().partition("=")
            if sep:
                fields[name] = value.strip()
        credential, provided = fields.get("Credential", ""), fields.get("Signature", "")
        scope = credential.split("/")
        if len(scope) != 5 or not scope[0] or not provided:
            raise errors.invalid_argument(
                "Authorization header is invalid.", "Authorization", rest[:64], "0002-00000201"
            )
        ak, scope_date, scope_region, product, terminator = scope
        additional = [a.strip().lower() for a in fields.get("AdditionalHeaders", "").split(";") if a.strip()]
        secret, principal = self._secret_for(req, ak, req.headers.get("x-oss-security-token"))
        amz = req.headers.get("x-oss-date")
        try:
            request_time = datetime.strptime(amz, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            raise errors.access_denied(
                "OSS V4 authentication requires a valid x-oss-date header.", "0002-00000217"
            ) from None
        self._check_skew(request_time, amz)
        canonical = v4_canonical_request(req, additional)
        server_scope = f"{scope_date}/{self.region}/oss/aliyun_v4_request"
        canonical_hash = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
        sts_text = f"OSS4-HMAC-SHA256\n{amz}\n{server_scope}\n{canonical_hash}"
        if scope_date != amz[:8]:
            raise errors.signature_mismatch(
                ak, sts_text, provided, canonical, "Invalid signing date in Authorization header."
            )
        if scope_region != self.region:
            raise errors.signature_mismatch(
                ak, sts_text, provided, canonical, "Invalid signing region in Authorization header."
            )
        if product != "oss" or terminator != "aliyun_v4_request":
            raise errors.signature_mismatch(
                ak, sts_text, provided, canonical, "Invalid signing scope in Authorization header."
            )
        expected = hmac.new(
            v4_signing_key(secret, scope_date, self.region), sts_text.encode(), hashlib.sha256
        ).hexdigest()
        self._compare(expected, provided, ak, sts_text, canonical)
        return _with_version(principal, "v4")


def _with_version(p: Principal, version: str) -> Principal:
    return Principal(p.kind, p.uid, p.access_key_id, p.via_sts, version)


__all__ = ["ANONYMOUS", "Authenticator", "Headers", "OssError", "Principal", "WireRequest"]
