"""Request signatures of the Alibaba Cloud POP API, computed the server's way.

Two styles reach a KMS 2016-01-20 endpoint from alibabacloud-kms20160120 3.x:

* ACS3 (the default, ``OpenApiClient.do_request``): an ``Authorization`` header
  ``ACS3-HMAC-SHA256 Credential=<AK>,SignedHeaders=<a;b;c>,Signature=<hex>``. The canonical request is
  ``METHOD\\n<path>\\n<sorted query, values RFC3986-encoded>\\n<name:value\\n per signed header>\\n<signed
  header list>\\n<hex hash of the body>``; the string to sign is ``<algorithm>\\n<hex hash of the canonical
  request>``; the signature is hex HMAC with the AccessKey secret. ``ACS3-HMAC-SM3`` is the same with SM3.
* The legacy RPC signature (``Config(signature_algorithm='v2')`` → ``do_rpcrequest``): query parameters
  ``SignatureMethod=HMAC-SHA1``, ``SignatureVersion=1.0``, ``AccessKeyId``, ``Signature``; the string to sign
  is ``METHOD&%2F&<percent-encoded sorted query and form-body parameters>``; base64 HMAC-SHA1 keyed with
  ``secret + "&"``.

Nothing here trusts the client: the body hash is recomputed from the bytes received, and comparisons are
constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus


class SignatureFormatError(ValueError):
    """The Authorization header or the signature parameters cannot be understood."""


def _sm3_constructor() -> Callable[..., Any] | None:
    if "sm3" in hashlib.algorithms_available:
        try:
            hashlib.new("sm3")
        except ValueError:
            pass
        else:
            return lambda data=b"": hashlib.new("sm3", data)
    try:  # the SDK ships a pure-Python SM3; use it when OpenSSL lacks one
        from alibabacloud_tea_openapi.sm3 import Sm3
    except ImportError:  # pragma: no cover - depends on the installed SDK
        return None
    return Sm3


_HASHES: dict[str, Callable[..., Any]] = {"ACS3-HMAC-SHA256": hashlib.sha256}
_sm3 = _sm3_constructor()
if _sm3 is not None:
    _HASHES["ACS3-HMAC-SM3"] = _sm3

ACS3_ALGORITHMS = frozenset(_HASHES)


@dataclass(frozen=True)
class Acs3Authorization:
    algorithm: str
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_acs3_authorization(value: str) -> Acs3Authorization:
    """Parse ``<alg> Credential=..,SignedHeaders=..,Signature=..``; SignatureFormatError when malformed."""
    algorithm, sep, rest = value.strip().partition(" ")
    if not sep:
        raise SignatureFormatError("the Authorization header has no credentials after the algorithm")
    if algorithm not in _HASHES:
        known = ", ".join(sorted(_HASHES))
        raise SignatureFormatError(f"unsupported signature algorithm {algorithm[:40]!r} (supported: {known})")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, eq, val = part.strip().partition("=")
        if not eq or not key:
            raise SignatureFormatError(f"malformed Authorization field {part.strip()[:40]!r}")
        if key in fields:
            raise SignatureFormatError(f"Authorization field {key[:40]!r} given twice")
        fields[key] = val.strip()
    for required in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(required):
            raise SignatureFormatError(f"the Authorization header lacks {required}")
    names = tuple(h.strip().lower() for h in fields["SignedHeaders"].split(";"))
    if any(not n for n in names):
        raise SignatureFormatError("SignedHeaders has an empty header name")
    return Acs3Authorization(algorithm, fields["Credential"], names, fields["Signature"])


def hash_hex(algorithm: str, data: bytes) -> str:
    h = _HASHES[algorithm]()
    h.update(data)
    return str(h.hexdigest())


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Sorted ``key=value`` pairs joined by ``&``; values percent-encoded (RFC 3986, ``~`` kept), keys as-is."""
    items = sorted(pairs, key=lambda kv: (kv[0], kv[1]))
    return "&".join(f"{k}={quote(v, safe='~', encoding='utf-8')}" for k, v in items)


def canonical_headers(signed: Iterable[str], values_of: Callable[[str], list[str]]) -> tuple[str, str]:
    """``(name:v1,v2\\n per header, 'a;b;c')`` over the lower-cased, sorted signed header names."""
    names = sorted({n.lower() for n in signed})
    text = "".join(f"{n}:{','.join(sorted(v.strip() for v in values_of(n)))}\n" for n in names)
    return text, ";".join(names)


def acs3_string_to_sign(
    algorithm: str,
    method: str,
    path: str,
    query_pairs: Iterable[tuple[str, str]],
    signed_headers: Iterable[str],
    values_of: Callable[[str], list[str]],
    payload_hash: str,
) -> str:
    headers_text, header_list = canonical_headers(signed_headers, values_of)
    canonical_request = (
        f"{method}\n{path or '/'}\n{canonical_query(query_pairs)}\n{headers_text}\n{header_list}\n{payload_hash}"
    )
    return f"{algorithm}\n{hash_hex(algorithm, canonical_request.encode('utf-8'))}"


def acs3_signature(algorithm: str, secret: str, string_to_sign: str) -> str:
    return hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), _HASHES[algorithm]).hexdigest()


def rpc_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&<encoded canonical query>`` over every parameter except ``Signature``."""
    canon = "&".join(
        f"{quote(k, safe='~', encoding='utf-8')}={quote(params[k], safe='~', encoding='utf-8')}"
        for k in sorted(params)
        if k != "Signature"
    )
    return f"{method}&%2F&{quote_plus(canon, safe='~', encoding='utf-8')}"


def rpc_signature(secret: str, string_to_sign: str) -> str:
    digest = hmac.new((secret + "&").encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def same_signature(expected: str, given: str) -> bool:
    """Constant-time comparison that tolerates any characters in the client's value."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "surrogatepass"))
