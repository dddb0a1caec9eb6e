"""The lab KBS encrypts resources only to the keys a KBS of its protocol version can encrypt to, in that version's shape.

Upstream (confidential-containers/trustee, openanolis/trustee release tags): before 0.1.1 ``TeePubKey`` is a struct
``{kty, alg, n, e}`` (an EC key fails to deserialise at attest), before 0.2.0 only ``alg = RSA1_5`` is encrypted to
(0.1.1: ``Only RSA key is support for TEE pub key`` for EC) and the answer is the legacy kbs-types < 0.10 JWE (header
JSON as text, no AAD, the tag inside ``ciphertext``); from 0.2.0 RSA1_5 / RSA-OAEP-256 and ECDH-ES+A256KW on P-256
(P-521 too in the upstream flavour at 0.4.0), as an RFC 7516 JWE.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

sys.path.insert(0, str(Path(__file__).parent))
from conftest_trustee import *  # noqa: F403
from conftest_trustee import log_has

from cai_tui.clients.kbs import KbsClient, KbsError, tee_key_spec
from cai_tui.crypto.jose import jwe_decrypt, public_jwk

SECRET = b"jwe-version-test-key"
URI = "kbs:///default/test/model_key"
RESOURCE = "/kbs/v0/resource/default/test/model_key"


def _lab(make_trustee: Any, version: str, flavour: str = "upstream") -> tuple[Any, str]:
    lab = make_trustee(protocol_version=version, flavour=flavour)
    lab.set_resource("default", "test", "model_key", SECRET)
    return lab, lab.url if flavour == "alibaba" else lab.base_url


def _fetch_with(url: str, version: str, key_type: str, alg: str) -> tuple[httpx.Response, KbsClient]:
    """Attest with a key of ``key_type``/``alg`` and GET the resource raw (no client-side decryption)."""
    kc = KbsClient(url, protocol_version=version)
    kc.attest_sample(key_type=key_type, key_alg=alg, negotiate=False)  # type: ignore[arg-type]
    assert kc.token is not None
    resp = httpx.get(url + RESOURCE, headers={"Authorization": f"Bearer {kc.token}"})
    return resp, kc


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.1.0", ("RSA", "RSA1_5")),
        ("0.1.1", ("RSA", "RSA1_5")),
        ("0.2.0", ("EC", "ECDH-ES+A256KW")),
        ("0.4.0", ("EC", "ECDH-ES+A256KW")),
    ],
)
def test_client_chooses_the_key_the_version_can_encrypt_to(version: str, expected: tuple[str, str]) -> None:
    assert tee_key_spec(version) == expected
    with KbsClient("http://127.0.0.1:9", protocol_version=version) as kc:
        jwk = kc.new_tee_key()
    assert (jwk["kty"], jwk["alg"]) == expected


@pytest.mark.parametrize("flavour", ["upstream", "alibaba"])
@pytest.mark.parametrize("version", ["0.1.0", "0.1.1"])
def test_legacy_versions_answer_rsa1_5_in_the_legacy_shape(make_trustee: Any, version: str, flavour: str) -> None:
    _, url = _lab(make_trustee, version, flavour)
    resp, kc = _fetch_with(url, version, "RSA", "RSA1_5")
    assert resp.status_code == 200, resp.text
    jwe = resp.json()
    assert jwe["protected"].startswith("{") and '"RSA1_5"' in jwe["protected"] and jwe["tag"] == ""
    assert kc._tee_key is not None
    assert jwe_decrypt(jwe, kc._tee_key.private) == SECRET
    kc.close()


def test_0_1_0_refuses_an_ec_key_at_attest(make_trustee: Any) -> None:
    lab, url = _lab(make_trustee, "0.1.0")
    with KbsClient(url, protocol_version="0.1.0") as kc, pytest.raises(KbsError):
        kc.attest_sample(key_type="EC", negotiate=False)
    assert log_has(lab, "missing field `n`")


@pytest.mark.parametrize(
    ("key_type", "alg", "cause"),
    [("EC", "ECDH-ES+A256KW", "Only RSA key is support for TEE pub key"), ("RSA", "RSA-OAEP-256", "not RSA1_5")],
)
def test_0_1_1_refuses_to_encrypt_to_anything_but_rsa1_5(
    make_trustee: Any, key_type: str, alg: str, cause: str
) -> None:
    lab, url = _lab(make_trustee, "0.1.1")
    resp, kc = _fetch_with(url, "0.1.1", key_type, alg)
    kc.close()
    assert resp.status_code == 401 and resp.json()["detail"] == "JWE failed"
    assert log_has(lab, cause)


@pytest.mark.parametrize("version", ["0.2.0", "0.4.0"])
@pytest.mark.parametrize(("key_type", "alg"), [("EC", "ECDH-ES+A256KW"), ("RSA", "RSA-OAEP-256"), ("RSA", "RSA1_5")])
def test_from_0_2_0_every_documented_key_gets_an_rfc7516_jwe(
    make_trustee: Any, version: str, key_type: str, alg: str
) -> None:
    _, url = _lab(make_trustee, version)
    resp, kc = _fetch_with(url, version, key_type, alg)
    assert resp.status_code == 200, resp.text
    jwe = resp.json()
    assert not jwe["protected"].startswith("{") and jwe["tag"] != ""
    assert kc._tee_key is not None
    assert jwe_decrypt(jwe, kc._tee_key.private) == SECRET
    kc.close()


@pytest.mark.parametrize(("flavour", "accepted"), [("upstream", True), ("alibaba", False)])
def test_p521_only_in_the_upstream_flavour_at_0_4_0(make_trustee: Any, flavour: str, accepted: bool) -> None:
    from cai_tui.lab.trustee.jwe import JweRefused, resource_jwe

    jwk = public_jwk(ec.generate_private_key(ec.SECP521R1()), alg="ECDH-ES+A256KW")
    if accepted:
        assert resource_jwe(jwk, b"x", version="0.4.0", flavour=flavour)["tag"]
    else:
        with pytest.raises(JweRefused, match="curve P-521"):
            resource_jwe(jwk, b"x", version="0.4.0", flavour=flavour)
    with pytest.raises(JweRefused, match="curve P-521"):
        resource_jwe(jwk, b"x", version="0.2.0", flavour="upstream")
    big = public_jwk(rsa.generate_private_key(public_exponent=65537, key_size=4096 + 8), alg="RSA1_5")
    with pytest.raises(JweRefused, match="invalid modulus"):
        resource_jwe(big, b"x", version="0.4.0", flavour=flavour)
