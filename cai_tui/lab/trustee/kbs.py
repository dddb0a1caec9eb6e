"""The lab KBS: ``/kbs/v0/{auth,attest,resource,resource-policy,attestation-policy}``.

Order of checks per request follows ``kbs/src/api_server.rs``: built-in endpoints (auth, attest, policies) first; then
the ``resource`` plugin, where POST/DELETE are admin operations (Ed25519 bearer JWT) and GET needs an attestation
token (the attested session of the cookie, else ``Authorization: Bearer``), then the resource policy, then the
backend, then the JWE to the ``tee-pubkey`` of the token — with the key types and answer shape of the configured
protocol version (:mod:`cai_tui.lab.trustee.jwe`: before 0.2.0 only ``RSA1_5`` keys, and at 0.1.0 an EC key already
fails to deserialise at attest, as upstream's struct ``TeePubKey`` does).
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from cai_tui.crypto.jose import JoseError, b64url_decode, b64url_encode, jwt_decode, parse_json
from cai_tui.lab.faults import FaultSwitches
from cai_tui.lab.trustee import errors as E
from cai_tui.lab.trustee.attestation_service import KNOWN_TEES, AttestationService, EvidenceRejected
from cai_tui.lab.trustee.errors import KbsFailure, Reply
from cai_tui.lab.trustee.jwe import JweRefused, resource_jwe
from cai_tui.lab.trustee.policy import evaluate_resource_policy, recognise_resource_policy
from cai_tui.lab.trustee.settings import MAX_CLAIM_JSON, MAX_POLICY_BYTES, ServerLog, TrusteeSettings, json_size
from cai_tui.lab.trustee.store import KmsBackend, LocalStore, ResourceBackendError, ResourceNotFound, valid_segment

SESSION_COOKIE = "kbs-session-id"
MAX_SESSIONS = 4096
ADMIN_TIME_TOLERANCE_S = 15 * 60  # jwt-simple's default tolerance
ADMIN_ROLE = "admin"  # upstream's shipped ACL: acls = [{ role = "admin", allowed_endpoints = "^/kbs/.+$" }]
_SEMVER_RE = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")
_COOKIE_RE = re.compile(r"(?:^|;)\s*kbs-session-id=([^;\s]*)")


@dataclass
class Session:
    id: str
    tee: str
    nonce: str
    expires: float
    token: str | None = None


def _other_version(version: str) -> str:
    return "0.1.0" if version == "0.4.0" else "0.4.0"


class KbsService:
    def __init__(
        self,
        settings: TrusteeSettings,
        log: ServerLog,
        faults: FaultSwitches,
        attestation: AttestationService,
        store: LocalStore,
        kms: KmsBackend,
        admin_public_key_pem: bytes | None,
    ) -> None:
        self.settings = settings
        self.log = log
        self.faults = faults
        self.attestation = attestation
        self.store = store
        self.kms = kms
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.resource_policy_text: str | None = None
        self.admin_key: ed25519.Ed25519PublicKey | None = None
        if admin_public_key_pem:
            try:
                key = serialization.load_pem_public_key(admin_public_key_pem)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"the KBS admin public key must be an Ed25519 public key (PEM): {exc}") from None
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise ValueError("the KBS admin public key must be an Ed25519 public key (PEM)")
            self.admin_key = key
        else:
            log.warn("kbs", "insecure admin APIs are enabled")

    @property
    def resource_policy_mode(self) -> str:
        """The policy in force: the setting, replaced by the mode of a posted rego (see policy.py)."""
        return self.settings.resource_policy

    # -- entry ------------------------------------------------------------------------------------

    def handle(self, method: str, rest: list[str], query: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """``rest`` are the raw (still percent-encoded) segments after ``/kbs/v0/``."""
        try:
            return self._dispatch(method, rest, headers, body)
        except KbsFailure as failure:
            self.log.error("kbs", failure.log or f"{failure.variant}: {failure.detail}")
            return failure.reply(self.settings.flavour)

    def _dispatch(self, method: str, rest: list[str], headers: Mapping[str, str], body: bytes) -> Reply:
        plugin = unquote(rest[0]) if rest else ""
        if plugin == "auth" and method == "POST":
            return self.auth(body)
        if plugin == "attest" and method == "POST":
            return self.attest(body, headers)
        if plugin == "attestation-policy" and method == "POST":
            self.check_admin(headers, "attestation-policy", rest)
            return self.set_attestation_policy(body)
        if plugin == "resource-policy" and method == "POST":
            self.check_admin(headers, "resource-policy", rest)
            return self.set_resource_policy(body)
        if plugin == "resource-policy" and method == "GET":
            self.check_admin(headers, "resource-policy", rest)
            text = self.resource_policy_text or ""
            return Reply.json(
                200,
                {
                    "policy": b64url_encode(text.encode("utf-8")),
                    "lab-mode": self.resource_policy_mode,
                },
            )
        if plugin == "resource":
            return self.resource(method, [unquote(s, errors="replace") for s in rest[1:]], headers, body)
        raise E.plugin_not_found(plugin)

    # -- RCAR -------------------------------------------------------------------------------------

    def demanded_version(self, requested: str) -> str:
        if self.faults.is_on("kbs-version-mismatch"):
            return _other_version(requested)
        return self.settings.protocol_version

    def auth(self, body: bytes) -> Reply:
        try:
            req = parse_json(body)
            if not isinstance(req, dict):
                raise ValueError("expected a JSON object")
            version, tee = req["version"], req["tee"]
            extra = req["extra-params"]
            if not isinstance(version, str):
                raise ValueError("`version` is not a string")
            if not isinstance(tee, str) or tee not in KNOWN_TEES:
                raise ValueError(f"unknown variant `{tee}`")
        except (UnicodeDecodeError, ValueError, KeyError) as exc:
            raise E.KbsFailure(
                "AttestationError",
                "Attestation error: RCAR handshake Auth failed: deserialize Request",
                log=f"RCAR auth: deserialize Request: {exc}",
            ) from None
        if not _SEMVER_RE.fullmatch(version):
            raise E.KbsFailure(
                "AttestationError",
                "Attestation error: RCAR handshake Auth failed: failed to parse KBS version",
                log=f"RCAR auth: failed to parse KBS version {version!r}",
            )
        demanded = self.demanded_version(version)
        if version != demanded:
            raise E.rcar_auth_failed(
                f"KBS Client Protocol Version Mismatch: expect ={demanded} while the request is {version}"
            )
        del extra  # the generic challenge ignores extra-params (only IBM SE negotiates with them)
        nonce = base64.b64encode(os.urandom(32)).decode("ascii")
        session = Session(uuid.uuid4().hex, tee, nonce, time.time() + self.settings.session_ttl_s)
        with self._lock:
            self._purge_locked()
            self._sessions[session.id] = session
        self.log.info("kbs", f"Auth API called: tee={tee} version={version} session={session.id}")
        return Reply.json(200, {"nonce": nonce, "extra-params": ""}, {"Set-Cookie": self._cookie(session)})

    @staticmethod
    def _cookie(session: Session) -> str:
        return f"{SESSION_COOKIE}={session.id}; Expires={formatdate(session.expires, usegmt=True)}"

    def _purge_locked(self) -> None:
        now = time.time()
        for sid in [s for s, v in self._sessions.items() if v.expires < now]:
            del self._sessions[sid]
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))

    def _session(self, headers: Mapping[str, str]) -> tuple[Session | None, str]:
        raw = headers.get("Cookie") or ""
        m = _COOKIE_RE.search(raw)
        if m is None:
            return None, "cookie not found"
        with self._lock:
            session = self._sessions.get(m.group(1))
            if session is None:
                return None, "session not found"
            if session.expires < time.time():
                del self._sessions[session.id]
                return None, "session expired."
            return session, ""

    def attest(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """``POST /kbs/v0/attest`` as the KBS of the configured protocol version deserialises and binds it.

        Order as upstream: the cookie, the body (``deserialize Attestation``: the shape of this version's kbs-types,
        see :func:`_parse_attestation`), the session, the nonce (0.4.0), then the evidence is verified against the
        runtime data the KBS builds itself (:func:`_bound_runtime_data`). Every failure answers the generic
        ``RCAR handshake Attest failed``; the cause is only in the server log, as upstream's ``error!("{self:?}")``.
        """
        session, why = self._session(headers)
        if session is None and why == "cookie not found":
            raise E.rcar_attest_failed(why)
        try:
            att = _parse_attestation(body, self.settings.protocol_version)
        except _SerdeError as exc:
            raise E.rcar_attest_failed(f"deserialize Attestation: {exc}") from None
        if session is None:
            raise E.rcar_attest_failed(f"Failed to get session: {why}")
        if session.token is not None:
            self.log.info("kbs", f"Session {session.id} is already attested. Skip attestation and return the old token")
            return Reply.json(200, {"token": session.token}, {"Set-Cookie": self._cookie(session)})
        if att.nonce is not None and att.nonce != session.nonce:
            raise E.rcar_attest_failed(
                "the nonce in the handshake session is different from the client side in KBS protocol's "
                "Attestation message"
            )
        runtime_data = _bound_runtime_data(att, session.nonce)
        hash_algorithm = "sha512" if session.tee == "se" else "sha384"
        try:
            token, _ = self.attestation.evaluate(
                session.tee,
                att.evidence,
                runtime_data=runtime_data,
                hash_algorithm=hash_algorithm,
                init_data=att.init_data,
            )
        except EvidenceRejected as exc:
            raise E.rcar_attest_failed("verify TEE evidence failed: " + ": ".join(exc.causes)) from None
        with self._lock:
            session.token = token
        self.log.info("kbs", f"Attestation succeeded: session={session.id} tee={session.tee}")
        return Reply.json(200, {"token": token}, {"Set-Cookie": self._cookie(session)})

    # -- admin ------------------------------------------------------------------------------------

    def check_admin(self, headers: Mapping[str, str], endpoint: str | None, rest: list[str]) -> None:
        """Ed25519 bearer JWT (signature, ``exp``/``iat`` with jwt-simple's tolerance). The upstream flavour also
        requires a ``role`` claim and authorizes it as upstream's shipped ACL does (``admin`` on ``^/kbs/.+$``).

        ``endpoint`` names the built-in endpoint (its errors are ``AdminAuthAccess``); ``None`` is a plugin call,
        whose admin errors upstream converts into ``AdminAuthInitialization`` (kbs/src/api_server.rs)."""
        if self.admin_key is None:
            return
        auth = headers.get("Authorization") or ""
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise E.admin_auth("Failed to parse HTTP Auth Bearer header")
        try:
            claims = jwt_decode(token.strip(), self.admin_key, algorithms=["EdDSA"], leeway=ADMIN_TIME_TOLERANCE_S)
        except JoseError as exc:
            raise KbsFailure(
                "AdminAuth",
                "Admin auth error: Admin Token verification failed",
                log=f"Admin auth error: Admin Token verification failed: {exc}",
            ) from None
        if self.settings.flavour != "upstream":
            return  # the Alibaba generation verifies signature and times only
        role = claims.get("role")
        if not isinstance(role, str):
            reason = (
                "Failed to parse claims from token: AdminAccessDenied { reason: "
                '"Missing required `role` claim in JWT" }'
            )
        elif role != ADMIN_ROLE:
            reason = f"Role {role} not allowed for path /kbs/v0/{'/'.join(rest)}"
        else:
            return
        raise E.admin_access_denied(endpoint, reason)

    def set_resource_policy(self, body: bytes) -> Reply:
        try:
            req = parse_json(body)
        except (UnicodeDecodeError, ValueError):
            raise E.parse_policy("Illegal SetPolicy Request Json") from None
        if not isinstance(req, dict) or "policy" not in req:
            raise E.parse_policy("No `policy` field inside SetPolicy Request Json")
        if not isinstance(req["policy"], str):
            raise E.parse_policy("`policy` field is not a string in SetPolicy Request Json")
        try:
            text = b64url_decode(req["policy"]).decode("utf-8")
        except (JoseError, UnicodeDecodeError) as exc:
            raise E.parse_policy(f"Failed to decode policy: {exc}") from None
        if len(text) > MAX_POLICY_BYTES:
            raise E.parse_policy("policy larger than the lab accepts (1 MiB)")
        mode = recognise_resource_policy(text)
        with self._lock:
            self.settings.resource_policy = mode
            self.resource_policy_text = text
        note = "" if mode != "custom" else " (not recognised: the lab evaluates it as deny)"
        self.log.info("kbs", f"resource policy set: lab mode {mode}{note}")
        return Reply(200)

    def set_attestation_policy(self, body: bytes) -> Reply:
        try:
            req = parse_json(body)
            if not isinstance(req, dict):
                raise ValueError("expected an object")
            self.attestation.set_policy(req["policy_id"], req["policy"])
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, JoseError) as exc:
            raise E.set_attestation_policy_failed(f"parse set policy request: {exc}") from None
        return Reply(200)

    # -- resources --------------------------------------------------------------------------------

    def resource(self, method: str, path: list[str], headers: Mapping[str, str], body: bytes) -> Reply:
        shown = "/".join(path)
        if method in ("POST", "DELETE"):
            self.check_admin(headers, None, ["resource", *path])
            repo, typ, tag = _resource_desc(path)
            if self.settings.backend == "kms":
                raise E.plugin_internal(f"aliyun KMS backend does not support {method} of resources ({shown})")
            try:
                if method == "POST":
                    self.store.write(repo, typ, tag, body)
                    self.log.info("kbs", f"resource registered: {repo}/{typ}/{tag} ({len(body)} bytes)")
                else:
                    self.store.delete(repo, typ, tag)
                    self.log.info("kbs", f"resource deleted: {repo}/{typ}/{tag}")
            except ResourceNotFound:
                raise E.plugin_internal(f"Resource not found: {repo}/{typ}/{tag}") from None
            except (ResourceBackendError, OSError) as exc:
                raise E.plugin_internal(f"write local fs: {exc}") from None
            return Reply(200)
        claims = self._token_claims(headers)
        allow, reason = evaluate_resource_policy(
            self.resource_policy_mode, claims, allow_sample_evidence=self.settings.allow_sample_evidence
        )
        if self.faults.is_on("kbs-policy-deny"):
            allow, reason = False, "kbs-policy-deny fault"
        self.log.info("kbs", f'Evaluated: {{"allow":{"true" if allow else "false"}}} (resource {shown}; {reason})')
        if not allow:
            raise E.policy_deny()
        if method != "GET":
            raise E.plugin_internal(f"Illegal HTTP method {method} for the resource plugin")
        repo, typ, tag = _resource_desc(path)
        data = self._read(repo, typ, tag)
        tee_pubkey = claims.get("tee-pubkey")
        if not isinstance(tee_pubkey, dict):
            raise KbsFailure(
                "AttestationError",
                "Attestation error: Failed to extract Tee public key from claims",
                log="Failed to extract Tee public key from claims: no tee-pubkey",
                alibaba_status=400,
            )
        try:
            jwe = resource_jwe(tee_pubkey, data, version=self.settings.protocol_version, flavour=self.settings.flavour)
        except JweRefused as exc:
            raise E.jwe_error(f"JWE failed: {exc}") from None
        self.log.info("kbs", f"resource released: {repo}/{typ}/{tag}")
        return Reply.json(200, jwe)

    def _token_claims(self, headers: Mapping[str, str]) -> dict[str, Any]:
        token: str | None = None
        session, _ = self._session(headers)
        if session is not None and session.token is not None:
            self.log.info("kbs", f"Cookie {session.id} request to get resource")
            token = session.token
        else:
            scheme, _, value = (headers.get("Authorization") or "").strip().partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                token = value.strip()
        if token is None:
            raise E.token_not_found()
        try:
            return self.attestation.verify_token(token)
        except JoseError as exc:
            raise E.token_verifier(f"Token Verifier error: {exc}") from None

    def _read(self, repo: str, typ: str, tag: str) -> bytes:
        missing = self.faults.is_on("kbs-resource-missing")
        if self.settings.backend == "kms":
            self.log.info("kbs", f"Use aliyun KMS backend. Ignore {repo}/{typ}")
            try:
                if missing:
                    raise ResourceNotFound(tag)
                return self.kms.read(tag)
            except (ResourceNotFound, ResourceBackendError) as exc:
                cause = f"secret {tag} not found" if isinstance(exc, ResourceNotFound) else str(exc)
                raise E.plugin_internal(f"failed to get resource from aliyun KMS: {cause}") from None
        try:
            if missing:
                raise ResourceNotFound(f"{repo}/{typ}/{tag}")
            return self.store.read(repo, typ, tag)
        except ResourceNotFound:
            raise E.plugin_internal(f"resource not found: {repo}/{typ}/{tag}") from None


def _resource_desc(path: list[str]) -> tuple[str, str, str]:
    if len(path) != 3 or not all(valid_segment(s) for s in path):
        raise E.plugin_internal(f"illegal ResourceDesc format: {'/'.join(path)!r}")
    return path[0], path[1], path[2]


def _check_tee_pubkey(jwk: Any, where: str, generation: str) -> dict[str, Any]:
    """The shape kbs_types::TeePubKey deserialises (the key itself is only used, and checked, at JWE time); returns
    what the KBS carries on. Before 0.1.1 (kbs-types ≤ 0.6) it is a struct ``{kty, alg, n, e}`` of strings — an EC
    key fails with ``missing field `n``` and unknown members are dropped; later an enum tagged by ``kty``."""
    if generation == "0.1.0":
        if not isinstance(jwk, dict):
            raise _SerdeError(f"invalid type: {_type_name(jwk)}, expected struct TeePubKey {where}")
        for name in ("kty", "alg", "n", "e"):
            if len(_expect_str(_field(jwk, name, where), where)) > 4096:
                raise _SerdeError(f"tee-pubkey: field `{name}` is too long")
        return {name: jwk[name] for name in ("kty", "alg", "n", "e")}
    if not isinstance(jwk, dict):
        raise _SerdeError(f"invalid type: {_type_name(jwk)}, expected internally tagged enum TeePubKey {where}")
    kty = jwk.get("kty")
    needed = {"EC": ("crv", "alg", "x", "y"), "RSA": ("alg", "n", "e")}.get(kty if isinstance(kty, str) else "")
    if needed is None:
        if kty is None:
            raise _SerdeError(f"missing field `kty` {where}")
        raise _SerdeError(f"unknown variant `{kty}`, expected `RSA` or `EC` {where}")
    for name in needed:
        value = jwk.get(name)
        if name not in jwk:
            raise _SerdeError(f"missing field `{name}` {where}")
        if len(_expect_str(value, where)) > 4096:
            raise _SerdeError(f"tee-pubkey: field `{name}` is too long")
    return jwk


class _SerdeError(Exception):
    """A serde_json deserialisation error, worded as serde words it (``missing field `x` at line 1 column 42``)."""


@dataclass
class _Attestation:
    tee_pubkey: dict[str, Any]
    evidence: Any
    nonce: str | None = None  # 0.4.0 only: the client's copy of the session nonce
    additional_evidence: str | None = None  # 0.4.0 only
    init_data: dict[str, str] | None = None  # 0.4.0 only


def _body_generation(version: str) -> str:
    """kbs-types ``Attestation`` generations: 0.1.0 (evidence as a string), 0.1.1–0.3.x (evidence a JSON value),
    ≥ 0.4.0 (runtime-data + composite evidence). Written here on its own, not shared with the client."""
    parts = [int(p) for p in version.split(".")[:3]]
    t = (parts[0], parts[1], parts[2])
    if t >= (0, 4, 0):
        return "0.4.0"
    return "0.1.1" if t >= (0, 1, 1) else "0.1.0"


def _end_position(text: str) -> str:
    """serde's ``at line L column C`` for an error found at the end of the top-level object."""
    stripped = text.rstrip()
    line = stripped.count("\n") + 1
    column = len(stripped) - (stripped.rfind("\n") + 1)
    return f"at line {line} column {column}"


def _field(obj: dict[str, Any], name: str, where: str) -> Any:
    if name not in obj:
        raise _SerdeError(f"missing field `{name}` {where}")
    return obj[name]


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, str):
        return f'string "{value[:64]}"'
    if isinstance(value, (int, float)):
        return f"integer `{value}`" if isinstance(value, int) else f"floating point `{value}`"
    if value is None:
        return "null"
    return "map" if isinstance(value, dict) else "sequence"


def _expect_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _SerdeError(f"invalid type: {_type_name(value)}, expected a string {where}")
    return value


def _parse_attestation(body: bytes, version: str) -> _Attestation:
    """The attest body as the KBS of ``version`` deserialises it (kbs-types of that release), else :class:`_SerdeError`."""
    try:
        text = body.decode("utf-8")
        att = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _SerdeError(str(exc)) from None
    if not isinstance(att, dict):
        raise _SerdeError(f"invalid type: {_type_name(att)}, expected struct Attestation at line 1 column 1")
    where = _end_position(text)
    generation = _body_generation(version)
    try:
        if generation == "0.4.0":
            runtime = _field(att, "runtime-data", where)
            if not isinstance(runtime, dict):
                raise _SerdeError(f"invalid type: {_type_name(runtime)}, expected struct RuntimeData {where}")
            nonce = _expect_str(_field(runtime, "nonce", where), where)
            tee_pubkey = _field(runtime, "tee-pubkey", where)
            composite = _field(att, "tee-evidence", where)
            if not isinstance(composite, dict):
                raise _SerdeError(f"invalid type: {_type_name(composite)}, expected struct CompositeEvidence {where}")
            primary = _field(composite, "primary_evidence", where)
            additional = _expect_str(_field(composite, "additional_evidence", where), where)
            init_data = att.get("init-data")
            if init_data is not None:
                if not isinstance(init_data, dict):
                    raise _SerdeError(f"invalid type: {_type_name(init_data)}, expected struct InitData {where}")
                _expect_str(_field(init_data, "format", where), where)
                _expect_str(_field(init_data, "body", where), where)
                if json_size(init_data) > MAX_CLAIM_JSON:
                    raise _SerdeError("init-data larger than the lab accepts (64 KiB)")
            tee_pubkey = _check_tee_pubkey(tee_pubkey, where, generation)
            return _Attestation(tee_pubkey, primary, nonce, additional, init_data)
        tee_pubkey = _field(att, "tee-pubkey", where)
        evidence = _field(att, "tee-evidence", where)
        tee_pubkey = _check_tee_pubkey(tee_pubkey, where, generation)
        if generation == "0.1.0":
            # tee-evidence is a String in this kbs-types; the verifier parses its text.
            text_evidence = _expect_str(evidence, where)
            try:
                evidence = json.loads(text_evidence)
            except ValueError:
                evidence = text_evidence
        return _Attestation(tee_pubkey, evidence)
    except _SerdeError:
        raise
    except (TypeError, ValueError) as exc:
        raise _SerdeError(str(exc)) from None


def _bound_runtime_data(att: _Attestation, session_nonce: str) -> dict[str, Any]:
    """What the KBS hands the attestation service as the primary evidence's runtime data (backend.rs/builtin.rs)."""
    data: dict[str, Any] = {"tee-pubkey": att.tee_pubkey, "nonce": session_nonce}
    if att.additional_evidence is not None:
        data["additional-evidence"] = att.additional_evidence
    return data
