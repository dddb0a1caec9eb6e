"""Admin API auth (Ed25519 bearer JWT) and the resource-policy model, in both status flavours."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

sys.path.insert(0, str(Path(__file__).parent))
from conftest_trustee import *  # noqa: F403
from conftest_trustee import log_has

from cai_tui.clients.kbs import KbsClient, KbsError, make_admin_token
from cai_tui.crypto.jose import b64url_encode, jwt_encode
from cai_tui.lab.trustee import TrusteeLab, generate_admin_keypair

URI = "kbs:///default/test/model_key"
ALLOW_ALL = 'package policy\n\ndefault allow = false\n\nplugin = data.plugin\n\nallow if {\n\tplugin == "resource"\n}\n'
DENY_ALL = "# deny everything\npackage policy\n\ndefault allow = false\n"
UPSTREAM_DEFAULT = (
    "package policy\n\ndefault allow = false\n\nplugin = data.plugin\n\nallow if {\n"
    '\tplugin == "resource"\n\tnot input["submods"]["cpu0"]["ear.veraison.annotated-evidence"]["sample"]\n}\n'
)
AFFIRMING = (
    "package policy\nimport rego.v1\n\ndefault allow = false\n\nallow if {\n    not any_not_affirming\n"
    "    count(input.submods) > 0\n}\n\nany_not_affirming if {\n    some _, submod in input.submods\n"
    '    submod["ear.status"] != "affirming"\n}\n'
)
CUSTOM = 'package policy\n\ndefault allow = false\n\nallow if {\n\tinput["tcb-status"]["sgx.body.svn"] == "1"\n}\n'


def _ed25519_pem() -> bytes:
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize("flavour", ["alibaba", "upstream"])
def test_admin_auth_valid_wrong_and_missing(make_trustee, admin_keys: tuple[bytes, bytes], flavour: str) -> None:
    lab: TrusteeLab = make_trustee(flavour=flavour)
    url = lab.base_url + "/kbs/v0/resource/default/test/admin_set"
    good = make_admin_token(admin_keys[0])
    resp = httpx.post(url, content=b"v1", headers={"Authorization": f"Bearer {good}"})
    assert resp.status_code == 200
    assert (lab.state_dir / "kbs-repository/default/test/admin_set").read_bytes() == b"v1"

    wrong = make_admin_token(_ed25519_pem())
    expired = make_admin_token(admin_keys[0], now=time.time() - 3 * 3600)
    no_sig = good.rsplit(".", 1)[0] + "."
    for token in (wrong, expired, no_sig, "not-a-jwt"):
        resp = httpx.post(url, content=b"x", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401
        assert resp.json() == {
            "type": "https://github.com/confidential-containers/kbs/errors/AdminAuth",
            "detail": "Admin auth error: Admin Token verification failed",
        }
    for headers in ({}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer"}):
        resp = httpx.post(url, content=b"x", headers=headers)
        assert resp.status_code == 401
        assert resp.json()["detail"] == "Admin auth error: Failed to parse HTTP Auth Bearer header"
    assert (lab.state_dir / "kbs-repository/default/test/admin_set").read_bytes() == b"v1"
    assert log_has(lab, "Admin Token verification failed: JWS signature verification failed")
    assert log_has(lab, "Admin Token verification failed: JWT has expired")


def test_admin_token_algorithm_must_be_eddsa(trustee: TrusteeLab, admin_keys: tuple[bytes, bytes]) -> None:
    # A token "signed" with the public key as an HMAC secret must not pass (alg confusion).
    head = b64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    body = b64url_encode(b'{"exp":9999999999}')
    resp = httpx.post(
        trustee.base_url + "/kbs/v0/resource-policy",
        json={"policy": b64url_encode(ALLOW_ALL.encode())},
        headers={"Authorization": f"Bearer {head}.{body}.AAAA"},
    )
    assert resp.status_code == 401


def test_set_and_delete_resource_with_the_client(trustee: TrusteeLab, admin_keys: tuple[bytes, bytes]) -> None:
    with KbsClient(trustee.url) as kc:
        kc.set_resource("kbs:///repo1/key/v2", b"\x00binary\xff", admin_keys[0])
        kc.attest_sample()
        assert kc.get_resource("kbs:///repo1/key/v2") == b"\x00binary\xff"
        kc.delete_resource("kbs:///repo1/key/v2", admin_keys[0])
        with pytest.raises(KbsError) as info:
            kc.get_resource("kbs:///repo1/key/v2")
        assert info.value.type_variant == "PluginInternalError"
        with pytest.raises(KbsError) as info:
            kc.delete_resource("kbs:///repo1/key/v2", admin_keys[0])
        assert info.value.status == 500
        with pytest.raises(KbsError) as info:
            kc.set_resource("kbs:///repo1/key/v3", b"x", _ed25519_pem())
        assert info.value.type_variant == "AdminAuth"
    assert log_has(trustee, "resource not found: repo1/key/v2")


def _attested(lab: TrusteeLab) -> KbsClient:
    kc = KbsClient(lab.base_url)
    kc.attest_sample()
    return kc


@pytest.mark.parametrize("flavour,status", [("alibaba", 403), ("upstream", 401)])
def test_policy_deny_status_per_flavour(make_trustee, flavour: str, status: int) -> None:
    lab = make_trustee(flavour=flavour, resource_policy="deny-all")
    lab.set_resource("default", "test", "model_key", b"k")
    with _attested(lab) as kc, pytest.raises(KbsError) as info:
        kc.get_resource(URI)
    err = info.value
    assert (err.status, err.type_variant, err.detail) == (status, "PolicyDeny", "Access denied by policy")
    assert err.flavour == flavour
    assert log_has(lab, 'Evaluated: {"allow":false}')


@pytest.mark.parametrize(
    "rego,allowed",
    [(ALLOW_ALL, True), (DENY_ALL, False), (UPSTREAM_DEFAULT, False), (AFFIRMING, True), (CUSTOM, False)],
    ids=["allow-all", "deny-all", "default", "affirming", "custom"],
)
def test_posted_policies_are_recognised(
    trustee: TrusteeLab, admin_keys: tuple[bytes, bytes], rego: str, allowed: bool
) -> None:
    trustee.settings.allow_sample_evidence = False  # as upstream: the default policy distrusts sample evidence
    with _attested(trustee) as kc:
        kc.set_resource_policy(rego, admin_keys[0])
        if allowed:
            assert kc.get_resource(URI) == b"seed-model-key-material"
        else:
            with pytest.raises(KbsError) as info:
                kc.get_resource(URI)
            assert info.value.type_variant == "PolicyDeny"
    mode = {ALLOW_ALL: "allow-all", DENY_ALL: "deny-all", UPSTREAM_DEFAULT: "default", AFFIRMING: "affirming"}
    assert trustee.kbs.resource_policy_mode == mode.get(rego, "custom")
    assert trustee.kbs.resource_policy_text == rego


def test_default_policy_and_sample_evidence_setting(make_trustee) -> None:
    for allow_sample, ok in ((True, True), (False, False)):
        lab = make_trustee(resource_policy="default", allow_sample_evidence=allow_sample)
        lab.set_resource("default", "test", "model_key", b"k")
        with _attested(lab) as kc:
            if ok:
                assert kc.get_resource(URI) == b"k"
            else:
                with pytest.raises(KbsError, match="PolicyDeny"):
                    kc.get_resource(URI)
    # tdx-labelled evidence (accepted by the lab setting) passes the default policy even without sample trust.
    lab = make_trustee(resource_policy="default", allow_sample_evidence=False, accept_tdx_evidence=True)
    lab.set_resource("default", "test", "model_key", b"k")
    with KbsClient(lab.base_url) as kc:
        kc.auth(tee="tdx")
        kc.attest_sample()
        assert kc.get_resource(URI) == b"k"


def test_affirming_policy_follows_the_ear_status(make_trustee) -> None:
    lab = make_trustee(resource_policy="affirming", attestation_status="warning")
    lab.set_resource("default", "test", "model_key", b"k")
    with _attested(lab) as kc, pytest.raises(KbsError, match="PolicyDeny"):
        kc.get_resource(URI)
    assert log_has(lab, "affirming policy: EAR status is 'warning'")


def test_resource_policy_parse_errors(trustee: TrusteeLab, admin_keys: tuple[bytes, bytes]) -> None:
    auth = {"Authorization": f"Bearer {make_admin_token(admin_keys[0])}"}
    url = trustee.base_url + "/kbs/v0/resource-policy"
    cases = [
        (b"{", "Illegal SetPolicy Request Json"),
        (b"{}", "No `policy` field inside SetPolicy Request Json"),
        (b'{"policy": 3}', "`policy` field is not a string"),
        (b'{"policy": "***"}', "Failed to decode policy"),
    ]
    for body, text in cases:
        resp = httpx.post(url, content=body, headers=auth)
        assert resp.status_code == 400
        assert resp.json()["type"].endswith("/ParsePolicyError") and text in resp.json()["detail"]
    resp = httpx.get(url, headers=auth)
    assert resp.status_code == 200 and resp.json()["lab-mode"] == "allow-all"


def test_attestation_policy_admin_endpoint(trustee: TrusteeLab, admin_keys: tuple[bytes, bytes]) -> None:
    with KbsClient(trustee.base_url) as kc:
        kc.set_attestation_policy('package policy\nstatus := "contraindicated"\n', admin_keys[0], policy_id="p1")
    assert "contraindicated" in trustee.attestation.policies["p1"]
    resp = httpx.post(
        trustee.base_url + "/kbs/v0/attestation-policy",
        content=b'{"policy_id": "p2"}',
        headers={"Authorization": f"Bearer {make_admin_token(admin_keys[0])}"},
    )
    assert resp.status_code == 400 and resp.json()["detail"] == "Attestation error: Set Attestation Policy failed"


def test_insecure_admin_when_no_public_key(tmp_path: Path, faults) -> None:
    lab = TrusteeLab(tmp_path, b"", faults).start()
    try:
        resp = httpx.post(lab.base_url + "/kbs/v0/resource/a/b/c", content=b"open")
        assert resp.status_code == 200
        assert log_has(lab, "insecure admin APIs are enabled")
    finally:
        lab.stop()
    with pytest.raises(ValueError, match="Ed25519"):
        TrusteeLab(tmp_path, generate_admin_keypair()[0], faults)  # a private key is not a public key


def test_admin_token_issued_in_the_future_is_refused(trustee: TrusteeLab, admin_keys: tuple[bytes, bytes]) -> None:
    key = serialization.load_pem_private_key(admin_keys[0], password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    t = int(time.time()) + 3600
    token = jwt_encode({"iat": t, "nbf": t, "exp": t + 60}, key, "EdDSA")
    resp = httpx.post(
        trustee.base_url + "/kbs/v0/resource/a/b/c", content=b"x", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status_code == 401
