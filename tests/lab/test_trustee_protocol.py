"""The lab Trustee speaks each KBS protocol version as upstream does, and verifies the sample binding as upstream does.

Facts from upstream (confidential-containers/trustee, openanolis/trustee): protocol 0.1.0 (openanolis ≤ 1.5) takes
``{"tee-pubkey", "tee-evidence": "<text>"}``, 0.1.1/0.2.0 (Trustee v0.10–v0.13) ``{"tee-pubkey", "tee-evidence": {…}}``,
0.4.0 ``{"runtime-data", "tee-evidence": {"primary_evidence", "additional_evidence"}}``; the KBS binds
``{"tee-pubkey", "nonce"[, "additional-evidence"]}`` hashed as RFC 8785 canonical JSON with SHA-384, and the sample
verifier compares it with ``report_data`` decoded as standard base64. A failed attest answers the generic
``RCAR handshake Attest failed`` (401 upstream, 502 Alibaba); the cause is only in the server log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_trustee import *  # noqa: F403
from conftest_trustee import log_has

from cai_tui.clients.kbs import KbsClient, KbsError, attest_body, bound_runtime_data, make_admin_token, sample_evidence
from cai_tui.crypto.jose import b64url_encode, jwt_unverified
from cai_tui.lab.trustee import TrusteeLab

VERSIONS = ["0.1.0", "0.1.1", "0.2.0", "0.4.0"]
FLAVOURS = ["upstream", "alibaba"]
ATTEST_FAILED = {
    "type": "https://github.com/confidential-containers/kbs/errors/AttestationError",
    "detail": "Attestation error: RCAR handshake Attest failed",
}
STATUS = {"upstream": 401, "alibaba": 502}
SECRET = b"protocol-test-key"
URI = "kbs:///default/test/model_key"


def _lab(make_trustee: Any, version: str, flavour: str) -> tuple[TrusteeLab, str]:
    lab = make_trustee(protocol_version=version, flavour=flavour)
    lab.set_resource("default", "test", "model_key", SECRET)
    # The Alibaba deployment is reached through its gateway (the seed's TRUSTEE_URL), upstream's KBS directly.
    return lab, (lab.url if flavour == "alibaba" else lab.base_url)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("version", VERSIONS)
def test_client_negotiates_attests_and_fetches(make_trustee: Any, version: str, flavour: str) -> None:
    lab, url = _lab(make_trustee, version, flavour)
    with KbsClient(url, protocol_version="0.1.0") as kc:  # the recipe default: negotiated from the mismatch detail
        token = kc.attest_sample()
        assert kc.version_used == version
        assert kc.negotiated_from == (None if version == "0.1.0" else "0.1.0")
        if version != "0.1.0":
            assert kc.version_note() == f"protocol {version} (negotiated: the server refused 0.1.0)"
        assert kc.get_resource(URI) == SECRET
    bound = jwt_unverified(token)[1]["submods"]["cpu0"]["ear.veraison.annotated-evidence"]["runtime_data_claims"]
    assert ("additional-evidence" in bound) == (version == "0.4.0")
    if version != "0.1.0":
        assert log_has(lab, f"Client Protocol Version Mismatch: expect ={version} while the request is 0.1.0")


def _session(url: str, version: str) -> tuple[str, str]:
    resp = httpx.post(url + "/kbs/v0/auth", json={"version": version, "tee": "sample", "extra-params": ""})
    assert resp.status_code == 200, resp.text
    return resp.json()["nonce"], resp.cookies["kbs-session-id"]


def _jwk() -> dict[str, str]:
    with KbsClient("http://127.0.0.1:9") as kc:
        return kc.new_tee_key()


def _attest(url: str, cookie: str, body: Any) -> httpx.Response:
    return httpx.post(url + "/kbs/v0/attest", json=body, headers={"Cookie": f"kbs-session-id={cookie}"})


def _digest_with_url_safe_chars(runtime_for: Any) -> tuple[dict[str, str], bytes]:
    """A key whose bound digest differs between base64 and base64url (so the encodings can be told apart)."""
    for _ in range(200):
        jwk = _jwk()
        digest = hashlib.sha384(runtime_for(jwk)).digest()
        if any(c in base64.b64encode(digest) for c in b"+/"):
            return jwk, digest
    raise AssertionError("no digest with + or / in 200 tries")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_wrong_bindings_are_refused_as_upstream_refuses_them(make_trustee: Any, flavour: str) -> None:
    lab, url = _lab(make_trustee, "0.4.0", flavour)

    def canonical(nonce: str) -> Any:
        # RFC 8785 by hand for this shape (all values strings, ASCII): keys sorted, no whitespace.
        return lambda jwk: json.dumps(
            {"additional-evidence": "", "nonce": nonce, "tee-pubkey": jwk}, sort_keys=True, separators=(",", ":")
        ).encode()

    cases: list[tuple[str, Any]] = []
    # 1. base64url instead of standard base64 (what our client used to send).
    nonce, cookie = _session(url, "0.4.0")
    jwk, digest = _digest_with_url_safe_chars(canonical(nonce))
    ev = {"svn": "1", "report_data": base64.urlsafe_b64encode(digest).decode()}
    cases.append((cookie, attest_body("0.4.0", nonce=nonce, tee_pubkey=jwk, evidence=ev)))
    # 2. additional-evidence left out of the bound runtime data (what our client used to hash).
    nonce, cookie = _session(url, "0.4.0")
    jwk = _jwk()
    ev = sample_evidence({"tee-pubkey": jwk, "nonce": nonce})
    cases.append((cookie, attest_body("0.4.0", nonce=nonce, tee_pubkey=jwk, evidence=ev)))
    # 3. insertion-ordered JSON instead of canonical JSON.
    nonce, cookie = _session(url, "0.4.0")
    jwk = _jwk()
    loose = json.dumps({"nonce": nonce, "tee-pubkey": jwk, "additional-evidence": ""}, separators=(",", ":"))
    ev = {"svn": "1", "report_data": base64.b64encode(hashlib.sha384(loose.encode()).digest()).decode()}
    cases.append((cookie, attest_body("0.4.0", nonce=nonce, tee_pubkey=jwk, evidence=ev)))
    # 4. bound to another nonce.
    nonce, cookie = _session(url, "0.4.0")
    jwk = _jwk()
    ev = sample_evidence(bound_runtime_data("0.4.0", "another-nonce", jwk))
    cases.append((cookie, attest_body("0.4.0", nonce=nonce, tee_pubkey=jwk, evidence=ev)))
    for cookie, body in cases:
        resp = _attest(url, cookie, body)
        assert resp.status_code == STATUS[flavour] and resp.json() == ATTEST_FAILED
    assert log_has(lab, "REPORT_DATA is different from that in Sample Quote")
    assert log_has(lab, "base64 decode report data for sample evidence")  # case 1: "-"/"_" are not base64
    # The same request with the binding computed by hand as upstream does is accepted.
    nonce, cookie = _session(url, "0.4.0")
    jwk = _jwk()
    ev = {"svn": "1", "report_data": base64.b64encode(hashlib.sha384(canonical(nonce)(jwk)).digest()).decode()}
    resp = _attest(url, cookie, attest_body("0.4.0", nonce=nonce, tee_pubkey=jwk, evidence=ev))
    assert resp.status_code == 200 and "token" in resp.json()


def test_binding_before_0_4_has_no_additional_evidence(make_trustee: Any) -> None:
    lab, url = _lab(make_trustee, "0.2.0", "upstream")
    nonce, cookie = _session(url, "0.2.0")
    jwk = _jwk()
    with_extra = sample_evidence({"tee-pubkey": jwk, "nonce": nonce, "additional-evidence": ""})
    resp = _attest(url, cookie, {"tee-pubkey": jwk, "tee-evidence": with_extra})
    assert resp.status_code == 401 and resp.json() == ATTEST_FAILED
    assert log_has(lab, "REPORT_DATA is different from that in Sample Quote")
    good = sample_evidence({"tee-pubkey": jwk, "nonce": nonce})
    assert _attest(url, cookie, {"tee-pubkey": jwk, "tee-evidence": good}).status_code == 200


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(
    ("version", "shape", "log_text"),
    [
        ("0.4.0", "0.1.1", "deserialize Attestation: missing field `runtime-data`"),
        ("0.4.0", "no-additional", "deserialize Attestation: missing field `additional_evidence`"),
        ("0.2.0", "0.4.0", "deserialize Attestation: missing field `tee-pubkey`"),
        ("0.1.1", "0.4.0", "deserialize Attestation: missing field `tee-pubkey`"),
        ("0.1.0", "0.4.0", "deserialize Attestation: missing field `tee-pubkey`"),
        ("0.1.0", "0.1.1", "deserialize Attestation: invalid type: map, expected a string"),
    ],
)
def test_wrong_body_shape_for_the_version_is_refused(
    make_trustee: Any, flavour: str, version: str, shape: str, log_text: str
) -> None:
    lab, url = _lab(make_trustee, version, flavour)
    nonce, cookie = _session(url, version)
    jwk = _jwk()
    ev = sample_evidence(bound_runtime_data(version, nonce, jwk))
    if shape == "no-additional":
        body: dict[str, Any] = {
            "runtime-data": {"nonce": nonce, "tee-pubkey": jwk},
            "tee-evidence": {"primary_evidence": ev},
        }
    else:
        body = attest_body(shape, nonce=nonce, tee_pubkey=jwk, evidence=ev)
    resp = _attest(url, cookie, body)
    assert resp.status_code == STATUS[flavour] and resp.json() == ATTEST_FAILED
    assert log_has(lab, log_text)
    assert "at line 1 column" in next(line for line in lab.server_log() if log_text in line)
    # The shape of this version, same session, is accepted.
    right = attest_body(version, nonce=nonce, tee_pubkey=jwk, evidence=ev)
    assert _attest(url, cookie, right).status_code == 200


def test_client_without_negotiation_reports_the_mismatch(make_trustee: Any) -> None:
    _, url = _lab(make_trustee, "0.4.0", "upstream")
    with KbsClient(url, protocol_version="0.1.0") as kc, pytest.raises(KbsError) as info:
        kc.attest_sample(negotiate=False)
    assert info.value.status == 401 and "expect =0.4.0 while the request is 0.1.0" in (info.value.detail or "")


# --------------------------------------------------------------------------------------------- admin token


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_admin_token_with_role_is_accepted_by_both_flavours(
    make_trustee: Any, admin_keys: tuple[bytes, bytes], flavour: str
) -> None:
    lab = make_trustee(flavour=flavour)
    with KbsClient(lab.base_url) as kc:
        kc.set_resource("kbs:///repo/type/tag", b"v", admin_keys[0])
        kc.set_resource_policy("package policy\ndefault allow = true\n", admin_keys[0])
        kc.attest_sample()
        assert kc.get_resource("kbs:///repo/type/tag") == b"v"


def test_token_without_role_refused_by_upstream_accepted_by_alibaba(
    make_trustee: Any, admin_keys: tuple[bytes, bytes]
) -> None:
    no_role = make_admin_token(admin_keys[0], role=None)
    reader = make_admin_token(admin_keys[0], role="reader")
    up = make_trustee(flavour="upstream")
    missing = (
        'Admin access denied: Failed to parse claims from token: AdminAccessDenied { reason: "Missing required '
        '`role` claim in JWT" }'
    )
    resp = httpx.post(
        up.base_url + "/kbs/v0/resource/repo/type/tag", content=b"x", headers={"Authorization": f"Bearer {no_role}"}
    )
    assert resp.status_code == 401
    assert resp.json() == {
        "type": "https://github.com/confidential-containers/kbs/errors/AdminAuthInitialization",
        "detail": f"failed to initialize [admin] configuration: {missing}",
    }
    policy = {"policy": b64url_encode(b"package policy\ndefault allow = true\n")}
    resp = httpx.post(
        up.base_url + "/kbs/v0/resource-policy", json=policy, headers={"Authorization": f"Bearer {no_role}"}
    )
    assert resp.status_code == 401
    assert resp.json() == {
        "type": "https://github.com/confidential-containers/kbs/errors/AdminAuthAccess",
        "detail": f"admin access denied for endpoint resource-policy: {missing}",
    }
    resp = httpx.post(
        up.base_url + "/kbs/v0/resource-policy", json=policy, headers={"Authorization": f"Bearer {reader}"}
    )
    assert resp.status_code == 401
    assert "Role reader not allowed for path /kbs/v0/resource-policy" in resp.json()["detail"]
    assert not (up.state_dir / "kbs-repository/repo/type/tag").exists()
    ali = make_trustee(flavour="alibaba")
    resp = httpx.post(
        ali.base_url + "/kbs/v0/resource/repo/type/tag", content=b"x", headers={"Authorization": f"Bearer {no_role}"}
    )
    assert resp.status_code == 200
    assert (ali.state_dir / "kbs-repository/repo/type/tag").read_bytes() == b"x"


# --------------------------------------------------------------------------------------------- the restful AS


def test_restful_attestation_checks_the_binding_with_the_requested_hash(trustee: TrusteeLab) -> None:
    runtime = {"nonce": "n0", "tee-pubkey": {"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW", "x": "X", "y": "Y"}}

    def request(ev: dict[str, Any], **extra: Any) -> dict[str, Any]:
        item = {"tee": "sample", "evidence": b64url_encode(json.dumps(ev).encode()), **extra}
        return {"verification_requests": [item], "policy_ids": []}

    as_url = trustee.url + "/as/attestation"
    ev512 = sample_evidence(runtime, "sha512")
    ok = httpx.post(
        as_url, json=request(ev512, runtime_data={"structured": runtime}, runtime_data_hash_algorithm="sha512")
    )
    assert ok.status_code == 200
    bad = httpx.post(as_url, json=request(ev512, runtime_data={"structured": runtime}))  # default SHA-384
    assert bad.status_code == 500 and "REPORT_DATA is different from that in Sample Quote" in bad.text
    raw = b"\x01" * 48
    ev_raw = {"svn": "1", "report_data": base64.b64encode(raw).decode()}
    assert httpx.post(as_url, json=request(ev_raw, runtime_data={"raw": b64url_encode(raw)})).status_code == 200
