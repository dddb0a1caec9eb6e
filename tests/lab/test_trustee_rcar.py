"""The RCAR handshake against the lab KBS with real clients (httpx and KbsClient)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_trustee import *  # noqa: F403
from conftest_trustee import log_has

from cai_tui.clients.kbs import KbsClient, KbsError, KbsProtocolMismatch
from cai_tui.crypto.jose import b64url_decode, jwt_unverified
from cai_tui.lab.trustee import TrusteeLab

URI = "kbs:///default/test/model_key"
SECRET = b"seed-model-key-material"


@pytest.mark.parametrize(
    ("version", "key_type", "alg"),
    [
        ("0.1.0", None, "RSA1_5"),  # the seed's chart: the client picks the only key such a KBS encrypts to
        ("0.4.0", "EC", "ECDH-ES+A256KW"),
        ("0.4.0", "RSA", "RSA-OAEP-256"),
    ],
)
def test_full_rcar_flow_decrypts_the_jwe(make_trustee: Any, version: str, key_type: str | None, alg: str) -> None:
    trustee = make_trustee(protocol_version=version)
    trustee.set_resource("default", "test", "model_key", SECRET)
    with KbsClient(trustee.url, protocol_version=version) as client:
        auth = client.auth(tee="sample", extra_params="")
        assert auth.status == 200 and auth.cookie and auth.nonce and auth.server_expected_version is None
        token = client.attest_sample(key_type=key_type)  # type: ignore[arg-type]
        header, claims = jwt_unverified(token)
        assert header["alg"] == "ES256"
        assert claims["tee-pubkey"] == client.tee_public_jwk
        assert client.tee_public_jwk is not None and client.tee_public_jwk["alg"] == alg
        assert claims["submods"]["cpu0"]["ear.status"] == "affirming"
        annotated = claims["submods"]["cpu0"]["ear.veraison.annotated-evidence"]
        assert "sample" in annotated and annotated["runtime_data_claims"]["nonce"] == auth.nonce
        assert client.get_resource(URI) == SECRET
        # The answer really is a JWE for this key type (before 0.2.0 the legacy answer: the header as JSON text).
        resp = httpx.get(
            trustee.base_url + "/kbs/v0/resource/default/test/model_key",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status_code == 200
        text = resp.json()["protected"]
        protected = json.loads(text if version == "0.1.0" else b64url_decode(text))
        assert protected["enc"] == "A256GCM"
        assert protected["alg"] == alg
        assert resp.text.find(SECRET.decode()) == -1


def test_seed_curl_request(trustee: TrusteeLab) -> None:
    """The seed's check: ``curl -X POST ${TRUSTEE_URL}/kbs/v0/auth`` with its exact JSON body."""
    resp = httpx.post(
        trustee.url + "/kbs/v0/auth",
        content=b'{"version":"0.1.0","tee":"tdx","extra-params":"foo"}',
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 200
    body = resp.json()
    assert list(body) == ["nonce", "extra-params"] and body["extra-params"] == ""
    assert len(b64url_decode(body["nonce"].replace("+", "-").replace("/", "_"))) == 32
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith("kbs-session-id=") and "Expires=" in cookie
    # Also straight at the KBS, without the release prefix.
    assert httpx.post(trustee.base_url + "/kbs/v0/auth", json=json.loads(resp.request.content)).status_code == 200


@pytest.mark.parametrize("flavour,status", [("alibaba", 502), ("upstream", 401)])
@pytest.mark.parametrize("server,client", [("0.1.0", "0.4.0"), ("0.4.0", "0.1.0")])
def test_protocol_mismatch_message_and_parse(make_trustee, flavour: str, status: int, server: str, client: str) -> None:
    lab = make_trustee(protocol_version=server, flavour=flavour)
    resp = httpx.post(lab.base_url + "/kbs/v0/auth", json={"version": client, "tee": "tdx", "extra-params": "foo"})
    assert resp.status_code == status
    assert resp.json() == {
        "type": "https://github.com/confidential-containers/kbs/errors/AttestationError",
        "detail": "Attestation error: RCAR handshake Auth failed: "
        f"KBS Client Protocol Version Mismatch: expect ={server} while the request is {client}",
    }
    with KbsClient(lab.base_url, protocol_version=client) as kc:
        with pytest.raises(KbsProtocolMismatch) as info:
            kc.auth()
        err = info.value
        assert (err.server_expected_version, err.client_version, err.status) == (server, client, status)
        assert err.type_variant == "AttestationError"
        assert err.flavour == ("alibaba" if flavour == "alibaba" else "upstream")
        result = kc.auth(raise_on_mismatch=False)
        assert result.nonce is None and result.server_expected_version == server
        negotiated = kc.auth(negotiate=True)
        assert negotiated.nonce and negotiated.retried_from == client and kc.protocol_version == server
    assert log_has(lab, f"expect ={server} while the request is {client}")


def test_protocol_040_uses_composite_evidence(make_trustee) -> None:
    lab = make_trustee(protocol_version="0.4.0", flavour="upstream")
    lab.set_resource("r", "t", "k", b"v")
    with KbsClient(lab.base_url, protocol_version="0.4.0") as kc:
        kc.attest_sample()
        assert kc.get_resource("kbs:///r/t/k") == b"v"


def test_malformed_auth_requests(trustee: TrusteeLab) -> None:
    url = trustee.base_url + "/kbs/v0/auth"
    for body in (b"{", b"[]", b'{"version":"0.1.0","tee":"tdx"}', b'{"version":"0.1.0","tee":"xx","extra-params":""}'):
        resp = httpx.post(url, content=body)
        assert resp.status_code == 502
        assert resp.json()["detail"] == "Attestation error: RCAR handshake Auth failed: deserialize Request"
    resp = httpx.post(url, json={"version": "one", "tee": "tdx", "extra-params": ""})
    assert resp.json()["detail"].endswith("failed to parse KBS version")


def test_attest_checks_cookie_session_and_nonce(make_trustee) -> None:
    trustee = make_trustee(protocol_version="0.4.0")
    url = trustee.base_url + "/kbs/v0/attest"
    body = {
        "runtime-data": {"nonce": "x", "tee-pubkey": {"kty": "EC", "crv": "P-256", "alg": "a", "x": "A", "y": "A"}},
        "tee-evidence": {"primary_evidence": {}, "additional_evidence": ""},
    }
    resp = httpx.post(url, json=body)
    assert resp.status_code == 502
    assert resp.json()["detail"] == "Attestation error: RCAR handshake Attest failed"
    assert log_has(trustee, "RCAR attest: cookie not found")
    resp = httpx.post(url, json=body, headers={"Cookie": "kbs-session-id=deadbeef"})
    assert resp.status_code == 502 and log_has(trustee, "session not found")
    auth = httpx.post(trustee.base_url + "/kbs/v0/auth", json={"version": "0.4.0", "tee": "sample", "extra-params": ""})
    resp = httpx.post(url, json=body, headers={"Cookie": f"kbs-session-id={auth.cookies['kbs-session-id']}"})
    assert resp.status_code == 502 and log_has(trustee, "the nonce in the handshake session is different")


def test_tdx_labelled_evidence_needs_the_lab_setting(make_trustee) -> None:
    strict = make_trustee()
    with KbsClient(strict.base_url) as kc:
        kc.auth(tee="tdx", extra_params="foo")
        with pytest.raises(KbsError) as info:
            kc.attest_sample()
        assert info.value.status == 502 and info.value.type_variant == "AttestationError"
    assert log_has(strict, "cannot verify a TDX quote")
    lenient = make_trustee(accept_tdx_evidence=True)
    lenient.set_resource("default", "test", "model_key", b"k")
    with KbsClient(lenient.base_url) as kc:
        kc.auth(tee="tdx", extra_params="foo")
        token = kc.attest_sample()
        assert "tdx" in jwt_unverified(token)[1]["submods"]["cpu0"]["ear.veraison.annotated-evidence"]
        assert kc.get_resource(URI) == b"k"


def test_session_expiry_and_bearer_token(make_trustee) -> None:
    lab = make_trustee(session_ttl_s=0.4)
    lab.set_resource("default", "test", "model_key", b"k")
    with KbsClient(lab.base_url) as kc:
        kc.attest_sample()
        assert kc.get_resource(URI, use_token=False) == b"k"  # cookie alone
        time.sleep(0.6)
        with pytest.raises(KbsError) as info:
            kc.get_resource(URI, use_token=False)
        assert info.value.type_variant == "TokenNotFound" and info.value.status == 401
        assert kc.get_resource(URI) == b"k"  # the token (5 min) outlives the session
        kc.session_id = None
        assert kc.get_resource(URI) == b"k"  # bearer only
    with KbsClient(lab.base_url) as kc:
        kc.auth(tee="sample", extra_params="")
        time.sleep(0.6)
        with pytest.raises(KbsError):
            kc.attest_sample()
    assert log_has(lab, "session expired.") or log_has(lab, "session not found")


def test_forged_and_foreign_tokens_are_refused(trustee: TrusteeLab, make_trustee) -> None:
    other = make_trustee()
    with KbsClient(other.base_url) as kc:
        foreign = kc.attest_sample()
    url = trustee.base_url + "/kbs/v0/resource/default/test/model_key"
    for token in (foreign, foreign[:-4] + "AAAA", "a.b.c", "garbage"):
        resp = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401
        assert resp.json()["type"].endswith("/TokenVerifierError")
    resp = httpx.get(url)
    assert resp.status_code == 401 and resp.json()["detail"] == "Attestation Token not found"


def test_reattest_on_an_attested_session_returns_the_same_token(trustee: TrusteeLab) -> None:
    with KbsClient(trustee.base_url) as kc:
        kc.attest_sample()
        cookie = {"Cookie": f"kbs-session-id={kc.session_id}"}
        # A well-formed 0.1.0 body (the lab's default version) whose evidence binds nothing: never verified, since
        # an attested session hands back its token after deserialising the body (backend.rs order).
        body = {"tee-pubkey": kc.tee_public_jwk, "tee-evidence": '{"svn":"1"}'}
        first = httpx.post(trustee.base_url + "/kbs/v0/attest", json=body, headers=cookie)
        assert first.status_code == 200 and first.json()["token"] == kc.token
        # The client itself starts a new session for a new key instead of reusing the attested one.
        old_session, old_token = kc.session_id, kc.token
        kc.attest_sample()
        assert kc.session_id != old_session and kc.token != old_token
        assert kc.get_resource(URI) == SECRET


def test_eddsa_tokens(make_trustee) -> None:
    lab = make_trustee(token_alg="EdDSA")
    lab.set_resource("a", "b", "c", b"d")
    with KbsClient(lab.base_url) as kc:
        assert jwt_unverified(kc.attest_sample())[0]["alg"] == "EdDSA"
        assert kc.get_resource("kbs:///a/b/c") == b"d"
