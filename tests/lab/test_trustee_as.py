"""The lab Attestation Service REST API, as a TNG-style verifier uses it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509

sys.path.insert(0, str(Path(__file__).parent))
from conftest_trustee import *  # noqa: F403
from conftest_trustee import log_has

from cai_tui.clients.kbs import sample_evidence
from cai_tui.crypto.jose import b64url_encode, jwt_decode, public_key_from_jwk
from cai_tui.lab.trustee import TrusteeLab


def _request(tee: str = "sample", evidence: object = None, policy_ids: list[str] | None = None) -> dict:
    runtime = {"nonce": "n0", "tee-pubkey": {"kty": "EC"}}
    ev = evidence if evidence is not None else sample_evidence(runtime)
    return {
        "verification_requests": [
            {
                "tee": tee,
                "evidence": b64url_encode(json.dumps(ev).encode()),
                "runtime_data": {"structured": runtime},
            }
        ],
        "policy_ids": policy_ids or [],
    }


def test_challenge_is_a_signed_nonce(trustee: TrusteeLab) -> None:
    as_url = trustee.url + "/as"
    body = httpx.post(as_url + "/challenge", json={}).json()
    jwks = httpx.get(trustee.base_url + "/.well-known/jwks.json").json()
    key = public_key_from_jwk(jwks["keys"][0])
    claims = jwt_decode(body["extra-params"]["jwt"], key, algorithms=["ES256"], require_exp=True)
    assert claims["nonce"] == body["nonce"]
    assert httpx.post(as_url + "/challenge", json={"tee": "tdx", "tee_params": ""}).text == ""
    resp = httpx.post(as_url + "/challenge", json={"tee": "martian"})
    assert resp.status_code == 500 and resp.text.startswith("An internal error occured")
    assert httpx.post(as_url + "/challenge", content=b"{nope").status_code == 400


@pytest.mark.parametrize("token_alg", ["ES256", "EdDSA"])
def test_attestation_token_verifies_with_jwks_and_certificate(make_trustee, token_alg: str) -> None:
    lab = make_trustee(token_alg=token_alg)
    resp = httpx.post(lab.url + "/as/attestation", json=_request())
    assert resp.status_code == 200
    token = resp.text
    jwk = httpx.get(lab.base_url + "/.well-known/jwks.json").json()["keys"][0]
    assert jwk["alg"] == token_alg and jwk["use"] == "sig"
    claims = jwt_decode(token, public_key_from_jwk(jwk), algorithms=[token_alg], require_exp=True)
    assert claims["eat_profile"] == "tag:github.com,2024:confidential-containers/Trustee"
    cpu0 = claims["submods"]["cpu0"]
    assert cpu0["ear.status"] == "affirming" and cpu0["ear.appraisal-policy-id"] == "default"
    assert cpu0["ear.veraison.annotated-evidence"]["runtime_data_claims"]["nonce"] == "n0"
    cert = x509.load_pem_x509_certificate(httpx.get(lab.url + "/as/certificate").content)
    assert jwt_decode(token, cert.public_key(), algorithms=[token_alg]) == claims  # type: ignore[arg-type]


def test_single_request_shape_of_older_restful_as(trustee: TrusteeLab) -> None:
    req = _request()["verification_requests"][0]
    resp = httpx.post(trustee.base_url + "/attestation", json={**req, "policy_ids": ["default"]})
    assert resp.status_code == 200 and resp.text.count(".") == 2


def test_policy_decides_the_ear_status(trustee: TrusteeLab) -> None:
    rego = 'package policy\n# lab\nstatus := "contraindicated"\n'
    resp = httpx.post(
        trustee.base_url + "/api/as/policy",
        json={"type": "rego", "policy_id": "strict", "policy": b64url_encode(rego.encode())},
    )
    assert resp.status_code == 200
    assert httpx.get(trustee.base_url + "/api/as/policy/strict").text == rego
    assert {"policy-id": "strict"} in httpx.get(trustee.base_url + "/policy").json()
    token = httpx.post(trustee.base_url + "/attestation", json=_request(policy_ids=["strict"])).text
    key = trustee.attestation.public_key
    assert jwt_decode(token, key, algorithms=["ES256"])["submods"]["cpu0"]["ear.status"] == "contraindicated"
    resp = httpx.post(trustee.base_url + "/attestation", json=_request(policy_ids=["missing"]))
    assert resp.status_code == 500 and "policy missing not found" in resp.text


def test_attestation_status_setting(make_trustee) -> None:
    lab = make_trustee(attestation_status="warning")
    token = httpx.post(lab.base_url + "/attestation", json=_request()).text
    claims = jwt_decode(token, lab.attestation.public_key, algorithms=["ES256"])
    assert claims["submods"]["cpu0"]["ear.status"] == "warning"
    assert claims["submods"]["cpu0"]["ear.trustworthiness-vector"]["hardware"] > 32


@pytest.mark.parametrize(
    "body,status,text",
    [
        (b"not json", 400, "Json deserialize error"),
        (b"{}", 400, "missing field `verification_requests`"),
        (json.dumps(_request(tee="tdx")).encode(), 500, "cannot verify a TDX quote"),
        (json.dumps(_request(tee="snp")).encode(), 500, "no snp verifier"),
        (json.dumps(_request(tee="pdp11")).encode(), 500, "tee `pdp11 not supported`"),
        (json.dumps(_request(evidence="just a string")).encode(), 500, "Deserialize Quote failed."),
        (
            json.dumps({"verification_requests": [{"tee": "sample", "evidence": "%%%"}], "policy_ids": []}).encode(),
            500,
            "base64 decode evidence",
        ),
        (
            json.dumps({"verification_requests": [{"tee": "sample", "evidence": "bm90IGpzb24"}]}).encode(),
            500,
            "failed to parse evidence as JSON",
        ),
    ],
)
def test_attestation_errors(trustee: TrusteeLab, body: bytes, status: int, text: str) -> None:
    resp = httpx.post(trustee.base_url + "/attestation", content=body)
    assert resp.status_code == status
    assert text in resp.text
    if status == 500:
        assert resp.text.startswith("An internal error occured: \n0: ")


def test_tdx_accepted_with_the_setting(make_trustee) -> None:
    lab = make_trustee(accept_tdx_evidence=True)
    resp = httpx.post(lab.base_url + "/attestation", json=_request(tee="tdx", evidence={"quote": "AAAA"}))
    assert resp.status_code == 200


def test_health_and_set_policy_errors(trustee: TrusteeLab) -> None:
    assert httpx.get(trustee.base_url + "/healthz").status_code == 200
    resp = httpx.post(trustee.base_url + "/policy", json={"policy_id": "x", "policy": "***"})
    assert resp.status_code == 500 and resp.text.startswith("An internal error occured")
    assert httpx.post(trustee.base_url + "/policy", json={"policy": "AA"}).status_code == 400
    assert httpx.get(trustee.base_url + "/policy/none").status_code == 500
    assert log_has(trustee, "SetPolicy") is False
