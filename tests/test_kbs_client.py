"""The KBS client's pure parts (URIs, mismatch details, error shapes, admin token) and its network-error mapping."""

from __future__ import annotations

import base64
import json
import socket
import time

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given
from hypothesis import strategies as st

from cai_tui.clients.kbs import (
    KbsClient,
    KbsError,
    KbsUnreachable,
    ResourceUri,
    attest_body,
    body_generation,
    bound_runtime_data,
    error_from_response,
    guess_flavour,
    make_admin_token,
    parse_kbs_uri,
    parse_version_mismatch,
    runtime_data_digest,
    sample_evidence,
)
from cai_tui.crypto.jose import jwt_decode


@pytest.mark.parametrize(
    "uri,expected",
    [
        ("kbs:///default/test/model_key", ResourceUri("default", "test", "model_key")),
        ("kbs:///default/aliyun/model-decryption-key", ResourceUri("default", "aliyun", "model-decryption-key")),
        ("kbs://trustee.example:8080/a/b/c", ResourceUri("a", "b", "c")),
        ("kbs://127.0.0.1/repo/type/v1.2", ResourceUri("repo", "type", "v1.2")),
    ],
)
def test_parse_kbs_uri_valid(uri: str, expected: ResourceUri) -> None:
    assert parse_kbs_uri(uri) == expected
    assert parse_kbs_uri(uri).path == f"{expected.repository}/{expected.type}/{expected.tag}"


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "default/test/model_key",
        "https:///default/test/model_key",
        "kbs:///default/test",
        "kbs:///default/test/model_key/extra",
        "kbs:///default//model_key",
        "kbs:///default/test/",
        "kbs:////default/test/key",
        "kbs:///../test/key",
        "kbs:///default/./key",
        "kbs:///default/test/key?x=1",
        "kbs:///default/test/key#frag",
        "kbs:///default/te\x00st/key",
        "kbs:///default\\test/key/x",
    ],
)
def test_parse_kbs_uri_invalid(uri: str) -> None:
    with pytest.raises(ValueError):
        parse_kbs_uri(uri)


_SEG = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#\\%"), min_size=1)


@given(_SEG, _SEG, _SEG)
def test_parse_kbs_uri_property(repo: str, typ: str, tag: str) -> None:
    uri = f"kbs:///{repo}/{typ}/{tag}"
    if {repo, typ, tag} & {".", ".."}:
        with pytest.raises(ValueError):
            parse_kbs_uri(uri)
    else:
        assert parse_kbs_uri(uri) == ResourceUri(repo, typ, tag)


def test_parse_version_mismatch() -> None:
    detail = (
        "Attestation error: RCAR handshake Auth failed: "
        "KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is 0.1.0"
    )
    assert parse_version_mismatch(detail) == ("0.4.0", "0.1.0")
    assert parse_version_mismatch("KBS Client Protocol Version Mismatch: expect 0.1.1 while the request is 0.2.0") == (
        "0.1.1",
        "0.2.0",
    )
    assert parse_version_mismatch("Attestation error: RCAR handshake Auth failed: deserialize Request") is None
    assert parse_version_mismatch("") is None


def _response(status: int, body: bytes | str, content_type: str = "application/json") -> httpx.Response:
    request = httpx.Request("GET", "http://127.0.0.1:1/kbs/v0/resource/a/b/c")
    content = body.encode() if isinstance(body, str) else body
    return httpx.Response(status, content=content, headers={"Content-Type": content_type}, request=request)


@pytest.mark.parametrize(
    "status,variant,flavour",
    [
        (403, "PolicyDeny", "alibaba"),
        (401, "PolicyDeny", "upstream"),
        (500, "PluginInternalError", "alibaba"),
        (401, "PluginInternalError", "upstream"),
        (502, "AttestationError", "alibaba"),
        (401, "AttestationError", "upstream"),
        (400, "SerdeError", "alibaba"),
        (401, "TokenNotFound", "unknown"),
        (404, "InvalidRequestPath", "unknown"),
    ],
)
def test_error_from_response_kbs_shape(status: int, variant: str, flavour: str) -> None:
    body = f'{{"type":"https://github.com/confidential-containers/kbs/errors/{variant}","detail":"some detail"}}'
    err = error_from_response(_response(status, body))
    assert (err.status, err.type_variant, err.detail, err.flavour) == (status, variant, "some detail", flavour)
    assert guess_flavour(status, variant) == flavour


def test_error_from_response_gateway_and_text_shapes() -> None:
    err = error_from_response(_response(500, '{"error":"Failed to forward request to KBS"}'))
    assert err.flavour == "gateway" and err.type_variant is None
    assert err.detail == "Failed to forward request to KBS"
    err = error_from_response(_response(404, "404 page not found", "text/plain"))
    assert err.status == 404 and err.detail == "404 page not found" and err.flavour == "unknown"
    err = error_from_response(_response(502, b"\xff\xfe not json"))
    assert err.status == 502 and err.type_variant is None


def test_admin_token_is_eddsa_with_iat_exp_and_role() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    token = make_admin_token(pem, now=1_000_000)
    claims = jwt_decode(token, key.public_key(), algorithms=["EdDSA"], now=1_000_100)
    # role "admin": upstream HEAD's bearer-JWT providers require a role; its shipped ACL names "admin".
    assert claims == {"iat": 1_000_000, "exp": 1_000_000 + 7200, "role": "admin"}
    bare = jwt_decode(
        make_admin_token(pem, now=1_000_000, role=None), key.public_key(), algorithms=["EdDSA"], now=1_000_100
    )
    assert bare == {"iat": 1_000_000, "exp": 1_000_000 + 7200}
    with pytest.raises(ValueError, match="Ed25519"):
        ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        make_admin_token(ec_pem)
    with pytest.raises(ValueError, match="PEM"):
        make_admin_token(b"not a key")


def test_sample_evidence_binds_runtime_data() -> None:
    a = sample_evidence({"nonce": "n1", "tee-pubkey": {"kty": "EC"}})
    b = sample_evidence({"nonce": "n2", "tee-pubkey": {"kty": "EC"}})
    assert a["svn"] == "1" and a["report_data"] != b["report_data"]


def test_sample_evidence_is_standard_base64_of_the_canonical_sha384() -> None:
    # Upstream's own vector (attestation-service lib.rs test): {"b":1,"a":"test","c":{"d":"e"}} → this SHA-384.
    want = bytes.fromhex(
        "e71ce8e70d814ba6639c3612ebee0ff1f76f650f8dbb5e47157e0f3f525cd22c4597480a186427c813ca941da78870c3"
    )
    ev = sample_evidence({"b": 1, "a": "test", "c": {"d": "e"}})
    assert ev["report_data"] == base64.b64encode(want).decode()  # standard alphabet, padded
    assert runtime_data_digest({"c": {"d": "e"}, "a": "test", "b": 1}) == want  # insertion order is irrelevant
    assert len(runtime_data_digest({"a": 1}, "sha512")) == 64 and len(runtime_data_digest({"a": 1}, "sha256")) == 32
    with pytest.raises(ValueError, match="sha384"):
        runtime_data_digest({"a": 1}, "md5")


def test_bound_runtime_data_and_attest_body_per_protocol_version() -> None:
    jwk = {"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW", "x": "X", "y": "Y"}
    # From 0.4.0 the KBS binds additional-evidence too (kbs/src/attestation/backend.rs), "" when none.
    assert bound_runtime_data("0.4.0", "N", jwk) == {"tee-pubkey": jwk, "nonce": "N", "additional-evidence": ""}
    assert bound_runtime_data("0.2.0", "N", jwk) == {"tee-pubkey": jwk, "nonce": "N"}
    ev = {"svn": "1", "report_data": "AA=="}
    assert attest_body("0.4.0", nonce="N", tee_pubkey=jwk, evidence=ev) == {
        "runtime-data": {"nonce": "N", "tee-pubkey": jwk},
        "tee-evidence": {"primary_evidence": ev, "additional_evidence": ""},
    }
    assert attest_body("0.2.0", nonce="N", tee_pubkey=jwk, evidence=ev) == {"tee-pubkey": jwk, "tee-evidence": ev}
    assert attest_body("0.1.1", nonce="N", tee_pubkey=jwk, evidence=ev) == {"tee-pubkey": jwk, "tee-evidence": ev}
    old = attest_body("0.1.0", nonce="N", tee_pubkey=jwk, evidence=ev)
    assert old["tee-pubkey"] == jwk and json.loads(old["tee-evidence"]) == ev  # a String in that kbs-types
    with pytest.raises(ValueError, match=r"0\.4\.0"):
        attest_body("0.2.0", nonce="N", tee_pubkey=jwk, evidence=ev, init_data={"format": "toml", "body": ""})
    assert [body_generation(v) for v in ("0.1.0", "0.1.1", "0.2.0", "0.3.9", "0.4.0", "1.0.0")] == [
        "0.1.0",
        "0.1.1",
        "0.1.1",
        "0.1.1",
        "0.4.0",
        "0.4.0",
    ]


def test_connection_refused_is_kbs_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with KbsClient(f"http://127.0.0.1:{port}", timeout=2) as client, pytest.raises(KbsUnreachable) as info:
        client.auth()
    assert info.value.reason == "refused"
    assert isinstance(info.value, KbsError) and info.value.status is None


def test_silent_server_is_a_timeout_not_a_hang() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)  # accepts (in the backlog), never answers
        port = server.getsockname()[1]
        t0 = time.monotonic()
        with KbsClient(f"http://127.0.0.1:{port}", timeout=0.3) as client, pytest.raises(KbsUnreachable) as info:
            client.auth()
        assert info.value.reason == "timeout"
        assert time.monotonic() - t0 < 2.0


def test_get_resource_without_attestation_is_refused_locally() -> None:
    with KbsClient("http://127.0.0.1:9") as client, pytest.raises(KbsError, match="attest first"):
        client.get_resource("kbs:///a/b/c")
