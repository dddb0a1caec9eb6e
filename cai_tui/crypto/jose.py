"""A small JOSE toolkit (RFC 7515-7518, 8037) on top of ``cryptography``.

What the KBS protocol needs and nothing more:

- base64url without padding, JWK export/import for EC (P-256/384/521), RSA and Ed25519 (OKP) keys;
- flattened JWE with ``enc = A256GCM`` and ``alg`` in ``ECDH-ES+A256KW`` (Concat KDF, RFC 7518 §4.6),
  ``RSA-OAEP-256`` (``RSA-OAEP`` is decrypted too, for the RFC 7516 A.1 vector) or the deprecated ``RSA1_5``
  (RSAES-PKCS1-v1_5, RFC 7518 §4.2: the only one a KBS before protocol 0.2.0 encrypts to); the AAD is the ASCII of
  the protected header's base64url text, exactly as Trustee's ``kbs_types::ProtectedHeader::generate_aad``;
- the *legacy* KBS answer of kbs-types < 0.10 (Trustee ≤ v0.11, openanolis ≤ v1.5.2, protocol 0.1.x):
  ``protected`` is the header's JSON text itself (not base64url), the content is sealed without AAD and the GCM
  tag is appended to ``ciphertext`` (``tag`` is ``""``). :func:`jwe_decrypt` recognises it by its ``protected``
  member; :func:`jwe_encrypt` writes it with ``legacy=True``;
- compact JWS/JWT with ``EdDSA`` (Ed25519), ``ES256`` and ``RS256``.

Every malformed input raises :class:`JoseError` (a ``ValueError``); nothing else escapes from parsing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import struct
import time
from collections.abc import Collection, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

ENC_A256GCM = "A256GCM"
ALG_ECDH_ES_A256KW = "ECDH-ES+A256KW"
ALG_RSA_OAEP_256 = "RSA-OAEP-256"
ALG_RSA_OAEP = "RSA-OAEP"
ALG_RSA1_5 = "RSA1_5"
JWE_ALGS = (ALG_ECDH_ES_A256KW, ALG_RSA_OAEP_256, ALG_RSA1_5)
_CEK_BYTES = 32  # A256GCM
JWS_ALGS = ("EdDSA", "ES256", "RS256")

_CURVES: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "P-256": (ec.SECP256R1, 32),
    "P-384": (ec.SECP384R1, 48),
    "P-521": (ec.SECP521R1, 66),
}
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_B64URL_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class JoseError(ValueError):
    """A malformed, unsupported or unauthentic JOSE object."""


# --------------------------------------------------------------------------------------------- encoding


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(data: str | bytes) -> bytes:
    """Decode base64url; padding is optional, any other non-alphabet character is an error."""
    if isinstance(data, bytes):
        try:
            data = data.decode("ascii")
        except UnicodeDecodeError:
            raise JoseError("base64url text is not ASCII") from None
    if not isinstance(data, str):
        raise JoseError(f"base64url value must be a string, not {type(data).__name__}")
    text = data.rstrip("=")
    if not set(text) <= _B64URL_ALPHABET:
        raise JoseError("invalid base64url character")
    if len(text) % 4 == 1:
        raise JoseError("invalid base64url length")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JoseError(f"invalid base64url: {exc}") from None


def compact_json(obj: Any) -> str:
    """JSON without whitespace, keys in insertion order (what serde_json emits for the KBS types)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def parse_json(data: bytes | str) -> Any:
    """``json.loads`` where every failure (bad UTF-8, bad JSON, nesting too deep) is a :class:`JoseError`."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise JoseError(f"not JSON: {exc}"[:300]) from None


def _json_object_from_b64(segment: str, what: str) -> dict[str, Any]:
    raw = b64url_decode(segment)
    try:
        obj = parse_json(raw)
    except JoseError as exc:
        raise JoseError(f"{what} is {exc}") from None
    if not isinstance(obj, dict):
        raise JoseError(f"{what} is not a JSON object")
    return obj


def _int_to_b64(n: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (n.bit_length() + 7) // 8)
    return b64url_encode(n.to_bytes(size, "big"))


def _b64_to_int(value: Any, what: str) -> int:
    if not isinstance(value, str) or not value:
        raise JoseError(f"JWK member {what!r} is missing or not a string")
    return int.from_bytes(b64url_decode(value), "big")


# --------------------------------------------------------------------------------------------- JWK


def public_jwk(key: PublicKey | PrivateKey, *, alg: str | None = None, kid: str | None = None) -> dict[str, str]:
    """The public JWK of a key (private keys give their public half). Member order follows RFC 7638 style."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        key = key.public_key()
    jwk: dict[str, str]
    if isinstance(key, ec.EllipticCurvePublicKey):
        crv = _CURVE_NAMES.get(key.curve.name)
        if crv is None:
            raise JoseError(f"unsupported EC curve {key.curve.name}")
        size = _CURVES[crv][1]
        nums = key.public_numbers()
        jwk = {"kty": "EC", "crv": crv, "x": _int_to_b64(nums.x, size), "y": _int_to_b64(nums.y, size)}
    elif isinstance(key, rsa.RSAPublicKey):
        rnums = key.public_numbers()
        jwk = {"kty": "RSA", "n": _int_to_b64(rnums.n), "e": _int_to_b64(rnums.e)}
    elif isinstance(key, ed25519.Ed25519PublicKey):
        from cryptography.hazmat.primitives import serialization

        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
    else:  # pragma: no cover - guarded by the type
        raise JoseError(f"unsupported key type {type(key).__name__}")
    if alg is not None:
        jwk["alg"] = alg
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def public_key_from_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """Import an EC/RSA/OKP(Ed25519) public JWK; the point is validated to lie on its curve."""
    if not isinstance(jwk, Mapping):
        raise JoseError("a JWK must be a JSON object")
    kty = jwk.get("kty")
    try:
        if kty == "EC":
            crv = jwk.get("crv")
            if crv not in _CURVES:
                raise JoseError(f"unsupported EC curve {crv!r}")
            curve_cls, size = _CURVES[crv]
            xb, yb = b64url_decode(_str_member(jwk, "x")), b64url_decode(_str_member(jwk, "y"))
            if len(xb) != size or len(yb) != size:
                raise JoseError(f"EC coordinates of {crv} must be {size} bytes")
            nums = ec.EllipticCurvePublicNumbers(int.from_bytes(xb, "big"), int.from_bytes(yb, "big"), curve_cls())
            return nums.public_key()
        if kty == "RSA":
            n, e = _b64_to_int(jwk.get("n"), "n"), _b64_to_int(jwk.get("e"), "e")
            if n.bit_length() < 1024:
                raise JoseError("RSA modulus shorter than 1024 bits")
            return rsa.RSAPublicNumbers(e, n).public_key()
        if kty == "OKP":
            if jwk.get("crv") != "Ed25519":
                raise JoseError(f"unsupported OKP curve {jwk.get('crv')!r}")
            raw = b64url_decode(_str_member(jwk, "x"))
            if len(raw) != 32:
                raise JoseError("Ed25519 public key must be 32 bytes")
            return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except JoseError:
        raise
    except (ValueError, TypeError) as exc:
        raise JoseError(f"invalid {kty} JWK: {exc}") from None
    raise JoseError(f"unsupported JWK kty {kty!r}")


def private_key_from_jwk(jwk: Mapping[str, Any]) -> PrivateKey:
    """Import a private EC/RSA/OKP(Ed25519) JWK (``d`` and, for RSA, the CRT members)."""
    if not isinstance(jwk, Mapping):
        raise JoseError("a JWK must be a JSON object")
    kty = jwk.get("kty")
    try:
        if kty == "EC":
            pub = public_key_from_jwk(jwk)
            assert isinstance(pub, ec.EllipticCurvePublicKey)
            d = _b64_to_int(jwk.get("d"), "d")
            return ec.EllipticCurvePrivateNumbers(d, pub.public_numbers()).private_key()
        if kty == "RSA":
            n, e, d = (_b64_to_int(jwk.get(k), k) for k in ("n", "e", "d"))
            p, q = _b64_to_int(jwk.get("p"), "p"), _b64_to_int(jwk.get("q"), "q")
            dp = _b64_to_int(jwk["dp"], "dp") if "dp" in jwk else rsa.rsa_crt_dmp1(d, p)
            dq = _b64_to_int(jwk["dq"], "dq") if "dq" in jwk else rsa.rsa_crt_dmq1(d, q)
            qi = _b64_to_int(jwk["qi"], "qi") if "qi" in jwk else rsa.rsa_crt_iqmp(p, q)
            return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, rsa.RSAPublicNumbers(e, n)).private_key()
        if kty == "OKP":
            if jwk.get("crv") != "Ed25519":
                raise JoseError(f"unsupported OKP curve {jwk.get('crv')!r}")
            key = ed25519.Ed25519PrivateKey.from_private_bytes(b64url_decode(_str_member(jwk, "d")))
            if "x" in jwk and public_jwk(key)["x"] != jwk["x"]:
                raise JoseError("Ed25519 JWK: x does not match d")
            return key
    except JoseError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise JoseError(f"invalid private {kty} JWK: {exc}") from None
    raise JoseError(f"unsupported JWK kty {kty!r}")


def _str_member(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise JoseError(f"member {name!r} is missing or not a string")
    return value


# --------------------------------------------------------------------------------------------- JWE


def concat_kdf(z: bytes, alg_id: str, key_bits: int, apu: bytes = b"", apv: bytes = b"") -> bytes:
    """The Concat KDF of NIST SP 800-56A as profiled by RFC 7518 §4.6.2 (SHA-256)."""
    if key_bits <= 0 or key_bits % 8:
        raise JoseError("key length must be a positive multiple of 8 bits")
    alg = alg_id.encode("ascii")
    other_info = (
        struct.pack(">I", len(alg))
        + alg
        + struct.pack(">I", len(apu))
        + apu
        + struct.pack(">I", len(apv))
        + apv
        + struct.pack(">I", key_bits)
    )
    out = b""
    counter = 1
    while len(out) < key_bits // 8:
        out += hashlib.sha256(struct.pack(">I", counter) + z + other_info).digest()
        counter += 1
    return out[: key_bits // 8]


def _default_jwe_alg(key: PublicKey) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ALG_ECDH_ES_A256KW
    if isinstance(key, rsa.RSAPublicKey):
        return ALG_RSA_OAEP_256
    raise JoseError(f"no JWE key management algorithm for {type(key).__name__}")


def jwe_encrypt(
    plaintext: bytes, recipient: PublicKey | Mapping[str, Any], *, alg: str | None = None, legacy: bool = False
) -> dict[str, str]:
    """Encrypt to a public key (or public JWK) as a flattened JWE with ``enc = A256GCM``.

    ``alg`` defaults from the key (JWK ``alg`` member, else EC → ECDH-ES+A256KW, RSA → RSA-OAEP-256). The protected
    header is serialised as Trustee does (``alg``, ``enc``, then ``epk`` with sorted members) so that clients which
    recompute the AAD from a re-serialised header agree with the base64 text. ``legacy=True`` writes the answer of
    a KBS before kbs-types 0.10 (see the module docstring): header JSON as text, no AAD, the tag in ``ciphertext``.
    """
    if isinstance(recipient, Mapping):
        if alg is None and isinstance(recipient.get("alg"), str):
            alg = recipient["alg"]
        key = public_key_from_jwk(recipient)
    else:
        key = recipient
    alg = alg or _default_jwe_alg(key)
    cek = AESGCM.generate_key(bit_length=256)
    header: dict[str, Any]
    if alg == ALG_ECDH_ES_A256KW:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise JoseError(f"{alg} needs an EC key")
        eph = ec.generate_private_key(key.curve)
        z = eph.exchange(ec.ECDH(), key)
        kek = concat_kdf(z, alg, 256)
        encrypted_key = aes_key_wrap(kek, cek)
        epk = public_jwk(eph.public_key())
        header = {
            "alg": alg,
            "enc": ENC_A256GCM,
            "epk": {"crv": epk["crv"], "kty": "EC", "x": epk["x"], "y": epk["y"]},
        }
    elif alg in (ALG_RSA_OAEP_256, ALG_RSA_OAEP, ALG_RSA1_5):
        if not isinstance(key, rsa.RSAPublicKey):
            raise JoseError(f"{alg} needs an RSA key")
        encrypted_key = key.encrypt(cek, _rsa_padding(alg))
        header = {"alg": alg, "enc": ENC_A256GCM}
    else:
        raise JoseError(f"JWE algorithm {alg!r} is not supported")
    iv = os.urandom(12)
    if legacy:
        sealed = AESGCM(cek).encrypt(iv, plaintext, None)
        return {
            "protected": compact_json(header),
            "encrypted_key": b64url_encode(encrypted_key),
            "iv": b64url_encode(iv),
            "ciphertext": b64url_encode(sealed),
            "tag": "",
        }
    protected = b64url_encode(compact_json(header).encode("utf-8"))
    sealed = AESGCM(cek).encrypt(iv, plaintext, protected.encode("ascii"))
    return {
        "protected": protected,
        "encrypted_key": b64url_encode(encrypted_key),
        "iv": b64url_encode(iv),
        "ciphertext": b64url_encode(sealed[:-16]),
        "tag": b64url_encode(sealed[-16:]),
    }


def _rsa_padding(alg: str) -> padding.AsymmetricPadding:
    if alg == ALG_RSA1_5:
        return padding.PKCS1v15()
    algo: hashes.HashAlgorithm = hashes.SHA256() if alg == ALG_RSA_OAEP_256 else hashes.SHA1()
    return padding.OAEP(mgf=padding.MGF1(algorithm=algo), algorithm=algo, label=None)


def _parse_jwe(jwe: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
    if isinstance(jwe, bytes):
        try:
            jwe = jwe.decode("utf-8")
        except UnicodeDecodeError:
            raise JoseError("JWE is not UTF-8") from None
    if isinstance(jwe, str):
        text = jwe.strip()
        if text.startswith("{"):
            return _json_object_text(text, "JWE JSON is malformed: ", "JWE JSON is not an object")
        parts = text.split(".")
        if len(parts) != 5:
            raise JoseError("a compact JWE has five parts")
        return dict(zip(("protected", "encrypted_key", "iv", "ciphertext", "tag"), parts, strict=True))
    if isinstance(jwe, Mapping):
        return dict(jwe)
    raise JoseError(f"unsupported JWE value {type(jwe).__name__}")


def _json_object_text(text: str, malformed: str, not_object: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object, else :class:`JoseError` with ``malformed`` + the cause, or ``not_object``."""
    try:
        obj = parse_json(text)
    except JoseError as exc:
        raise JoseError(f"{malformed}{exc}") from None
    if not isinstance(obj, dict):
        raise JoseError(not_object)
    return obj


def _protected_header(protected: str) -> tuple[dict[str, Any], bytes, bool]:
    """(header, AAD, legacy) of a ``protected`` member: base64url JSON (RFC 7516, AAD = its ASCII) or, in the
    legacy KBS answer, the JSON text itself (sealed without AAD)."""
    if protected.lstrip().startswith("{"):
        header = _json_object_text(
            protected, "JWE protected header (legacy KBS JSON text) is ", "JWE protected header is not a JSON object"
        )
        return header, b"", True
    return _json_object_from_b64(protected, "JWE protected header"), protected.encode("ascii"), False


def _rsa1_5_cek(private_key: rsa.RSAPrivateKey, encrypted_key: bytes) -> bytes:
    """RSAES-PKCS1-v1_5 unwrap of the CEK with the countermeasure of RFC 7516 §11.5 / RFC 3218 §2.3.2: a padding
    failure, or a key of the wrong length, yields a random CEK, so that every such JWE then fails at the same place
    (the GCM tag) with the same message; OpenSSL ≥ 3.2 already answers bad padding with a pseudo-random key
    (implicit rejection), which ends the same way."""
    substitute = os.urandom(_CEK_BYTES)
    try:
        cek = private_key.decrypt(encrypted_key, padding.PKCS1v15())
    except ValueError:
        return substitute
    return cek if len(cek) == _CEK_BYTES else substitute


def jwe_decrypt(jwe: Mapping[str, Any] | str | bytes, private_key: PrivateKey) -> bytes:
    """Decrypt a flattened-JSON (or compact) JWE with ``enc = A256GCM``, or the legacy KBS answer (see the module
    docstring); anything malformed, tampered or for another key raises :class:`JoseError`."""
    obj = _parse_jwe(jwe)
    if "recipients" in obj:
        raise JoseError("general JWE JSON serialization (recipients) is not supported")
    protected = obj.get("protected")
    if not isinstance(protected, str) or not protected:
        raise JoseError("JWE has no protected header")
    header, aad, legacy = _protected_header(protected)
    for extra in ("header", "unprotected"):
        more = obj.get(extra)
        if more is None:
            continue
        if not isinstance(more, dict):
            raise JoseError(f"JWE {extra} is not an object")
        if set(more) & set(header):
            raise JoseError("JWE header parameter names must be disjoint")
        header = {**header, **more}
    if "crit" in header:
        raise JoseError("JWE critical header parameters are not supported")
    if "zip" in header:
        raise JoseError("compressed JWE (zip) is not supported")
    if header.get("enc") != ENC_A256GCM:
        raise JoseError(f"JWE content encryption {header.get('enc')!r} is not supported (only A256GCM)")
    alg = header.get("alg")
    encrypted_key = b64url_decode(_str_member(obj, "encrypted_key"))
    iv = b64url_decode(_str_member(obj, "iv"))
    ciphertext = b64url_decode(_str_member(obj, "ciphertext"))
    tag = b64url_decode(_str_member(obj, "tag"))
    if len(iv) != 12:
        raise JoseError("A256GCM needs a 96-bit IV")
    if legacy:
        # kbs-types < 0.10: the tag travels at the end of the ciphertext and `tag` is empty.
        if tag:
            raise JoseError("legacy KBS JWE (protected header as JSON text) must have an empty tag")
        if len(ciphertext) < 16:
            raise JoseError("legacy KBS JWE ciphertext is shorter than the 128-bit A256GCM tag")
        ciphertext, tag = ciphertext[:-16], ciphertext[-16:]
    if len(tag) != 16:
        raise JoseError("A256GCM needs a 128-bit tag")
    if alg == ALG_ECDH_ES_A256KW:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey):
            raise JoseError("ECDH-ES+A256KW needs an EC private key")
        epk = header.get("epk")
        if not isinstance(epk, dict) or epk.get("kty") != "EC":
            raise JoseError("ECDH-ES header has no EC epk")
        peer = public_key_from_jwk(epk)
        assert isinstance(peer, ec.EllipticCurvePublicKey)
        if peer.curve.name != private_key.curve.name:
            raise JoseError(f"epk curve {epk.get('crv')} does not match the private key")
        apu = b64url_decode(header["apu"]) if isinstance(header.get("apu"), str) else b""
        apv = b64url_decode(header["apv"]) if isinstance(header.get("apv"), str) else b""
        z = private_key.exchange(ec.ECDH(), peer)
        kek = concat_kdf(z, alg, 256, apu, apv)
        try:
            cek = aes_key_unwrap(kek, encrypted_key)
        except (InvalidUnwrap, ValueError):
            raise JoseError("JWE key unwrap failed (wrong key or tampered encrypted_key)") from None
    elif alg in (ALG_RSA_OAEP_256, ALG_RSA_OAEP):
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise JoseError(f"{alg} needs an RSA private key")
        try:
            cek = private_key.decrypt(encrypted_key, _rsa_padding(alg))
        except ValueError:
            raise JoseError("JWE key decryption failed (wrong key or tampered encrypted_key)") from None
    elif alg == ALG_RSA1_5:
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise JoseError(f"{alg} needs an RSA private key")
        if len(encrypted_key) != private_key.key_size // 8 + (1 if private_key.key_size % 8 else 0):
            raise JoseError("RSA1_5 encrypted_key does not have the length of the RSA modulus")
        cek = _rsa1_5_cek(private_key, encrypted_key)
    else:
        raise JoseError(f"JWE algorithm {alg!r} is not supported")
    if len(cek) != _CEK_BYTES:
        raise JoseError("A256GCM needs a 256-bit content encryption key")
    if not legacy and isinstance(obj.get("aad"), str):
        b64url_decode(obj["aad"])  # only the base64url alphabet (ASCII) may follow
        aad += b"." + obj["aad"].encode("ascii")
    try:
        return AESGCM(cek).decrypt(iv, ciphertext + tag, aad or None)
    except InvalidTag:
        raise JoseError(
            "JWE authentication failed (wrong key, or tampered encrypted_key, ciphertext, tag or header)"
        ) from None


# --------------------------------------------------------------------------------------------- JWS / JWT


def default_jws_alg(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "EdDSA"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if key.curve.name != "secp256r1":
            raise JoseError("only P-256 EC keys sign (ES256)")
        return "ES256"
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RS256"
    raise JoseError(f"no JWS algorithm for {type(key).__name__}")


def _sign(alg: str, key: PrivateKey, data: bytes) -> bytes:
    if alg == "EdDSA" and isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if alg == "ES256" and isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg == "RS256" and isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise JoseError(f"key {type(key).__name__} cannot sign with {alg}")


def _verify(alg: str, key: PublicKey, data: bytes, sig: bytes) -> bool:
    try:
        if alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(sig, data)
            return True
        if alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
            if len(sig) != 64:
                return False
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            key.verify(der, data, ec.ECDSA(hashes.SHA256()))
            return True
        if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


def jws_sign(
    payload: bytes, private_key: PrivateKey, alg: str | None = None, *, header: Mapping[str, Any] | None = None
) -> str:
    """A compact JWS over ``payload``; the protected header is ``{"alg": …, **header}``."""
    alg = alg or default_jws_alg(private_key)
    if alg not in JWS_ALGS:
        raise JoseError(f"JWS algorithm {alg!r} is not supported")
    hdr: dict[str, Any] = {"alg": alg}
    for k, v in (header or {}).items():
        if k != "alg":
            hdr[k] = v
    signing_input = b64url_encode(compact_json(hdr).encode("utf-8")) + "." + b64url_encode(payload)
    sig = _sign(alg, private_key, signing_input.encode("ascii"))
    return signing_input + "." + b64url_encode(sig)


def jws_split(token: str) -> tuple[dict[str, Any], bytes, str, bytes]:
    """(header, payload, signing input, signature) of a compact JWS, unverified."""
    if not isinstance(token, str):
        raise JoseError("a compact JWS is a string")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JoseError("a compact JWS has three parts")
    header = _json_object_from_b64(parts[0], "JWS header")
    return header, b64url_decode(parts[1]), parts[0] + "." + parts[1], b64url_decode(parts[2])


def jws_verify(
    token: str, key: PublicKey | Collection[PublicKey], *, algorithms: Collection[str]
) -> tuple[dict[str, Any], bytes]:
    """Verify a compact JWS against one key (or any of several); return (header, payload)."""
    header, payload, signing_input, sig = jws_split(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms or alg not in JWS_ALGS:
        raise JoseError(f"JWS algorithm {alg!r} is not accepted")
    if "crit" in header:
        raise JoseError("JWS critical header parameters are not supported")
    keys: list[PublicKey] = [key] if not isinstance(key, Collection) else list(key)  # type: ignore[list-item]
    data = signing_input.encode("ascii")
    if not any(_verify(alg, k, data, sig) for k in keys):
        raise JoseError("JWS signature verification failed")
    return header, payload


def jwt_encode(
    claims: Mapping[str, Any],
    private_key: PrivateKey,
    alg: str | None = None,
    *,
    header: Mapping[str, Any] | None = None,
) -> str:
    hdr = {"typ": "JWT", **(header or {})}
    # "alg" first, as most implementations emit it; jws_sign puts it there.
    return jws_sign(compact_json(dict(claims)).encode("utf-8"), private_key, alg, header=hdr)


def jwt_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) without verifying anything: for diagnostics only."""
    header, payload, _, _ = jws_split(token)
    try:
        claims = parse_json(payload)
    except JoseError as exc:
        raise JoseError(f"JWT claims are {exc}") from None
    if not isinstance(claims, dict):
        raise JoseError("JWT claims are not a JSON object")
    return header, claims


def jwt_decode(
    token: str,
    key: PublicKey | Collection[PublicKey],
    *,
    algorithms: Collection[str],
    leeway: float = 0.0,
    verify_exp: bool = True,
    require_exp: bool = False,
    now: float | None = None,
) -> dict[str, Any]:
    """Verify signature and time claims (``exp``, ``nbf``, ``iat`` not in the future); return the claims."""
    _, payload = jws_verify(token, key, algorithms=algorithms)
    try:
        claims = parse_json(payload)
    except JoseError as exc:
        raise JoseError(f"JWT claims are {exc}") from None
    if not isinstance(claims, dict):
        raise JoseError("JWT claims are not a JSON object")
    t = time.time() if now is None else now
    for name in ("exp", "nbf", "iat"):
        if name in claims and (isinstance(claims[name], bool) or not isinstance(claims[name], (int, float))):
            raise JoseError(f"JWT claim {name!r} is not a number")
    if verify_exp:
        if "exp" in claims:
            if t > claims["exp"] + leeway:
                raise JoseError("JWT has expired")
        elif require_exp:
            raise JoseError("JWT has no exp claim")
    if "nbf" in claims and t + leeway < claims["nbf"]:
        raise JoseError("JWT is not valid yet (nbf)")
    if "iat" in claims and t + leeway < claims["iat"]:
        raise JoseError("JWT was issued in the future (iat)")
    return claims
