"""The resource answer of the lab KBS: which ``tee-pubkey`` a KBS of each protocol version encrypts to, and how.

Read from the release tags of confidential-containers/trustee and openanolis/trustee (the ``jwe`` function of
kbs/src/jwe.rs, before it kbs/src/{api/src/,}http/resource.rs, and the ``Response`` of the kbs-types each release
locks); the lab is exactly as strict:

- before 0.1.1 (trustee v0.8.2–v0.9.0, openanolis v1.0.0–v1.5.2; the ``TeePubKey`` is a struct, so an EC key never
  gets past attest): only ``alg == "RSA1_5"`` — else ``algorithm is not RSA1_5 but <alg>``;
- 0.1.1 (trustee v0.10.0–v0.11.0; ``TeePubKey`` an enum): an EC key — ``Only RSA key is support for TEE pub key``
  (v0.11.0's words), an RSA key other than RSA1_5 as above;
- both answer the legacy kbs-types < 0.10 ``Response``: ``protected`` is the header's JSON text, the content is
  sealed without AAD and the tag rides in ``ciphertext`` (``tag: ""``);
- from 0.2.0 (trustee ≥ v0.12.0, openanolis ≥ v1.6.0): RSA with ``RSA1_5`` or ``RSA-OAEP-256`` (else ``algorithm
  <alg> is not supported``), EC with ``ECDH-ES+A256KW`` on P-256 — and on P-521 in the upstream flavour at 0.4.0
  (trustee ≥ v0.16.0) — (else ``curve <crv> and algorithm <alg> is not supported``); an RFC 7516 flattened JWE.

Every refusal is the KBS's ``JweError`` (``JWE failed``; 400 in the Alibaba flavour, 401 upstream), the cause only in
the server log, as upstream logs its ``anyhow`` source.
"""

from __future__ import annotations

from typing import Any

from cai_tui.crypto.jose import (
    ALG_ECDH_ES_A256KW,
    ALG_RSA1_5,
    ALG_RSA_OAEP_256,
    JoseError,
    b64url_decode,
    jwe_encrypt,
    public_key_from_jwk,
)

MAX_RSA_BITS = 4096  # the rsa crate's RsaPublicKey::new refuses larger moduli


class JweRefused(Exception):
    """The KBS of this version cannot (or will not) encrypt to the key; ``str()`` is upstream's log cause."""


def _version(version: str) -> tuple[int, int, int]:
    parts = [int(p) for p in version.split(".")[:3]]
    return parts[0], parts[1], parts[2]


def legacy_answer(version: str) -> bool:
    """Whether a KBS of this protocol version answers the kbs-types < 0.10 ``Response`` (before 0.2.0)."""
    return _version(version) < (0, 2, 0)


def _rsa_key(jwk: dict[str, Any]) -> dict[str, str]:
    for name in ("n", "e"):
        value = jwk.get(name)
        if not isinstance(value, str):
            raise JweRefused(f"base64 decode k_{'mod' if name == 'n' else 'exp'} failed")
        try:
            b64url_decode(value)
        except JoseError as exc:
            raise JweRefused(f"base64 decode k_{'mod' if name == 'n' else 'exp'} failed: {exc}") from None
    n_bits = int.from_bytes(b64url_decode(jwk["n"]), "big").bit_length()
    if n_bits > MAX_RSA_BITS:
        raise JweRefused("Building RSA key from modulus and exponent failed: invalid modulus")
    key = {"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}
    try:
        public_key_from_jwk(key)
    except JoseError as exc:
        raise JweRefused(f"Building RSA key from modulus and exponent failed: {exc}") from None
    return key


def resource_jwe(tee_pubkey: Any, payload: bytes, *, version: str, flavour: str) -> dict[str, str]:
    """Encrypt ``payload`` to ``tee-pubkey`` as the KBS of ``version`` (and ``flavour``) does, else
    :class:`JweRefused` with upstream's cause."""
    if not isinstance(tee_pubkey, dict):
        raise JweRefused("tee-pubkey is not an object")
    alg = tee_pubkey.get("alg")
    kty = tee_pubkey.get("kty")
    v = _version(version)
    if v < (0, 2, 0):
        if v >= (0, 1, 1) and kty != "RSA":
            raise JweRefused("Only RSA key is support for TEE pub key")
        if alg != ALG_RSA1_5:
            raise JweRefused(f"algorithm is not {ALG_RSA1_5} but {alg}")
        return _encrypt(payload, _rsa_key(tee_pubkey), ALG_RSA1_5, legacy=True)
    if kty == "RSA":
        if alg not in (ALG_RSA1_5, ALG_RSA_OAEP_256):
            raise JweRefused(f"algorithm {alg} is not supported")
        return _encrypt(payload, _rsa_key(tee_pubkey), str(alg), legacy=False)
    if kty == "EC":
        crv = tee_pubkey.get("crv")
        curves = ("P-256", "P-521") if flavour == "upstream" and v >= (0, 4, 0) else ("P-256",)
        if crv not in curves or alg != ALG_ECDH_ES_A256KW:
            raise JweRefused(f"curve {crv} and algorithm {alg} is not supported")
        key = {"kty": "EC", "crv": str(crv), "x": tee_pubkey.get("x"), "y": tee_pubkey.get("y")}
        try:
            public_key_from_jwk(key)
        except JoseError as exc:
            raise JweRefused(f"invalid EC public key: {exc}") from None
        return _encrypt(payload, key, ALG_ECDH_ES_A256KW, legacy=False)
    raise JweRefused(f"unknown variant `{kty}`, expected `RSA` or `EC`")


def _encrypt(payload: bytes, key: dict[str, Any], alg: str, *, legacy: bool) -> dict[str, str]:
    try:
        return jwe_encrypt(payload, key, alg=alg, legacy=legacy)
    except JoseError as exc:  # pragma: no cover - the key was imported above
        raise JweRefused(str(exc)) from None
