"""RSA1_5 (RSAES-PKCS1-v1_5 key wrap) + A256GCM, the only JWE a KBS before protocol 0.2.0 sends.

The JWEs here are built with ``cryptography`` primitives and the standard library alone (never with
``jose.jwe_encrypt``), in both shapes a KBS answers: RFC 7516 (Trustee ≥ v0.12, openanolis ≥ v1.6) and the legacy
kbs-types < 0.10 ``Response`` (header JSON as text, no AAD, tag inside the ciphertext, ``tag: ""``).
"""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cai_tui.crypto.jose import JoseError, jwe_decrypt, jwe_encrypt

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CEK = bytes(range(32))
IV = bytes(range(100, 112))
PLAINTEXT = b"model-decryption-key \x00\xff"
AUTH_FAILED = "JWE authentication failed"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def rfc7516_jwe(key: rsa.RSAPublicKey = KEY.public_key(), *, cek: bytes = CEK, wrapped: bytes | None = None) -> dict:
    protected = _b64(b'{"alg":"RSA1_5","enc":"A256GCM"}')
    sealed = AESGCM(cek).encrypt(IV, PLAINTEXT, protected.encode("ascii"))
    encrypted_key = wrapped if wrapped is not None else key.encrypt(cek, padding.PKCS1v15())
    return {
        "protected": protected,
        "encrypted_key": _b64(encrypted_key),
        "iv": _b64(IV),
        "ciphertext": _b64(sealed[:-16]),
        "tag": _b64(sealed[-16:]),
    }


def legacy_jwe(key: rsa.RSAPublicKey = KEY.public_key()) -> dict:
    """What openanolis v1.5.2's kbs/src/jwe.rs returns: protected = serde_json text, AES-GCM without AAD."""
    sealed = AESGCM(CEK).encrypt(IV, PLAINTEXT, None)
    return {
        "protected": '{"alg":"RSA1_5","enc":"A256GCM"}',
        "encrypted_key": _b64(key.encrypt(CEK, padding.PKCS1v15())),
        "iv": _b64(IV),
        "ciphertext": _b64(sealed),
        "tag": "",
    }


def test_rsa1_5_jwe_built_from_primitives_decrypts() -> None:
    jwe = rfc7516_jwe()
    assert jwe_decrypt(jwe, KEY) == PLAINTEXT
    assert jwe_decrypt(json.dumps(jwe).encode(), KEY) == PLAINTEXT
    compact = ".".join(jwe[k] for k in ("protected", "encrypted_key", "iv", "ciphertext", "tag"))
    assert jwe_decrypt(compact, KEY) == PLAINTEXT


def test_legacy_kbs_answer_decrypts() -> None:
    assert jwe_decrypt(legacy_jwe(), KEY) == PLAINTEXT
    assert jwe_decrypt(json.dumps(legacy_jwe()), KEY) == PLAINTEXT


def test_our_legacy_encrypt_is_what_the_old_kbs_sends() -> None:
    """jwe_encrypt(legacy=True) is read back with primitives only: the header text, no AAD, the tag appended."""
    jwe = jwe_encrypt(PLAINTEXT, KEY.public_key(), alg="RSA1_5", legacy=True)
    assert json.loads(jwe["protected"]) == {"alg": "RSA1_5", "enc": "A256GCM"} and jwe["tag"] == ""
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    cek = KEY.decrypt(base64.urlsafe_b64decode(pad(jwe["encrypted_key"])), padding.PKCS1v15())
    iv = base64.urlsafe_b64decode(pad(jwe["iv"]))
    assert AESGCM(cek).decrypt(iv, base64.urlsafe_b64decode(pad(jwe["ciphertext"])), None) == PLAINTEXT


def test_wrong_key_bad_padding_and_bad_cek_length_fail_alike() -> None:
    """Padding errors must not be told apart from a tampered ciphertext (RFC 7516 §11.5): same error, same place."""
    k = KEY.key_size // 8
    cases = {
        "other key": rfc7516_jwe(OTHER.public_key()),
        "bad padding": rfc7516_jwe(wrapped=b"\x00\x02" + b"\x00" * (k - 2)),
        "random block": rfc7516_jwe(wrapped=b"\x7f" * k),
        "16-byte CEK": rfc7516_jwe(wrapped=KEY.public_key().encrypt(bytes(16), padding.PKCS1v15())),
    }
    messages = set()
    for name, jwe in cases.items():
        with pytest.raises(JoseError) as info:
            jwe_decrypt(jwe, KEY)
        assert str(info.value).startswith(AUTH_FAILED), name
        messages.add(str(info.value))
    assert len(messages) == 1


def test_tampered_ciphertext_tag_and_header_are_refused() -> None:
    jwe = rfc7516_jwe()
    for field in ("ciphertext", "tag"):
        raw = bytearray(base64.urlsafe_b64decode(jwe[field] + "=" * (-len(jwe[field]) % 4)))
        raw[0] ^= 1
        with pytest.raises(JoseError, match=AUTH_FAILED):
            jwe_decrypt({**jwe, field: _b64(bytes(raw))}, KEY)
    with pytest.raises(JoseError, match=AUTH_FAILED):
        jwe_decrypt({**jwe, "protected": _b64(b'{"alg":"RSA1_5","enc":"A256GCM","kid":"x"}')}, KEY)
    legacy = legacy_jwe()
    raw = bytearray(base64.urlsafe_b64decode(legacy["ciphertext"] + "=" * (-len(legacy["ciphertext"]) % 4)))
    raw[-1] ^= 1
    with pytest.raises(JoseError, match=AUTH_FAILED):
        jwe_decrypt({**legacy, "ciphertext": _b64(bytes(raw))}, KEY)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"encrypted_key": _b64(b"short")}, "length of the RSA modulus"),
        ({"encrypted_key": "not base64!"}, "invalid base64url character"),
        ({"iv": _b64(b"123")}, "96-bit IV"),
        ({"tag": _b64(b"t" * 8)}, "128-bit tag"),
        ({"protected": _b64(b'{"alg":"RSA1_5","enc":"A128GCM"}')}, "only A256GCM"),
        ({"protected": _b64(b'{"alg":"RSA1_6","enc":"A256GCM"}')}, "'RSA1_6' is not supported"),
        ({"protected": _b64(b"[1]")}, "not a JSON object"),
        ({"protected": "{not json"}, "legacy KBS JSON text"),
        ({"protected": 5}, "no protected header"),
        ({"ciphertext": None}, "'ciphertext' is missing"),
    ],
)
def test_malformed_rsa1_5_jwe_is_refused_clearly(change: dict, message: str) -> None:
    with pytest.raises(JoseError, match=message):
        jwe_decrypt({**rfc7516_jwe(), **change}, KEY)


def test_malformed_legacy_answers_are_refused_clearly() -> None:
    with pytest.raises(JoseError, match="must have an empty tag"):
        jwe_decrypt({**legacy_jwe(), "tag": _b64(b"t" * 16)}, KEY)
    with pytest.raises(JoseError, match="shorter than the 128-bit"):
        jwe_decrypt({**legacy_jwe(), "ciphertext": _b64(b"x" * 15)}, KEY)


def test_rsa1_5_needs_an_rsa_key() -> None:
    with pytest.raises(JoseError, match="needs an RSA private key"):
        jwe_decrypt(rfc7516_jwe(), ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(JoseError, match="needs an RSA key"):
        jwe_encrypt(b"x", ec.generate_private_key(ec.SECP256R1()).public_key(), alg="RSA1_5")


def test_other_algorithms_still_work_in_both_shapes() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    for key, alg in ((ec_key, "ECDH-ES+A256KW"), (KEY, "RSA-OAEP-256")):
        assert jwe_decrypt(jwe_encrypt(b"p", key.public_key(), alg=alg), key) == b"p"
        assert jwe_decrypt(jwe_encrypt(b"p", key.public_key(), alg=alg, legacy=True), key) == b"p"
