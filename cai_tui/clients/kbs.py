"""A small synchronous client of the Trustee KBS protocol (RCAR handshake, resources, admin API).

It speaks what ``kbs-client`` and the guest-components ``kbs_protocol`` speak:

- ``POST {base}/kbs/v0/auth`` → nonce + ``kbs-session-id`` cookie; a protocol-version mismatch is recognised from the
  server's detail ``KBS Client Protocol Version Mismatch: expect =X while the request is Y`` and reported as
  :class:`KbsProtocolMismatch` carrying the version the server wants;
- ``POST {base}/kbs/v0/attest`` with *sample* evidence and an ephemeral TEE key (EC P-256 by default, RSA on request)
  whose public JWK goes in ``runtime-data.tee-pubkey``; the client keeps the private half;
- ``GET {base}/kbs/v0/resource/<repo>/<type>/<tag>`` → a JWE decrypted with that TEE key;
- admin calls signed with an Ed25519 bearer JWT (``{"alg":"EdDSA","typ":"JWT"}``, ``iat``/``exp``), as the
  generation of ``kbs-client`` that the Alibaba chart uses.

``base_url`` may carry a path prefix (``http://alb/<release>``, the seed's ``TRUSTEE_URL``).
"""

from __future__ import annotations

import hashlib
import re
import ssl
import time
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from cai_tui.crypto.jose import (
    ALG_ECDH_ES_A256KW,
    ALG_RSA_OAEP_256,
    JoseError,
    b64url_encode,
    compact_json,
    jwe_decrypt,
    jwt_encode,
    parse_json,
    public_jwk,
)

KBS_PREFIX = "/kbs/v0"
SESSION_COOKIE = "kbs-session-id"
ERROR_TYPE_PREFIX = "https://github.com/confidential-containers/kbs/errors/"
ADMIN_TOKEN_TTL_S = 2 * 3600

Flavour = Literal["upstream", "alibaba", "gateway", "unknown"]

_MISMATCH_RE = re.compile(
    r"KBS Client Protocol Version Mismatch:\s*expect\s*[=^~<>]*\s*(?P<expected>[0-9A-Za-z.+\-]+)"
    r"\s+while the request is\s+(?P<got>\S+)"
)
# Statuses that only one flavour uses for a variant (see the Trustee reference notes).
_ALIBABA_ONLY: dict[str, set[int]] = {
    "PolicyDeny": {403},
    "PluginInternalError": {500},
    "JweError": {400},
    "SerdeError": {400},
    "ParsePolicyError": {400},
    "AttestationError": {502, 400, 500},
}
_UPSTREAM_401 = {"PolicyDeny", "PluginInternalError", "JweError", "SerdeError", "AttestationError", "ParsePolicyError"}


# --------------------------------------------------------------------------------------------- errors


class KbsError(Exception):
    """An error answer of a KBS (or of the gateway in front of it).

    ``type_variant`` is the ``<Variant>`` of ``{"type": ".../errors/<Variant>", "detail": …}``; gateway errors
    (``{"error": …}``) have no variant and ``flavour == "gateway"``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type_variant: str | None = None,
        detail: str | None = None,
        flavour: Flavour = "unknown",
        body: str = "",
        url: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type_variant = type_variant
        self.detail = detail
        self.flavour: Flavour = flavour
        self.body = body
        self.url = url


class KbsUnreachable(KbsError):
    """No HTTP answer at all: connection refused/reset, DNS failure or a timeout (``reason`` says which)."""

    def __init__(self, message: str, *, reason: str, url: str = "") -> None:
        super().__init__(message, url=url)
        self.reason = reason


class KbsProtocolMismatch(KbsError):
    """The KBS demands another protocol version; ``server_expected_version`` is parsed from its detail."""

    def __init__(
        self,
        message: str,
        *,
        client_version: str,
        server_expected_version: str | None,
        auth_result: AuthResult | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.client_version = client_version
        self.server_expected_version = server_expected_version
        self.auth_result = auth_result


def parse_version_mismatch(detail: str) -> tuple[str, str] | None:
    """``(expected, requested)`` from a ``KBS Client Protocol Version Mismatch`` detail, else None."""
    m = _MISMATCH_RE.search(detail or "")
    if m is None:
        return None
    return m.group("expected"), m.group("got")


def guess_flavour(status: int | None, variant: str | None) -> Flavour:
    """Which Trustee generation answered, from the status it chose for a variant (None when ambiguous)."""
    if variant is None or status is None:
        return "unknown"
    if status in _ALIBABA_ONLY.get(variant, set()):
        return "alibaba"
    if status == 401 and variant in _UPSTREAM_401:
        return "upstream"
    return "unknown"


def error_from_response(resp: httpx.Response) -> KbsError:
    """Turn a non-2xx answer into a :class:`KbsError` with variant/detail/flavour filled in where possible."""
    text = resp.text
    variant = detail = None
    flavour: Flavour = "unknown"
    try:
        body = parse_json(text) if text else None
    except JoseError:
        body = None
    if isinstance(body, dict):
        etype, edetail = body.get("type"), body.get("detail")
        if isinstance(etype, str) and "/errors/" in etype:
            variant = etype.rsplit("/", 1)[-1] or None
            detail = edetail if isinstance(edetail, str) else None
            flavour = guess_flavour(resp.status_code, variant)
        elif isinstance(body.get("error"), str) and set(body) == {"error"}:
            detail = body["error"]
            flavour = "gateway"
    if detail is None:
        detail = text[:2000]
    what = f"{variant}: {detail}" if variant else detail
    return KbsError(
        f"KBS answered HTTP {resp.status_code} ({what})",
        status=resp.status_code,
        type_variant=variant,
        detail=detail,
        flavour=flavour,
        body=text,
        url=str(resp.request.url),
    )


# --------------------------------------------------------------------------------------------- URIs


@dataclass(frozen=True)
class ResourceUri:
    repository: str
    type: str
    tag: str

    @property
    def path(self) -> str:
        return f"{self.repository}/{self.type}/{self.tag}"


def parse_kbs_uri(uri: str) -> ResourceUri:
    """Parse ``kbs:///<repository>/<type>/<tag>`` (host and port, if any, are ignored).

    Exactly three non-empty segments; ``.``/``..`` segments, NUL, backslashes, queries and fragments are refused.
    """
    if not isinstance(uri, str):
        raise ValueError("a KBS resource URI must be a string")
    if "\x00" in uri or "\\" in uri:
        raise ValueError(f"invalid KBS resource URI {uri!r}: NUL or backslash")
    parts = urlsplit(uri)
    if parts.scheme != "kbs":
        raise ValueError(f"invalid KBS resource URI {uri!r}: the scheme must be kbs:// (kbs:///repo/type/tag)")
    if parts.query or parts.fragment or uri.rstrip().endswith(("?", "#")):
        raise ValueError(f"invalid KBS resource URI {uri!r}: no query or fragment allowed")
    segments = parts.path.split("/")
    if len(segments) != 4 or segments[0] != "" or not all(segments[1:]):
        raise ValueError(
            f"invalid KBS resource URI {uri!r}: expected kbs:///<repository>/<type>/<tag> (three non-empty segments)"
        )
    repo, typ, tag = segments[1:]
    for seg in (repo, typ, tag):
        if seg in (".", "..") or any(ord(c) < 0x20 for c in seg):
            raise ValueError(f"invalid KBS resource URI {uri!r}: bad segment {seg!r}")
    return ResourceUri(repo, typ, tag)


# --------------------------------------------------------------------------------------------- client


@dataclass
class AuthResult:
    nonce: str | None
    cookie: str | None
    latency_s: float
    status: int
    raw: str
    extra_params: Any = None
    server_expected_version: str | None = None
    client_version: str = ""
    retried_from: str | None = None


@dataclass
class _TeeKey:
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    jwk: dict[str, str] = field(default_factory=dict)


def make_admin_token(admin_private_key_pem: bytes, *, ttl_s: int = ADMIN_TOKEN_TTL_S, now: float | None = None) -> str:
    """The Ed25519-signed bearer JWT of the KBS admin API (``iat``/``exp`` claims, as kbs-client signs it)."""
    try:
        key = serialization.load_pem_private_key(admin_private_key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the admin private key is not a PEM private key: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError("the KBS admin key must be an Ed25519 private key")
    t = int(time.time() if now is None else now)
    return jwt_encode({"iat": t, "exp": t + ttl_s}, key, "EdDSA")


def sample_evidence(runtime_data: dict[str, Any]) -> dict[str, Any]:
    """Evidence of the ``sample`` attester: its report_data binds the runtime data (SHA-384 of its JSON)."""
    digest = hashlib.sha384(compact_json(runtime_data).encode("utf-8")).digest()
    return {"svn": "1", "report_data": b64url_encode(digest)}


def _session_cookie(resp: httpx.Response) -> str | None:
    for header in resp.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == SESSION_COOKIE:
            return rest.split(";", 1)[0].strip() or None
    return None


def _version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split(".")[:3]:
        m = re.match(r"\d+", part)
        out.append(int(m.group()) if m else 0)
    return tuple(out)


class KbsClient:
    """One KBS conversation: the cookie, nonce, TEE key and token of the last handshake are kept on the client."""

    def __init__(
        self,
        base_url: str,
        *,
        verify: bool | str | ssl.SSLContext = True,
        timeout: float = 10.0,
        protocol_version: str = "0.1.0",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.protocol_version = protocol_version
        self.timeout = timeout
        # The session cookie is handled explicitly (see _session_cookie): a jar would drop a cookie whose Expires
        # looks past because of clock skew, and would send stale ones.
        no_jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        if isinstance(verify, str):  # a CA bundle (the KBS's self-signed certificate, kbs-client --cert-file)
            verify = ssl.create_default_context(cafile=verify)
        self._http = httpx.Client(
            verify=verify, timeout=timeout, follow_redirects=False, transport=transport, cookies=no_jar
        )
        self.nonce: str | None = None
        self.session_id: str | None = None
        self.tee: str | None = None
        self.token: str | None = None
        self._tee_key: _TeeKey | None = None

    # -- plumbing ---------------------------------------------------------------------------------

    def __enter__(self) -> KbsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def url(self, path: str) -> str:
        return f"{self.base_url}{KBS_PREFIX}/{path.lstrip('/')}"

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        url = self.url(path)
        try:
            return self._http.request(method, url, **kw)
        except httpx.TimeoutException as exc:
            raise KbsUnreachable(
                f"KBS at {url} did not answer within {self.timeout:g} s ({type(exc).__name__})",
                reason="timeout",
                url=url,
            ) from exc
        except httpx.ConnectError as exc:
            text = str(exc)
            reason = "refused" if "refused" in text.lower() or "errno 111" in text.lower() else "connect"
            raise KbsUnreachable(f"cannot connect to KBS at {url}: {text}", reason=reason, url=url) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise KbsUnreachable(
                f"KBS at {url} closed the connection without an answer: {exc}", reason="reset", url=url
            ) from exc
        except httpx.TransportError as exc:
            raise KbsUnreachable(f"KBS at {url} is unreachable: {exc}", reason="transport", url=url) from exc

    def _cookie_headers(self) -> dict[str, str]:
        return {"Cookie": f"{SESSION_COOKIE}={self.session_id}"} if self.session_id else {}

    # -- RCAR -------------------------------------------------------------------------------------

    def auth(
        self,
        tee: str = "tdx",
        extra_params: Any = "foo",
        *,
        raise_on_mismatch: bool = True,
        negotiate: bool = False,
    ) -> AuthResult:
        """``POST /kbs/v0/auth``. On a version mismatch: retry once with the server's version when ``negotiate``,
        else raise :class:`KbsProtocolMismatch` (or return the result with ``nonce=None`` when not
        ``raise_on_mismatch``)."""
        body = {"version": self.protocol_version, "tee": tee, "extra-params": extra_params}
        t0 = time.monotonic()
        resp = self._request("POST", "auth", json=body)
        latency = time.monotonic() - t0
        if resp.status_code == 200:
            try:
                challenge = parse_json(resp.content)
            except JoseError:
                raise KbsError(
                    f"KBS auth answered 200 but not JSON: {resp.text[:200]!r}", status=200, body=resp.text
                ) from None
            nonce = challenge.get("nonce") if isinstance(challenge, dict) else None
            if not isinstance(nonce, str) or not nonce:
                raise KbsError("KBS auth answer has no nonce", status=200, body=resp.text)
            cookie = _session_cookie(resp)
            self.nonce, self.session_id, self.tee, self.token = nonce, cookie, tee, None
            return AuthResult(
                nonce=nonce,
                cookie=cookie,
                latency_s=latency,
                status=200,
                raw=resp.text,
                extra_params=challenge.get("extra-params"),
                client_version=self.protocol_version,
            )
        err = error_from_response(resp)
        parsed = parse_version_mismatch(err.detail or "")
        if parsed is None:
            raise err
        expected = parsed[0]
        result = AuthResult(
            nonce=None,
            cookie=None,
            latency_s=latency,
            status=resp.status_code,
            raw=resp.text,
            server_expected_version=expected,
            client_version=self.protocol_version,
        )
        if negotiate and expected != self.protocol_version:
            old = self.protocol_version
            self.protocol_version = expected
            retried = self.auth(tee, extra_params, raise_on_mismatch=raise_on_mismatch, negotiate=False)
            retried.retried_from = old
            return retried
        if not raise_on_mismatch:
            return result
        raise KbsProtocolMismatch(
            f"KBS protocol version mismatch: the server expects {expected}, this client sent {self.protocol_version}",
            client_version=self.protocol_version,
            server_expected_version=expected,
            auth_result=result,
            status=err.status,
            type_variant=err.type_variant,
            detail=err.detail,
            flavour=err.flavour,
            body=err.body,
            url=err.url,
        )

    def new_tee_key(self, key_type: Literal["EC", "RSA"] = "EC") -> dict[str, str]:
        """Generate the ephemeral TEE key pair; returns its public JWK (with ``alg``)."""
        if key_type == "EC":
            priv: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = ec.generate_private_key(ec.SECP256R1())
            jwk = public_jwk(priv, alg=ALG_ECDH_ES_A256KW)
        elif key_type == "RSA":
            priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = public_jwk(priv, alg=ALG_RSA_OAEP_256)
        else:
            raise ValueError(f"unknown TEE key type {key_type!r} (EC or RSA)")
        self._tee_key = _TeeKey(priv, jwk)
        return jwk

    @property
    def tee_public_jwk(self) -> dict[str, str] | None:
        return dict(self._tee_key.jwk) if self._tee_key else None

    def attest_sample(
        self, *, tee: str = "sample", key_type: Literal["EC", "RSA"] = "EC", init_data: dict[str, str] | None = None
    ) -> str:
        """Attest with sample evidence and return the attestation token; the ephemeral TEE key stays on the client
        for :meth:`get_resource`. Uses the session of the last :meth:`auth` (whatever its tee) when it is not attested
        yet, else authenticates afresh as ``tee`` (an attested session would only hand back its old token, bound to
        the old key)."""
        if self.nonce is None or self.token is not None:
            self.auth(tee=tee, extra_params="")
        assert self.nonce is not None
        jwk = self.new_tee_key(key_type)
        runtime_data = {"nonce": self.nonce, "tee-pubkey": jwk}
        evidence = sample_evidence(runtime_data)
        if _version_tuple(self.protocol_version) >= (0, 4, 0):
            tee_evidence: Any = {"primary_evidence": evidence, "additional_evidence": ""}
        else:
            tee_evidence = evidence
        body: dict[str, Any] = {"runtime-data": runtime_data, "tee-evidence": tee_evidence}
        if init_data is not None:
            body["init-data"] = init_data
        resp = self._request("POST", "attest", json=body, headers=self._cookie_headers())
        if resp.status_code != 200:
            raise error_from_response(resp)
        try:
            token = parse_json(resp.content)["token"]
        except (JoseError, KeyError, TypeError):
            raise KbsError(f"KBS attest answer has no token: {resp.text[:200]!r}", status=200, body=resp.text) from None
        if not isinstance(token, str):
            raise KbsError("KBS attest token is not a string", status=200, body=resp.text)
        self.token = token
        return token

    # -- resources --------------------------------------------------------------------------------

    @staticmethod
    def _resource_path(uri: str) -> str:
        r = parse_kbs_uri(uri)
        return "resource/" + "/".join(quote(s, safe="") for s in (r.repository, r.type, r.tag))

    def get_resource(self, uri: str, *, use_token: bool = True) -> bytes:
        """``GET`` a resource with the session cookie (and the token as bearer) and decrypt its JWE."""
        if self._tee_key is None:
            raise KbsError("no TEE key: attest first (attest_sample) so the KBS can encrypt to this client")
        headers = self._cookie_headers()
        if use_token and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        resp = self._request("GET", self._resource_path(uri), headers=headers)
        if resp.status_code != 200:
            raise error_from_response(resp)
        try:
            return jwe_decrypt(resp.content, self._tee_key.private)
        except JoseError as exc:
            raise KbsError(f"cannot decrypt the KBS resource answer: {exc}", status=200, body=resp.text[:2000]) from exc

    def _admin(self, method: str, path: str, admin_private_key_pem: bytes, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        headers["Authorization"] = f"Bearer {make_admin_token(admin_private_key_pem)}"
        resp = self._request(method, path, headers=headers, **kw)
        if resp.status_code != 200:
            raise error_from_response(resp)
        return resp

    def set_resource(self, uri: str, data: bytes, admin_private_key_pem: bytes) -> None:
        self._admin(
            "POST",
            self._resource_path(uri),
            admin_private_key_pem,
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    def delete_resource(self, uri: str, admin_private_key_pem: bytes) -> None:
        self._admin("DELETE", self._resource_path(uri), admin_private_key_pem)

    def set_resource_policy(self, rego_text: str, admin_private_key_pem: bytes) -> None:
        policy = b64url_encode(rego_text.encode("utf-8"))
        self._admin("POST", "resource-policy", admin_private_key_pem, json={"policy": policy})

    def set_attestation_policy(
        self, rego_text: str, admin_private_key_pem: bytes, *, policy_id: str = "default"
    ) -> None:
        policy = b64url_encode(rego_text.encode("utf-8"))
        body = {"type": "rego", "policy_id": policy_id, "policy": policy}
        self._admin("POST", "attestation-policy", admin_private_key_pem, json=body)
