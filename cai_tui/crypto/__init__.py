"""Cryptographic helpers of the core (JOSE: JWK, JWE, JWS/JWT), built on ``cryptography`` only."""

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

__all__ = [
    "JoseError",
    "b64url_decode",
    "b64url_encode",
    "concat_kdf",
    "jwe_decrypt",
    "jwe_encrypt",
    "jws_sign",
    "jws_verify",
    "jwt_decode",
    "jwt_encode",
    "private_key_from_jwk",
    "public_jwk",
    "public_key_from_jwk",
]
