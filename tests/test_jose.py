"""JOSE helpers: RFC known-answer vectors, round trips, tampering, and malformed input."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from cai_tui.crypto import jose
from cai_tui.crypto.jose import (
    JoseError,
    b64url_decode,
    b64url_encode,
    concat_kdf,
    jwe_decrypt,
    jwe_encrypt,
    jws_sign,
    jws_verify,
    jwt_decode,
    jwt_encode,
    private_key_from_jwk,
    public_jwk,
    public_key_from_jwk,
)

EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED_KEY = ed25519.Ed25519PrivateKey.generate()

# RFC 7518 Appendix C (ECDH-ES key agreement): Alice's ephemeral key, Bob's static key.
RFC7518_ALICE = {
    "kty": "EC",
    "crv": "P-256",
    "x": "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0",
    "y": "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps",
    "d": "0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo",
}
RFC7518_BOB = {
    "kty": "EC",
    "crv": "P-256",
    "x": "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ",
    "y": "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck",
    "d": "VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw",
}
# RFC 7516 Appendix A.1 (RSAES-OAEP + A256GCM).
RFC7516_A1_KEY = {
    "kty": "RSA",
    "n": (
        "oahUIoWw0K0usKNuOR6H4wkf4oBUXHTxRvgb48E-BVvxkeDNjbC4he8rUWcJoZmds2h7M70imEVhRU5djINXtqllXI4DFqcI1Dgj"
        "T9LewND8MW2Krf3Spsk_ZkoFnilakGygTwpZ3uesH-PFABNIUYpOiN15dsQRkgr0vEhxN92i2asbOenSZeyaxziK72UwxrrKoExv"
        "6kc5twXTq4h-QChLOln0_mtUZwfsRaMStPs6mS6XrgxnxbWhojf663tuEQueGC-FCMfra36C9knDFGzKsNa7LZK2djYgyD3JR_MB"
        "_4NUJW_TqOQtwHYbxevoJArm-L5StowjzGy-_bq6Gw"
    ),
    "e": "AQAB",
    "d": (
        "kLdtIj6GbDks_ApCSTYQtelcNttlKiOyPzMrXHeI-yk1F7-kpDxY4-WY5NWV5KntaEeXS1j82E375xxhWMHXyvjYecPT9fpwR_M9"
        "gV8n9Hrh2anTpTD93Dt62ypW3yDsJzBnTnrYu1iwWRgBKrEYY46qAZIrA2xAwnm2X7uGR1hghkqDp0Vqj3kbSCz1XyfCs6_LehBw"
        "txHIyh8Ripy40p24moOAbgxVw3rxT_vlt3UVe4WO3JkJOzlpUf-KTVI2Ptgm-dARxTEtE-id-4OJr0h-K-VFs3VSndVTIznSxfyr"
        "j8ILL6MG_Uv8YAu7VILSB3lOW085-4qE3DzgrTjgyQ"
    ),
    "p": (
        "1r52Xk46c-LsfB5P442p7atdPUrxQSy4mti_tZI3Mgf2EuFVbUoDBvaRQ-SWxkbkmoEzL7JXroSBjSrK3YIQgYdMgyAEPTPjXv_h"
        "I2_1eTSPVZfzL0lffNn03IXqWF5MDFuoUYE0hzb2vhrlN_rKrbfDIwUbTrjjgieRbwC6Cl0"
    ),
    "q": (
        "wLb35x7hmQWZsWJmB_vle87ihgZ19S8lBEROLIsZG4ayZVe9Hi9gDVCOBmUDdaDYVTSNx_8Fyw1YYa9XGrGnDew00J28cRUoeBB_"
        "jKI1oma0Orv1T9aXIWxKwd4gvxFImOWr3QRL9KEBRzk2RatUBnmDZJTIAfwTs0g68UZHvtc"
    ),
    "dp": (
        "ZK-YwE7diUh0qR1tR7w8WHtolDx3MZ_OTowiFvgfeQ3SiresXjm9gZ5KLhMXvo-uz-KUJWDxS5pFQ_M0evdo1dKiRTjVw_x4Nyqy"
        "XPM5nULPkcpU827rnpZzAJKpdhWAgqrXGKAECQH0Xt4taznjnd_zVpAmZZq60WPMBMfKcuE"
    ),
    "dq": (
        "Dq0gfgJ1DdFGXiLvQEZnuKEN0UUmsJBxkjydc3j4ZYdBiMRAy86x0vHCjywcMlYYg4yoC4YZa9hNVcsjqA3FeiL19rk8g6Qn29Tt"
        "0cj8qqyFpz9vNDBUfCAiJVeESOjJDZPYHdHY8v1b-o-Z2X5tvLx-TCekf7oxyeKDUqKWjis"
    ),
    "qi": (
        "VIMpMYbPf47dT1w_zDUXfPimsSegnMOA1zTaX7aGk_8urY6R8-ZW1FxU7AlWAyLWybqq6t16VFd7hQd0y6flUK4SlOydB61gwanO"
        "sXGOAOv82cHq0E3eL4HrtZkUuKvnPrMnsUUFlfUdybVzxyjz9JF_XyaY14ardLSjf4L_FNY"
    ),
}
RFC7516_A1_JWE = (
    "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ."
    "OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nf"
    "a6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaVmqgfwX7XWRxv2322i-vDxRfqNzo_tETKz"
    "pVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdbYaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdX"
    "KHzg."
    "48V1_ALb6US04U3b."
    "5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A."
    "XFBoMYUZodetZdvTiFvSkQ"
)


# ------------------------------------------------------------------------------------------ known answers


def test_rfc7518_appendix_c_ecdh_es_concat_kdf() -> None:
    alice = private_key_from_jwk(RFC7518_ALICE)
    bob = private_key_from_jwk(RFC7518_BOB)
    assert isinstance(alice, ec.EllipticCurvePrivateKey) and isinstance(bob, ec.EllipticCurvePrivateKey)
    z = alice.exchange(ec.ECDH(), bob.public_key())
    assert list(z[:4]) == [158, 86, 217, 29]  # RFC 7518 C: Z = [158, 86, 217, 29, 129, 113, ...]
    assert z == bob.exchange(ec.ECDH(), alice.public_key())
    derived = concat_kdf(z, "A128GCM", 128, b"Alice", b"Bob")
    assert b64url_encode(derived) == "VqqN6vgjbSBcIijNcacQGg"


def test_rfc8037_a4_ed25519_jws_is_byte_exact() -> None:
    key = private_key_from_jwk(
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        }
    )
    token = jws_sign(b"Example of Ed25519 signing", key, "EdDSA")  # type: ignore[arg-type]
    assert token == (
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    )
    pub = public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
    assert jws_verify(token, pub, algorithms=["EdDSA"])[1] == b"Example of Ed25519 signing"


def test_rfc7515_a3_es256_signature_verifies() -> None:
    pub = public_key_from_jwk(
        {
            "kty": "EC",
            "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        }
    )
    token = (
        "eyJhbGciOiJFUzI1NiJ9."
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
        "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
    )
    header, payload = jws_verify(token, pub, algorithms=["ES256"])
    assert header == {"alg": "ES256"} and b'"iss":"joe"' in payload
    with pytest.raises(JoseError, match="expired"):  # exp 1300819380 (2011)
        jwt_decode(token, pub, algorithms=["ES256"])
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(JoseError):
        jws_verify(flipped, pub, algorithms=["ES256"])


def test_rfc7516_a1_jwe_decrypts_with_the_rfc_key() -> None:
    key = private_key_from_jwk(RFC7516_A1_KEY)
    assert jwe_decrypt(RFC7516_A1_JWE, key) == b"The true sign of intelligence is not knowledge but imagination."
    parts = RFC7516_A1_JWE.split(".")
    flat = dict(zip(("protected", "encrypted_key", "iv", "ciphertext", "tag"), parts, strict=True))
    assert jwe_decrypt(flat, key).startswith(b"The true sign")
    # The AAD is the protected header's base64 text: another encoding of the same header must fail.
    reencoded = b64url_encode(json.dumps({"alg": "RSA-OAEP", "enc": "A256GCM"}).encode())
    assert reencoded != flat["protected"]
    with pytest.raises(JoseError, match="authentication failed"):
        jwe_decrypt({**flat, "protected": reencoded}, key)


# ------------------------------------------------------------------------------------------ JWE


@pytest.mark.parametrize("key", [EC_KEY, RSA_KEY], ids=["ECDH-ES+A256KW", "RSA-OAEP-256"])
def test_jwe_round_trip_and_header(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    jwe = jwe_encrypt(b"model key \x00\xff", key.public_key())
    assert list(jwe) == ["protected", "encrypted_key", "iv", "ciphertext", "tag"]
    header = json.loads(b64url_decode(jwe["protected"]))
    if isinstance(key, ec.EllipticCurvePrivateKey):
        assert list(header) == ["alg", "enc", "epk"] and header["alg"] == "ECDH-ES+A256KW"
        assert list(header["epk"]) == ["crv", "kty", "x", "y"] and header["epk"]["crv"] == "P-256"
        assert len(b64url_decode(jwe["encrypted_key"])) == 40
    else:
        assert header == {"alg": "RSA-OAEP-256", "enc": "A256GCM"}
    assert header["enc"] == "A256GCM"
    assert jwe_decrypt(jwe, key) == b"model key \x00\xff"
    assert jwe_decrypt(json.dumps(jwe), key) == b"model key \x00\xff"
    compact = ".".join(jwe[k] for k in ("protected", "encrypted_key", "iv", "ciphertext", "tag"))
    assert jwe_decrypt(compact, key) == b"model key \x00\xff"


def test_jwe_accepts_a_jwk_recipient_with_alg() -> None:
    jwk = public_jwk(RSA_KEY, alg="RSA-OAEP-256")
    jwe = jwe_encrypt(b"x", jwk)
    assert json.loads(b64url_decode(jwe["protected"]))["alg"] == "RSA-OAEP-256"
    assert jwe_decrypt(jwe, RSA_KEY) == b"x"
    with pytest.raises(JoseError, match="not supported"):
        jwe_encrypt(b"x", {**jwk, "alg": "RSA-OAEP-384"})
    rsa1_5 = jwe_encrypt(b"x", {**jwk, "alg": "RSA1_5"})
    assert json.loads(b64url_decode(rsa1_5["protected"])) == {"alg": "RSA1_5", "enc": "A256GCM"}
    assert jwe_decrypt(rsa1_5, RSA_KEY) == b"x"


@pytest.mark.parametrize("field", ["protected", "encrypted_key", "iv", "ciphertext", "tag"])
@pytest.mark.parametrize("key", [EC_KEY, RSA_KEY], ids=["EC", "RSA"])
def test_jwe_tampering_any_member_fails(field: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    jwe = jwe_encrypt(b"secret payload", key.public_key())
    raw = bytearray(b64url_decode(jwe[field]))
    if field == "protected":
        header = json.loads(raw)
        header["kid"] = "x"  # still valid JSON, different AAD
        raw = bytearray(json.dumps(header).encode())
    else:
        raw[0] ^= 0x01
    with pytest.raises(JoseError):
        jwe_decrypt({**jwe, field: b64url_encode(bytes(raw))}, key)


def test_jwe_wrong_key_and_wrong_key_type() -> None:
    other_ec = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(JoseError, match="unwrap"):
        jwe_decrypt(jwe_encrypt(b"s", EC_KEY.public_key()), other_ec)
    with pytest.raises(JoseError, match="needs an RSA"):
        jwe_decrypt(jwe_encrypt(b"s", RSA_KEY.public_key()), EC_KEY)
    with pytest.raises(JoseError, match="needs an EC"):
        jwe_decrypt(jwe_encrypt(b"s", EC_KEY.public_key()), RSA_KEY)
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(JoseError, match="curve"):
        jwe_decrypt(jwe_encrypt(b"s", EC_KEY.public_key()), p384)
    assert jwe_decrypt(jwe_encrypt(b"s", p384.public_key()), p384) == b"s"


def test_jwe_rejects_unsupported_headers() -> None:
    jwe = jwe_encrypt(b"s", EC_KEY.public_key())
    header = json.loads(b64url_decode(jwe["protected"]))
    for change in ({"enc": "A128GCM"}, {"zip": "DEF"}, {"crit": ["x"]}, {"alg": "dir"}):
        bad = b64url_encode(json.dumps({**header, **change}).encode())
        with pytest.raises(JoseError):
            jwe_decrypt({**jwe, "protected": bad}, EC_KEY)
    with pytest.raises(JoseError, match="recipients"):
        jwe_decrypt({"recipients": [], "protected": jwe["protected"]}, EC_KEY)


def test_jwe_rejects_an_off_curve_epk() -> None:
    jwe = jwe_encrypt(b"s", EC_KEY.public_key())
    header = json.loads(b64url_decode(jwe["protected"]))
    y = bytearray(b64url_decode(header["epk"]["y"]))
    y[-1] ^= 1
    header["epk"]["y"] = b64url_encode(bytes(y))
    with pytest.raises(JoseError, match="invalid EC JWK"):
        jwe_decrypt({**jwe, "protected": b64url_encode(json.dumps(header).encode())}, EC_KEY)


# ------------------------------------------------------------------------------------------ JWK


@pytest.mark.parametrize("key", [EC_KEY, RSA_KEY, ED_KEY], ids=["EC", "RSA", "OKP"])
def test_jwk_round_trip(key: jose.PrivateKey) -> None:
    jwk = public_jwk(key, alg="x", kid="k1")
    again = public_jwk(public_key_from_jwk(jwk))
    assert {k: v for k, v in jwk.items() if k not in ("alg", "kid")} == again
    assert jwk["kid"] == "k1"


def test_jwk_p256_coordinates_are_fixed_width() -> None:
    for _ in range(20):
        jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()))
        assert len(b64url_decode(jwk["x"])) == 32 and len(b64url_decode(jwk["y"])) == 32


@pytest.mark.parametrize(
    "jwk",
    [
        {},
        {"kty": "oct", "k": "AAAA"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "EC", "crv": "secp256k1", "x": "", "y": ""},
        {"kty": "EC", "crv": "P-256", "x": 1, "y": 2},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {"kty": "OKP", "crv": "X25519", "x": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519", "x": "!!"},
        [],
    ],
)
def test_bad_jwks_raise_jose_error(jwk: object) -> None:
    with pytest.raises(JoseError):
        public_key_from_jwk(jwk)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ JWS / JWT


@pytest.mark.parametrize("key,alg", [(ED_KEY, "EdDSA"), (EC_KEY, "ES256"), (RSA_KEY, "RS256")])
def test_jwt_round_trip(key: jose.PrivateKey, alg: str) -> None:
    token = jwt_encode({"sub": "kbs", "exp": 4_000_000_000}, key, alg)
    header, _ = jws_verify(token, key.public_key(), algorithms=[alg])
    assert header == {"alg": alg, "typ": "JWT"}
    assert jwt_decode(token, key.public_key(), algorithms=[alg]) == {"sub": "kbs", "exp": 4_000_000_000}


def test_jwt_time_claims_and_algorithm_allow_list() -> None:
    now = 1_700_000_000
    expired = jwt_encode({"exp": now - 10}, ED_KEY)
    with pytest.raises(JoseError, match="expired"):
        jwt_decode(expired, ED_KEY.public_key(), algorithms=["EdDSA"], now=now)
    assert jwt_decode(expired, ED_KEY.public_key(), algorithms=["EdDSA"], now=now, leeway=20)
    future = jwt_encode({"nbf": now + 100, "iat": now + 100}, ED_KEY)
    with pytest.raises(JoseError, match="not valid yet"):
        jwt_decode(future, ED_KEY.public_key(), algorithms=["EdDSA"], now=now)
    no_exp = jwt_encode({"a": 1}, ED_KEY)
    with pytest.raises(JoseError, match="no exp"):
        jwt_decode(no_exp, ED_KEY.public_key(), algorithms=["EdDSA"], require_exp=True)
    with pytest.raises(JoseError, match="not accepted"):
        jwt_decode(no_exp, ED_KEY.public_key(), algorithms=["ES256"])
    with pytest.raises(JoseError, match="not a number"):
        jwt_decode(jwt_encode({"exp": "soon"}, ED_KEY), ED_KEY.public_key(), algorithms=["EdDSA"])


def test_alg_none_hs256_and_key_confusion_are_refused() -> None:
    body = b64url_encode(b'{"a":1}')
    for alg in ("none", "HS256"):
        head = b64url_encode(json.dumps({"alg": alg}).encode())
        with pytest.raises(JoseError):
            jws_verify(f"{head}.{body}.", ED_KEY.public_key(), algorithms=["EdDSA", alg])
    # An EdDSA token does not verify under another key type even if the caller allows every algorithm.
    token = jws_sign(b"x", ED_KEY)
    with pytest.raises(JoseError, match="verification failed"):
        jws_verify(token, EC_KEY.public_key(), algorithms=["EdDSA", "ES256", "RS256"])
    other = ed25519.Ed25519PrivateKey.generate()
    assert jws_verify(token, [other.public_key(), ED_KEY.public_key()], algorithms=["EdDSA"])[1] == b"x"


# ------------------------------------------------------------------------------------------ property tests


@given(st.binary(max_size=300))
def test_b64url_round_trip(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64url_decode(text) == data


@pytest.mark.parametrize("text", ["a", "ab+c", "ab/c", "a b", "é", "abc\n"])
def test_b64url_rejects_non_alphabet(text: str) -> None:
    with pytest.raises(JoseError):
        b64url_decode(text)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2048))
def test_jwe_ec_round_trip_property(data: bytes) -> None:
    assert jwe_decrypt(jwe_encrypt(data, EC_KEY.public_key()), EC_KEY) == data


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200),
        st.dictionaries(
            st.sampled_from(["protected", "encrypted_key", "iv", "ciphertext", "tag", "header", "aad"]),
            st.one_of(st.text(max_size=60), st.integers(), st.none(), st.dictionaries(st.text(max_size=5), st.text())),
        ),
    )
)
def test_jwe_decrypt_garbage_only_raises_jose_error(value: object) -> None:
    with pytest.raises(JoseError):
        jwe_decrypt(value, EC_KEY)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_jwt_decode_garbage_only_raises_jose_error(token: str) -> None:
    with pytest.raises(JoseError):
        jwt_decode(token, ED_KEY.public_key(), algorithms=["EdDSA", "ES256", "RS256"])


def test_deeply_nested_json_is_a_jose_error() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(JoseError):
        jose.parse_json(deep)
    token = b64url_encode(b'{"alg":"EdDSA"}') + "." + b64url_encode(deep) + "." + b64url_encode(b"x" * 64)
    with pytest.raises(JoseError):
        jose.jwt_unverified(token)
    with pytest.raises(JoseError):
        jwe_decrypt(b"{" + b'"a":' * 50_000 + b"1" + b"}" * 50_000, EC_KEY)
