"""A small synchronous client of the Trustee KBS protocol (RCAR handshake, resources, admin API).

It speaks what ``kbs-client`` and the guest-components ``kbs_protocol`` speak:

- ``POST {base}/kbs/v0/auth`` → nonce + ``kbs-session-id`` cookie; a protocol-version mismatch is recognised from the
  server's detail ``KBS Client Protocol Version Mismatch: expect =X while the request is Y`` and reported as
  :class:`KbsProtocolMismatch` carrying the version the server wants;
- ``POST {base}/kbs/v0/attest`` with *sample* evidence and an ephemeral TEE key of the type the server's protocol
  version can encrypt to (:func:`tee_key_spec`, the one place that chooses; see the table below);
  the body has the shape of the protocol version in use (:func:`attest_body`): from 0.4.0 ``runtime-data`` +
  ``tee-evidence {primary_evidence, additional_evidence}``, before it a top-level ``tee-pubkey`` (and, at 0.1.0, the
  evidence as a JSON string). The evidence binds what the KBS hands its attestation service
  (:func:`bound_runtime_data`): SHA-384 of its RFC 8785 canonical JSON, ``report_data`` in standard base64;
- ``GET {base}/kbs/v0/resource/<repo>/<type>/<tag>`` → a JWE decrypted with that TEE key;
- admin calls signed with an Ed25519 bearer JWT (``{"alg":"EdDSA","typ":"JWT"}``, ``iat``/``exp`` and
  ``role: admin``): the Alibaba generation checks only the signature and times, upstream HEAD's bearer-JWT identity
  providers also require the ``role`` claim (``admin`` is the role of upstream's shipped ACLs).

Version negotiation lives here (:meth:`KbsClient.auth` with ``negotiate=True``): a mismatch answer names the
version the server demands, the client retries once with it and records both (:attr:`KbsClient.version_used`,
:attr:`KbsClient.negotiated_from`).

``base_url`` may carry a path prefix (``http://alb/<release>``, the seed's ``TRUSTEE_URL``).

Which ``tee-pubkey`` each KBS accepts (read from the release tags of confidential-containers/trustee and
openanolis/trustee: ``VERSION_REQ`` in kbs/src/attestation/backend.rs, the ``jwe`` function of kbs/src/jwe.rs or,
earlier, kbs/src/{api/src/,}http/resource.rs, and the ``TeePubKey``/``Response`` of the kbs-types each release
locks)::

    protocol  releases                                     TeePubKey (attest)        resource JWE alg            answer
    0.1.0     trustee v0.8.2–v0.9.0; openanolis v1.0.0–    struct {kty, alg, n, e}:  RSA1_5 only ("algorithm is   legacy
              v1.5.2 (the seed's chart)                    an EC key fails to        not RSA1_5 but …")
                                                           deserialise (`n`)
    0.1.1     trustee v0.10.0–v0.11.0                      enum RSA | EC             RSA1_5 only (v0.11: "Only    legacy
                                                                                     RSA key is support …")
    0.2.0     trustee v0.12.0–v0.13.0                      enum RSA | EC             RSA1_5, RSA-OAEP-256,        RFC 7516
                                                                                     ECDH-ES+A256KW on P-256
    0.4.0     trustee v0.14.0–v0.15.0; openanolis ≥ v1.6.0 enum RSA | EC             as 0.2.0                     RFC 7516
    0.4.0     trustee ≥ v0.16.0 (HEAD)                     enum RSA | EC (| AKP)     as 0.2.0, and P-521          RFC 7516

"legacy" is the kbs-types < 0.10 answer (protected header as JSON text, no AAD, the tag inside ``ciphertext``;
:func:`cai_tui.crypto.jose.jwe_decrypt` reads both). So the version alone decides: before 0.2.0 the client sends an
RSA key with ``alg: RSA1_5`` (the only one such a KBS encrypts to, whatever its flavour), from 0.2.0 an EC P-256
key with ``ECDH-ES+A256KW`` (every release since accepts it, and it avoids the deprecated PKCS#1 v1.5 padding).
"""

from __future__ import annotations

import base64
import hashlib
import json
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

from cai_tui.crypto.canonical_json import canonical_json
from cai_tui.crypto.jose import (
    ALG_ECDH_ES_A256KW,
    ALG_RSA1_5,
    ALG_RSA_OAEP_256,
    JoseError,
    b64url_encode,
    jwe_decrypt,
    jwt_encode,
    parse_json,
    public_jwk,
)

KBS_PREFIX = "/kbs/v0"
SESSION_COOKIE = "kbs-session-id"
ERROR_TYPE_PREFIX = "https://github.com/confidential-containers/kbs/errors/"
ADMIN_TOKEN_TTL_S = 2 * 3600
ADMIN_ROLE = "admin"  # the role of upstream's shipped admin ACLs (kbs/config/*/kbs-config.toml)
# The runtime-data hash algorithms of kbs-types' HashAlgorithm; the KBS asks for SHA-512 for IBM SE, else SHA-384.
HASH_ALGORITHMS = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}

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


def make_admin_token(
    admin_private_key_pem: bytes,
    *,
    ttl_s: int = ADMIN_TOKEN_TTL_S,
    now: float | None = None,
    role: str | None = ADMIN_ROLE,
) -> str:
    """The Ed25519-signed bearer JWT of the KBS admin API: ``iat``/``exp`` (what the Alibaba generation verifies)
    and ``role`` (what upstream HEAD's bearer-JWT identity providers require; ``role=None`` leaves it out)."""
    try:
        key = serialization.load_pem_private_key(admin_private_key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the admin private key is not a PEM private key: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError("the KBS admin key must be an Ed25519 private key")
    t = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"iat": t, "exp": t + ttl_s}
    if role is not None:
        claims["role"] = role
    return jwt_encode(claims, key, "EdDSA")


# --------------------------------------------------------------------------------------------- protocol shapes


def version_tuple(v: str) -> tuple[int, int, int]:
    """``"0.4.0"`` → ``(0, 4, 0)`` (missing or non-numeric parts count as 0)."""
    out = []
    for part in [*v.split("."), "0", "0", "0"][:3]:
        m = re.match(r"\d+", part)
        out.append(int(m.group()) if m else 0)
    return out[0], out[1], out[2]


def body_generation(version: str) -> Literal["0.1.0", "0.1.1", "0.4.0"]:
    """Which attest body a KBS of protocol ``version`` deserialises (kbs-types ``Attestation`` of its release):

    - ``"0.1.0"`` (openanolis chart ≤ 1.5, Trustee v0.9): ``{"tee-pubkey", "tee-evidence": "<evidence JSON text>"}``;
    - ``"0.1.1"`` (Trustee v0.10–v0.13: 0.1.1, 0.2.0): ``{"tee-pubkey", "tee-evidence": {…}}``;
    - ``"0.4.0"`` (Trustee ≥ v0.14, openanolis ≥ 1.6): ``{"runtime-data": {"nonce", "tee-pubkey"},
      "tee-evidence": {"primary_evidence", "additional_evidence": "<string>"}, "init-data"?}``.
    """
    t = version_tuple(version)
    if t >= (0, 4, 0):
        return "0.4.0"
    if t >= (0, 1, 1):
        return "0.1.1"
    return "0.1.0"


TeeKeyType = Literal["EC", "RSA"]


def tee_key_spec(version: str) -> tuple[TeeKeyType, str]:
    """(key type, JWE ``alg``) of the ``tee-pubkey`` a KBS of protocol ``version`` can encrypt resources to (see the
    module docstring's table): before 0.2.0 ``("RSA", "RSA1_5")``, from 0.2.0 ``("EC", "ECDH-ES+A256KW")``."""
    if version_tuple(version) < (0, 2, 0):
        return "RSA", ALG_RSA1_5
    return "EC", ALG_ECDH_ES_A256KW


def runtime_data_hash_algorithm(tee: str) -> str:
    """The hash the KBS asks its attestation service to bind runtime data with (SHA-512 for IBM SE, else SHA-384)."""
    return "sha512" if tee == "se" else "sha384"


def bound_runtime_data(
    version: str, nonce: str, tee_pubkey: dict[str, Any], additional_evidence: str = ""
) -> dict[str, Any]:
    """The runtime data the KBS builds for the primary evidence (what its ``report_data`` must bind).

    From 0.4.0: ``{"tee-pubkey", "nonce", "additional-evidence": <the string sent, "" when none>}``
    (kbs/src/attestation/backend.rs); before: ``{"tee-pubkey", "nonce"}`` (kbs/src/attestation/coco/builtin.rs).
    """
    data: dict[str, Any] = {"tee-pubkey": tee_pubkey, "nonce": nonce}
    if body_generation(version) == "0.4.0":
        data["additional-evidence"] = additional_evidence
    return data


def runtime_data_digest(runtime_data: Any, algorithm: str = "sha384") -> bytes:
    """The attestation service's expected report data: the hash of the RFC 8785 canonical JSON of the runtime data."""
    try:
        hasher = HASH_ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"unknown runtime-data hash algorithm {algorithm!r} (sha256, sha384 or sha512)") from None
    return hasher(canonical_json(runtime_data)).digest()


def sample_evidence(runtime_data: Any, algorithm: str = "sha384") -> dict[str, Any]:
    """Evidence of the ``sample`` attester: ``report_data`` is the standard base64 of the runtime-data digest."""
    digest = runtime_data_digest(runtime_data, algorithm)
    return {"svn": "1", "report_data": base64.b64encode(digest).decode("ascii")}


def attest_body(
    version: str,
    *,
    nonce: str,
    tee_pubkey: dict[str, Any],
    evidence: Any,
    additional_evidence: str = "",
    init_data: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The ``POST /kbs/v0/attest`` body a KBS of protocol ``version`` accepts (see :func:`body_generation`)."""
    generation = body_generation(version)
    if generation == "0.4.0":
        body: dict[str, Any] = {
            "runtime-data": {"nonce": nonce, "tee-pubkey": tee_pubkey},
            "tee-evidence": {"primary_evidence": evidence, "additional_evidence": additional_evidence},
        }
        if init_data is not None:
            body["init-data"] = init_data
        return body
    if init_data is not None or additional_evidence:
        raise ValueError(f"init-data and additional evidence need KBS protocol 0.4.0 or later (this KBS: {version})")
    if generation == "0.1.1":
        return {"tee-pubkey": tee_pubkey, "tee-evidence": evidence}
    text = evidence if isinstance(evidence, str) else json.dumps(evidence, separators=(",", ":"))
    return {"tee-pubkey": tee_pubkey, "tee-evidence": text}


def _session_cookie(resp: httpx.Response) -> str | None:
    for header in resp.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == SESSION_COOKIE:
            return rest.split(";", 1)[0].strip() or None
    return None


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
        # Set when a handshake switched to the version the server demanded (see auth(negotiate=True)).
        self.negotiated_from: str | None = None
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

    @property
    def version_used(self) -> str:
        """The protocol version of the last handshake (the negotiated one after a mismatch)."""
        return self.protocol_version

    def version_note(self) -> str:
        """``protocol 0.4.0`` or ``protocol 0.4.0 (negotiated: the recipe's 0.1.0 was refused)``, for messages."""
        if self.negotiated_from and self.negotiated_from != self.protocol_version:
            return f"protocol {self.protocol_version} (negotiated: the server refused {self.negotiated_from})"
        return f"protocol {self.protocol_version}"

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
            self.negotiated_from = self.negotiated_from or old
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

    def new_tee_key(self, key_type: TeeKeyType | None = None, *, alg: str | None = None) -> dict[str, str]:
        """Generate the ephemeral TEE key pair; returns its public JWK (with ``alg``).

        Without ``key_type`` the key is what this client's protocol version needs (:func:`tee_key_spec`); an explicit
        ``key_type`` gets that type's default ``alg`` (EC: ECDH-ES+A256KW, RSA: RSA-OAEP-256) unless ``alg`` says."""
        if key_type is None:
            key_type, default_alg = tee_key_spec(self.protocol_version)
            alg = alg or default_alg
        if key_type == "EC":
            priv: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = ec.generate_private_key(ec.SECP256R1())
            jwk = public_jwk(priv, alg=alg or ALG_ECDH_ES_A256KW)
        elif key_type == "RSA":
            priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = public_jwk(priv, alg=alg or ALG_RSA_OAEP_256)
        else:
            raise ValueError(f"unknown TEE key type {key_type!r} (EC or RSA)")
        self._tee_key = _TeeKey(priv, jwk)
        return jwk

    @property
    def tee_public_jwk(self) -> dict[str, str] | None:
        return dict(self._tee_key.jwk) if self._tee_key else None

    def attest_sample(
        self,
        *,
        tee: str = "sample",
        key_type: TeeKeyType | None = None,
        key_alg: str | None = None,
        init_data: dict[str, str] | None = None,
        negotiate: bool = True,
    ) -> str:
        """Attest with sample evidence and return the attestation token; the ephemeral TEE key stays on the client
        for :meth:`get_resource`. Uses the session of the last :meth:`auth` (whatever its tee) when it is not attested
        yet, else authenticates afresh as ``tee`` (an attested session would only hand back its old token, bound to
        the old key), negotiating the protocol version unless ``negotiate`` is false. The key is the one the
        (negotiated) version needs unless ``key_type``/``key_alg`` say otherwise (see :meth:`new_tee_key`)."""
        if self.nonce is None or self.token is not None:
            self.auth(tee=tee, extra_params="", negotiate=negotiate)
        assert self.nonce is not None
        jwk = self.new_tee_key(key_type, alg=key_alg)
        runtime = bound_runtime_data(self.protocol_version, self.nonce, jwk)
        evidence = sample_evidence(runtime, runtime_data_hash_algorithm(self.tee or tee))
        body = attest_body(
            self.protocol_version, nonce=self.nonce, tee_pubkey=jwk, evidence=evidence, init_data=init_data
        )
        return self.attest(body)

    def attest(self, body: dict[str, Any]) -> str:
        """``POST /kbs/v0/attest`` with a prepared body (see :func:`attest_body`); keeps and returns the token."""
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
