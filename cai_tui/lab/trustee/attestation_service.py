"""The lab Attestation Service: sample (and, when allowed, tdx-labelled) evidence → an EAR-like JWT.

REST as the restful CoCo-AS serves it (``attestation-service/src/bin/restful``): ``POST /attestation`` (token as the
body), ``POST|GET /policy``, ``GET /policy/<id>``, ``POST /challenge``, ``GET /certificate`` (Alibaba generation),
``GET /.well-known/jwks.json``, ``GET /healthz``. Errors are HTTP 500 with ``An internal error occured: \\n0: …``.

The binding is checked as upstream checks it: structured runtime data is hashed as RFC 8785 canonical JSON with
the request's hash algorithm (SHA-384 unless told otherwise; ``parse_runtime_data`` in attestation-service
``lib.rs``), raw runtime data is taken as is, and the sample verifier compares that digest byte for byte with the
evidence's ``report_data`` decoded as standard base64 (deps/verifier/src/sample/mod.rs).

Simplifications (a lab, not a verifier): evidence is not checked against hardware roots or reference values (a
``tdx``-labelled session, when allowed at all, is taken on trust); the EAR status comes from the policy model in
:mod:`cai_tui.lab.trustee.policy`. The ``/challenge`` JWT is signed with the token key (upstream: a separate RS384 key).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import threading
import time
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from cai_tui.crypto.canonical_json import CanonicalJsonError, canonical_json
from cai_tui.crypto.jose import (
    JoseError,
    PublicKey,
    b64url_decode,
    jwt_decode,
    jwt_encode,
    parse_json,
    public_jwk,
)
from cai_tui.lab.trustee.errors import Reply, as_internal_error
from cai_tui.lab.trustee.policy import ear_status_for_policy
from cai_tui.lab.trustee.settings import MAX_CLAIM_JSON, MAX_POLICY_BYTES, ServerLog, TrusteeSettings, json_size

# kbs-types Tee (the doc's list; "sev" kept for older clients).
KNOWN_TEES = frozenset(
    {
        "az-snp-vtpm",
        "az-tdx-vtpm",
        "nvidia",
        "sev",
        "sgx",
        "snp",
        "tdx",
        "cca",
        "csv",
        "se",
        "hygondcu",
        "tpm",
        "sample",
        "sampledevice",
    }
)
EAR_PROFILE = "tag:github.com,2024:confidential-containers/Trustee"  # the AS default profile_name (both trustees)
ISSUER = "cai-tui-lab-attestation-service"
_TRUST_VECTORS = {
    "affirming": {"configuration": 2, "executables": 3, "file-system": 2, "hardware": 2},
    "warning": {"configuration": 33, "executables": 33, "file-system": 2, "hardware": 33},
    "contraindicated": {"configuration": 96, "executables": 96, "file-system": 96, "hardware": 97},
}
DEFAULT_AS_POLICY = """package policy
# cai-tui lab: the default attestation policy. The lab does not evaluate rego: the EAR status of accepted
# evidence is the lab setting `attestation_status`.
default allow = true
"""
MAX_POLICIES = 256
# kbs-types HashAlgorithm names accepted for runtime data (the lab leaves out sm3).
HASH_ALGORITHMS = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def expected_report_data(
    structured: Any = None, *, raw: bytes | None = None, hash_algorithm: str = "sha384"
) -> bytes | None:
    """What the verifier must find in the evidence: raw runtime data as is, structured runtime data hashed as its
    RFC 8785 canonical JSON (None when no runtime data was given)."""
    if raw is not None:
        return raw
    if structured is None:
        return None
    try:
        hasher = HASH_ALGORITHMS[hash_algorithm]
    except KeyError:
        raise EvidenceRejected(
            "parse runtime data HashAlgorithm failed", f"unknown hash algorithm {hash_algorithm}"
        ) from None
    try:
        return hasher(canonical_json(structured)).digest()
    except CanonicalJsonError as exc:
        raise EvidenceRejected("parse runtime data", "parse JSON structured data", str(exc)) from None


def verify_sample_binding(evidence: Any, expected: bytes | None) -> None:
    """The sample verifier: ``{svn, report_data}``; report_data (standard base64) must equal the expected digest."""
    if not isinstance(evidence, dict) or not isinstance(evidence.get("svn"), str):
        raise EvidenceRejected("Verifier evaluate failed", "Deserialize Quote failed.")
    report_data = evidence.get("report_data", "")
    if not isinstance(report_data, str):
        raise EvidenceRejected("Verifier evaluate failed", "Deserialize Quote failed.")
    if expected is None:
        return
    try:
        got = base64.b64decode(report_data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EvidenceRejected(
            "Verifier evaluate failed",
            "Evidence's identity verification error.",
            "base64 decode report data for sample evidence",
            str(exc),
        ) from None
    if got != expected:
        raise EvidenceRejected(
            "Verifier evaluate failed",
            "Evidence's identity verification error.",
            "REPORT_DATA is different from that in Sample Quote",
        )


class EvidenceRejected(Exception):
    """The lab cannot verify this evidence; ``causes`` is the error chain (outermost first)."""

    def __init__(self, *causes: str) -> None:
        super().__init__(": ".join(causes))
        self.causes = causes


class AttestationService:
    def __init__(self, settings: TrusteeSettings, log: ServerLog) -> None:
        self.settings = settings
        self.log = log
        self._lock = threading.Lock()
        self.policies: dict[str, str] = {"default": DEFAULT_AS_POLICY}
        self._key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
        if settings.token_alg == "EdDSA":
            self._key = ed25519.Ed25519PrivateKey.generate()
        else:
            self._key = ec.generate_private_key(ec.SECP256R1())
        self.alg = settings.token_alg
        self.kid = uuid.uuid4().hex[:16]
        self.public_jwk: dict[str, Any] = dict(public_jwk(self._key, alg=self.alg, kid=self.kid))
        self.public_jwk["use"] = "sig"
        self.certificate_pem = self._certificate_chain()
        # The signer's certificate chain in the JWK (header and JWKS) as ``x5c``, as the AS does when a certificate is
        # configured (which /certificate says here): openanolis encodes it base64url without padding, upstream
        # standard base64. A verifier endorses the token key with it (TNG: against GET /certificate).
        chain = [
            c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(self.certificate_pem)
        ]
        enc = (lambda d: base64.b64encode(d).decode()) if settings.flavour == "upstream" else _b64url_nopad
        self.public_jwk["x5c"] = [enc(d) for d in chain]

    # -- keys -------------------------------------------------------------------------------------

    @property
    def public_key(self) -> PublicKey:
        return self._key.public_key()

    def _certificate_chain(self) -> bytes:
        """PEM: the token key's end-entity certificate, then the lab CA that signed it (an X.509 verifier such as
        webpki refuses a CA certificate as the leaf)."""
        now = dt.datetime.now(dt.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cai-tui lab attestation service CA")])
        leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cai-tui lab attestation token broker")])

        def build(subject: x509.Name, key: Any, ca: bool) -> x509.CertificateBuilder:
            return (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(ca_name)
                .public_key(key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            )

        ca = build(ca_name, ca_key.public_key(), True).sign(ca_key, hashes.SHA256())
        leaf = build(leaf_name, self._key.public_key(), False).sign(ca_key, hashes.SHA256())
        return leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self.public_jwk)]}

    def verify_token(self, token: str) -> dict[str, Any]:
        """Claims of a token this AS issued (signature and ``exp``), else :class:`JoseError`."""
        return jwt_decode(token, self.public_key, algorithms=[self.alg], require_exp=True, leeway=5)

    # -- policies ---------------------------------------------------------------------------------

    def set_policy(self, policy_id: str, policy_b64: str) -> None:
        if not isinstance(policy_id, str) or not policy_id or len(policy_id) > 128:
            raise ValueError("policy_id must be a non-empty string")
        text = b64url_decode(policy_b64).decode("utf-8")
        if len(text) > MAX_POLICY_BYTES:
            raise ValueError("policy larger than the lab accepts (1 MiB)")
        with self._lock:
            if policy_id not in self.policies and len(self.policies) >= MAX_POLICIES:
                raise ValueError("too many policies")
            self.policies[policy_id] = text
        self.log.info("attestation-service", f"SetPolicy succeeded: policy {policy_id!r} stored")

    def ear_status(self, policy_id: str) -> str:
        with self._lock:
            text = self.policies.get(policy_id)
        if text is None:
            raise EvidenceRejected("attestation report evaluate", f"policy {policy_id} not found")
        return ear_status_for_policy(text if policy_id != "default" else None, self.settings.attestation_status)

    # -- evaluation -------------------------------------------------------------------------------

    def evaluate(
        self,
        tee: str,
        evidence: Any,
        *,
        runtime_data: Any = None,
        raw_runtime_data: bytes | None = None,
        hash_algorithm: str = "sha384",
        policy_ids: list[str] | None = None,
        init_data: Any = None,
    ) -> tuple[str, dict[str, Any]]:
        """(token, claims) for acceptable evidence, else :class:`EvidenceRejected`. ``runtime_data`` is the
        structured runtime data (hashed as canonical JSON with ``hash_algorithm``), ``raw_runtime_data`` the raw
        report data; sample evidence must bind whichever is given."""
        if tee not in KNOWN_TEES:
            raise EvidenceRejected(f"tee `{tee} not supported`")
        if tee == "tdx" and not self.settings.accept_tdx_evidence:
            raise EvidenceRejected(
                "Verifier evaluate failed",
                "TDX Verifier: lab attestation service cannot verify a TDX quote (accept_tdx_evidence is off)",
            )
        if tee not in ("sample", "tdx"):
            raise EvidenceRejected("Verifier evaluate failed", f"lab attestation service has no {tee} verifier")
        expected = expected_report_data(runtime_data, raw=raw_runtime_data, hash_algorithm=hash_algorithm)
        if tee == "sample":
            verify_sample_binding(evidence, expected)
        if not isinstance(evidence, dict):
            raise EvidenceRejected("Verifier evaluate failed", f"{tee} evidence is not a JSON object")
        pids = policy_ids or ["default"]
        status = self.ear_status(pids[0])
        now = int(time.time())
        annotated: dict[str, Any] = {tee: _summarise(evidence)}
        if isinstance(runtime_data, dict):
            annotated["runtime_data_claims"] = runtime_data
        if init_data is not None:
            annotated["init_data_claims"] = init_data
        claims: dict[str, Any] = {
            "eat_profile": EAR_PROFILE,
            "iat": now,
            "exp": now + int(self.settings.token_ttl_s),
            "iss": ISSUER,
            "jti": uuid.uuid4().hex,
            "ear.verifier-id": {"developer": "https://confidentialcontainers.org", "build": "cai-tui-lab"},
            "submods": {
                "cpu0": {
                    "ear.status": status,
                    "ear.trustworthiness-vector": dict(_TRUST_VECTORS[status]),
                    "ear.appraisal-policy-id": pids[0],
                    "ear.veraison.annotated-evidence": annotated,
                }
            },
        }
        if isinstance(runtime_data, dict) and isinstance(runtime_data.get("tee-pubkey"), dict):
            claims["tee-pubkey"] = runtime_data["tee-pubkey"]
        header = {"kid": self.kid, "jwk": {k: v for k, v in self.public_jwk.items() if k != "use"}}
        token = jwt_encode(claims, self._key, self.alg, header=header)
        self.log.info("attestation-service", f"AttestationEvaluate succeeded: tee={tee} ear.status={status}")
        return token, claims

    def challenge_json(self) -> str:
        nonce = _b64std(os.urandom(32))
        now = int(time.time())
        jwt = jwt_encode({"nonce": nonce, "iat": now, "exp": now + 300}, self._key, self.alg)
        return json.dumps({"nonce": nonce, "extra-params": {"jwt": jwt}}, separators=(",", ":"))

    # -- REST -------------------------------------------------------------------------------------

    def handle(self, method: str, segments: list[str], body: bytes) -> Reply:
        """Route ``/<segments>`` of the restful AS; unknown routes are 404 (actix answers them without a body)."""
        route = "/".join(segments)
        try:
            if route == "attestation" and method == "POST":
                return self._rest_attestation(body)
            if route == "challenge" and method == "POST":
                return self._rest_challenge(body)
            if route == "policy" and method == "POST":
                return self._rest_set_policy(body)
            if route in ("policy", "policies") and method == "GET":
                with self._lock:
                    ids = list(self.policies)
                return Reply.json(200, [{"policy-id": i} for i in ids])
            if len(segments) == 2 and segments[0] == "policy" and method == "GET":
                with self._lock:
                    text = self.policies.get(segments[1])
                if text is None:
                    return as_internal_error("get policy", f"policy {segments[1]} not found")
                return Reply.text(200, text)
            if route == "certificate" and method == "GET":
                return Reply(200, self.certificate_pem, {"Content-Type": "application/x-pem-file"})
            if route in (".well-known/jwks.json", "jwks") and method == "GET":
                return Reply.json(200, self.jwks())
            if route in ("healthz", "status") and method == "GET":
                return Reply(200)
        except EvidenceRejected as exc:
            self.log.error("attestation-service", "An internal error occured: " + ": ".join(exc.causes))
            return as_internal_error(*exc.causes)
        return Reply(404)

    @staticmethod
    def _json_body(body: bytes) -> Any:
        try:
            return parse_json(body)
        except JoseError as exc:
            raise _BadJson(f"Json deserialize error: {exc}") from None

    def _rest_attestation(self, body: bytes) -> Reply:
        try:
            req = self._json_body(body)
        except _BadJson as exc:
            return Reply.text(400, str(exc))
        if not isinstance(req, dict):
            return Reply.text(400, "Json deserialize error: expected an object")
        if isinstance(req.get("verification_requests"), list):
            items = req["verification_requests"]
        elif "tee" in req and "evidence" in req:
            items = [req]  # the single-request shape of earlier restful AS releases
        else:
            return Reply.text(400, "Json deserialize error: missing field `verification_requests`")
        policy_ids = req.get("policy_ids") or ["default"]
        if not isinstance(policy_ids, list) or not all(isinstance(p, str) for p in policy_ids):
            return Reply.text(400, "Json deserialize error: policy_ids must be a list of strings")
        if not items:
            return as_internal_error("attestation report evaluate", "no verification request")
        item = items[0]
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("tee"), str)
            or not isinstance(item.get("evidence"), str)
        ):
            return Reply.text(400, "Json deserialize error: each request needs string `tee` and `evidence`")
        try:
            raw = b64url_decode(item["evidence"])
        except JoseError as exc:
            return as_internal_error("base64 decode evidence", str(exc))
        try:
            evidence = parse_json(raw)
        except JoseError as exc:
            return as_internal_error("failed to parse evidence as JSON", str(exc))
        runtime = item.get("runtime_data")
        structured: Any = None
        raw_runtime: bytes | None = None
        if runtime is not None:
            # enum RuntimeData { Raw(String), Structured(Value) }: exactly one key.
            if not isinstance(runtime, dict) or len(runtime) != 1 or not ({"raw", "structured"} & set(runtime)):
                return Reply.text(400, "Json deserialize error: unknown variant, expected `raw` or `structured`")
            if "raw" in runtime:
                if not isinstance(runtime["raw"], str):
                    return Reply.text(400, "Json deserialize error: invalid type, expected a string")
                try:
                    raw_runtime = b64url_decode(runtime["raw"])
                except JoseError as exc:
                    return as_internal_error("decode given Runtime Data", "base64 decode raw runtime data", str(exc))
            else:
                structured = runtime["structured"]
        if structured is not None and json_size(structured) > MAX_CLAIM_JSON:
            return as_internal_error("decode given Runtime Data", "runtime data larger than the lab accepts (64 KiB)")
        algorithm = item.get("runtime_data_hash_algorithm")
        if algorithm is None:
            algorithm = "sha384"
        elif not isinstance(algorithm, str) or algorithm.lower() not in HASH_ALGORITHMS:
            return as_internal_error("parse runtime data HashAlgorithm failed", f"unknown hash algorithm {algorithm!r}")
        try:
            token, _ = self.evaluate(
                item["tee"],
                evidence,
                runtime_data=structured,
                raw_runtime_data=raw_runtime,
                hash_algorithm=algorithm.lower(),
                policy_ids=policy_ids,
            )
        except EvidenceRejected as exc:
            causes = ("attestation report evaluate", *exc.causes)
            self.log.error("attestation-service", "An internal error occured: " + ": ".join(causes))
            return as_internal_error(*causes)
        return Reply.text(200, token)

    def _rest_challenge(self, body: bytes) -> Reply:
        try:
            req = self._json_body(body) if body.strip() else {}
        except _BadJson as exc:
            return Reply.text(400, str(exc))
        if not isinstance(req, dict):
            return Reply.text(400, "Json deserialize error: expected an object")
        tee = req.get("tee")
        if tee is not None:
            if not isinstance(tee, str) or tee not in KNOWN_TEES:
                return as_internal_error(f"tee `{tee} not supported`")
            return Reply.text(200, "")  # supplemental challenge: empty for every TEE but IBM SE
        return Reply(200, self.challenge_json().encode("utf-8"), {"Content-Type": "application/json"})

    def _rest_set_policy(self, body: bytes) -> Reply:
        try:
            req = self._json_body(body)
        except _BadJson as exc:
            return Reply.text(400, str(exc))
        if (
            not isinstance(req, dict)
            or not isinstance(req.get("policy_id"), str)
            or not isinstance(req.get("policy"), str)
        ):
            return Reply.text(400, "Json deserialize error: expected {policy_id, policy}")
        try:
            self.set_policy(req["policy_id"], req["policy"])
        except (JoseError, UnicodeDecodeError, ValueError) as exc:
            return as_internal_error("set policy", str(exc))
        return Reply.text(200, "")


class _BadJson(Exception):
    pass


def _b64std(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _summarise(evidence: dict[str, Any]) -> dict[str, Any]:
    """A bounded copy of the evidence's scalar members (annotated evidence in the token)."""
    out: dict[str, Any] = {}
    for k, v in list(evidence.items())[:32]:
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[str(k)[:64]] = v[:512] if isinstance(v, str) else v
    return out


def _b64url_nopad(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
