"""Who sent a request and whether they may: style detection, timestamps, nonces, keys, tokens, signatures.

The order of the checks follows the gateway: the API (action, version) is resolved first, then the
request time, then the AccessKey and security token, then the signature, then nonce replay, then the
permission of the key for the action.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cai_tui.lab.kms import errors, signatures
from cai_tui.lab.kms.credentials import KmsCredentials, Principal

API_VERSION = "2016-01-20"
MAX_SKEW_S = 15 * 60
_TIMESTAMP_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z")


@dataclass
class ApiRequest:
    """One HTTP request, parsed but not yet trusted."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, list[str]]  # lower-cased name -> values in arrival order
    body: bytes
    form: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        return self.headers.get(name.lower(), [])

    def params(self) -> dict[str, str]:
        """Query then form-body parameters, the body winning (the SDK's merge order)."""
        out = dict(self.query)
        out.update(self.form)
        return out


@dataclass(frozen=True)
class Authenticated:
    principal: Principal
    action: str
    style: str  # "ACS3" | "RPC"


class NonceCache:
    """Nonces seen within the timestamp window; bounded so a flood cannot exhaust memory."""

    def __init__(self, window_s: float = 2 * MAX_SKEW_S, limit: int = 100_000) -> None:
        self._window = window_s
        self._limit = limit
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def use(self, key: str, now: float) -> bool:
        """Record ``key``; False when it was already used inside the window."""
        with self._lock:
            while self._seen:
                oldest_key, seen_at = next(iter(self._seen.items()))
                if seen_at + self._window > now and len(self._seen) < self._limit:
                    break
                del self._seen[oldest_key]
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


def parse_timestamp(value: str) -> float:
    m = _TIMESTAMP_RE.fullmatch(value)
    if not m:
        raise errors.timestamp_format(value[:64])
    year, month, day, hour, minute, second = (int(g) for g in m.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp()
    except (OverflowError, ValueError):
        raise errors.timestamp_format(value[:64]) from None


def _check_time(value: str | None, now: float, missing: errors.KmsError) -> None:
    if value is None or value == "":
        raise missing
    t = parse_timestamp(value)
    if abs(now - t) > MAX_SKEW_S:
        raise errors.timestamp_expired()


def _check_nonce_shape(nonce: str | None, missing: errors.KmsError) -> str:
    if nonce is None or nonce == "":
        raise missing
    if len(nonce) > 256:
        raise errors.invalid_parameter("SignatureNonce", "It can be up to 256 characters long.")
    return nonce


class Authenticator:
    def __init__(
        self,
        credentials: KmsCredentials,
        clock: Callable[[], float],
        bad_key_fault: Callable[[], bool],
        implemented: list[str],
    ) -> None:
        self.credentials = credentials
        self.clock = clock
        self.bad_key_fault = bad_key_fault
        self.implemented = implemented
        self.nonces = NonceCache()

    def _resolve_api(self, action: str | None, version: str | None) -> str:
        if not action:
            raise errors.missing_parameter("Action")
        if not version:
            raise errors.missing_parameter("Version")
        if version != API_VERSION:
            raise errors.invalid_version(version[:64])
        if action not in self.implemented:
            raise errors.invalid_action(action[:64], self.implemented)
        return action

    def _principal(self, access_key_id: str, token: str | None, now: float) -> Principal:
        if self.bad_key_fault():
            raise errors.access_key_not_found()
        if token:
            principal = self.credentials.token(token)
            if principal is None:
                raise errors.token_malformed()
            if principal.access_key_id != access_key_id:
                raise errors.token_mismatch()
            if principal.expires_at is not None and principal.expires_at <= now:
                raise errors.token_expired()
            return principal
        principal = self.credentials.key(access_key_id)
        if principal is None:
            raise errors.access_key_not_found()
        return principal

    def authenticate(self, req: ApiRequest) -> Authenticated:
        authorization = req.header("authorization")
        query = dict(req.query)
        if authorization is not None:
            result = self._acs3(req, authorization)
        elif "Signature" in query or "AccessKeyId" in query or "SignatureMethod" in query:
            result = self._rpc(req, query)
        else:
            raise errors.missing_parameter("AccessKeyId")
        if not result.principal.may(result.action):
            raise errors.forbidden_ram(result.action)
        return result

    def _acs3(self, req: ApiRequest, authorization: str) -> Authenticated:
        try:
            auth = signatures.parse_acs3_authorization(authorization)
        except signatures.SignatureFormatError as e:
            raise errors.incomplete_signature(str(e)) from None
        action = self._resolve_api(req.header("x-acs-action"), req.header("x-acs-version"))
        now = self.clock()
        _check_time(req.header("x-acs-date"), now, errors.incomplete_signature("The x-acs-date header is missing."))
        nonce = _check_nonce_shape(
            req.header("x-acs-signature-nonce"),
            errors.incomplete_signature("The x-acs-signature-nonce header is missing."),
        )
        unsigned = [
            name
            for name in req.headers
            if (name == "host" or name.startswith("x-acs-")) and name not in auth.signed_headers
        ]
        if unsigned:
            raise errors.incomplete_signature(f"These headers must be signed: {', '.join(sorted(unsigned))}.")
        token = req.header("x-acs-security-token")
        principal = self._principal(auth.access_key_id, token, now)
        # The payload line is the hash of the bytes received: a body changed in transit, or an
        # x-acs-content-sha256 that does not describe it (the header is always signed), fails here.
        string_to_sign = signatures.acs3_string_to_sign(
            auth.algorithm,
            req.method,
            req.path,
            req.query,
            auth.signed_headers,
            req.header_values,
            signatures.hash_hex(auth.algorithm, req.body),
        )
        expected = signatures.acs3_signature(auth.algorithm, principal.secret, string_to_sign)
        if not signatures.same_signature(expected, auth.signature):
            raise errors.signature_mismatch(string_to_sign)
        if not self.nonces.use(f"{principal.access_key_id}\0{nonce}", now):
            raise errors.nonce_used()
        return Authenticated(principal, action, "ACS3")

    def _rpc(self, req: ApiRequest, query: dict[str, str]) -> Authenticated:
        action = self._resolve_api(query.get("Action"), query.get("Version"))
        access_key_id = query.get("AccessKeyId")
        if not access_key_id:
            raise errors.missing_parameter("AccessKeyId")
        signature = query.get("Signature")
        if not signature:
            raise errors.missing_parameter("Signature")
        method = query.get("SignatureMethod")
        if method != "HMAC-SHA1":
            raise errors.invalid_parameter("SignatureMethod", "The RPC signature supports HMAC-SHA1 only.")
        if query.get("SignatureVersion") != "1.0":
            raise errors.invalid_parameter("SignatureVersion", "Valid value: 1.0.")
        fmt = query.get("Format", "json")
        if fmt.lower() != "json":
            raise errors.invalid_parameter("Format", "The cai-tui lab KMS answers JSON only.")
        now = self.clock()
        _check_time(query.get("Timestamp"), now, errors.missing_parameter("Timestamp"))
        nonce = _check_nonce_shape(query.get("SignatureNonce"), errors.missing_parameter("SignatureNonce"))
        principal = self._principal(access_key_id, query.get("SecurityToken"), now)
        string_to_sign = signatures.rpc_string_to_sign(req.method, req.params())
        expected = signatures.rpc_signature(principal.secret, string_to_sign)
        if not signatures.same_signature(expected, signature):
            raise errors.signature_mismatch(string_to_sign)
        if not self.nonces.use(f"{principal.access_key_id}\0{nonce}", now):
            raise errors.nonce_used()
        return Authenticated(principal, action, "RPC")
