"""The Alibaba gateway shape: /api/kbs/v0, /api/as (+ alias), /api/services-health and the seed's release mount."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_trustee import *  # noqa: F403
from conftest_trustee import log_has

from cai_tui.clients.kbs import KbsClient, KbsError
from cai_tui.lab.trustee import TrusteeLab

URI = "kbs:///default/test/model_key"
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.mark.parametrize("prefix", ["/api", "/trustee", ""])
def test_kbs_flow_through_every_mount(trustee: TrusteeLab, prefix: str) -> None:
    with KbsClient(trustee.base_url + prefix) as kc:
        kc.attest_sample()
        assert kc.get_resource(URI) == b"seed-model-key-material"


def test_custom_release_prefix(make_trustee) -> None:
    lab = make_trustee(release="cai-trustee")
    assert lab.url == lab.base_url + "/cai-trustee"
    assert httpx.post(
        lab.url + "/kbs/v0/auth", json={"version": "0.1.0", "tee": "tdx", "extra-params": "foo"}
    ).is_success
    assert httpx.post(lab.base_url + "/trustee/kbs/v0/auth", json={}).status_code == 404


@pytest.mark.parametrize("as_prefix", ["/api/as", "/api/attestation-service", "/trustee/as", "/as", ""])
def test_as_routes_through_every_mount(trustee: TrusteeLab, as_prefix: str) -> None:
    base = trustee.base_url + as_prefix
    resp = httpx.post(base + "/challenge", json={})
    assert resp.status_code == 200 and "nonce" in resp.json()
    assert httpx.get(base + "/certificate").text.startswith("-----BEGIN CERTIFICATE-----")
    assert httpx.get(base + "/policies" if as_prefix.startswith(("/api", "/trustee")) else base + "/policy").json() == [
        {"policy-id": "default"}
    ]


def test_services_health_ok(trustee: TrusteeLab) -> None:
    for url in (trustee.base_url + "/api/services-health", trustee.url + "/services-health"):
        body = httpx.get(url).json()
        assert list(body) == ["gateway", "kbs", "as", "rvps"]
        for item in body.values():
            assert item["status"] == "ok" and TS.fullmatch(item["timestamp"]) and "message" not in item
    assert httpx.get(trustee.base_url + "/api/health").json() == {"status": "ok"}


def test_gateway_backend_down(trustee: TrusteeLab, faults) -> None:
    faults.set("gateway-backend-down", True)
    auth = {"version": "0.1.0", "tee": "tdx", "extra-params": "foo"}
    for url in (trustee.url + "/kbs/v0/auth", trustee.base_url + "/api/kbs/v0/auth"):
        resp = httpx.post(url, json=auth)
        assert resp.status_code == 500 and resp.json() == {"error": "Failed to forward request to KBS"}
    resp = httpx.post(trustee.url + "/as/challenge", json={})
    assert resp.status_code == 500 and resp.json() == {"error": "Failed to forward request to Attestation Service"}
    health = httpx.get(trustee.url + "/services-health").json()
    assert health["gateway"]["status"] == "ok" and health["rvps"]["status"] == "ok"
    assert health["kbs"] == {
        "status": "error",
        "message": "forward kbs auth request failed",
        "timestamp": health["kbs"]["timestamp"],
    }
    assert health["as"]["status"] == "error" and health["as"]["message"] == "forward as certificate request failed"
    # The KBS itself still answers; only the gateway's forwarding is broken.
    assert httpx.post(trustee.base_url + "/kbs/v0/auth", json=auth).status_code == 200
    with KbsClient(trustee.url) as kc, pytest.raises(KbsError) as info:
        kc.auth()
    assert info.value.flavour == "gateway" and info.value.detail == "Failed to forward request to KBS"
    faults.set("gateway-backend-down", False)
    assert httpx.post(trustee.url + "/kbs/v0/auth", json=auth).status_code == 200
    assert log_has(trustee, "Failed to forward")


def test_version_mismatch_shows_in_services_health(trustee: TrusteeLab, faults) -> None:
    faults.set("kbs-version-mismatch", True)
    health = httpx.get(trustee.base_url + "/api/services-health").json()
    assert health["kbs"]["status"] == "error" and health["kbs"]["message"] == "kbs auth request failed"
    assert health["as"]["status"] == "ok"


def test_unrouted_gateway_paths_are_gin_404(trustee: TrusteeLab) -> None:
    for method, path in [
        ("GET", "/api/kbs/v0/auth"),
        ("GET", "/api/kbs/v0/resource/a/b"),
        ("PUT", "/api/kbs/v0/resource/a/b/c"),
        ("GET", "/api/nothing"),
        ("GET", "/api"),
        ("GET", "/trustee/as/unknown"),
    ]:
        resp = httpx.request(method, trustee.base_url + path)
        assert resp.status_code == 404 and resp.text == "404 page not found", path
    assert httpx.get(trustee.base_url + "/nowhere").status_code == 404


def test_server_log_over_http(trustee: TrusteeLab) -> None:
    with KbsClient(trustee.base_url) as kc:
        kc.attest_sample()
        with pytest.raises(KbsError):
            kc.get_resource("kbs:///default/test/absent")
    lines = httpx.get(trustee.base_url + "/lab/log").json()["lines"]
    assert lines == trustee.server_log()
    assert any("resource not found: default/test/absent" in line for line in lines)
