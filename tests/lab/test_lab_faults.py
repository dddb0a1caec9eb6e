"""Fault switches through the lab's admin endpoint, observed with the real clients."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import oss2
import pytest
from alibabacloud_tea_openapi.exceptions import ClientException
from typer.testing import CliRunner

from cai_tui.clients.kbs import KbsError, KbsUnreachable
from cai_tui.lab.demo import DEMO_PREFIX
from cai_tui.lab.faults import FAULTS
from cai_tui.lab.orchestrator import Lab

CONF = DEMO_PREFIX + "gocryptfs.conf"


def admin(lab: Any) -> httpx.Client:
    return httpx.Client(base_url=lab.admin_url, timeout=5, trust_env=False)


def test_faults_listing_documents_every_fault(lab: Any) -> None:
    with admin(lab) as c:
        doc = c.get("/faults").json()
        assert doc["active"] == {}
        assert set(doc["known"]) == set(FAULTS)
        for name, spec in doc["known"].items():
            assert spec["doc"] and spec["component"] in ("trustee", "oss", "kms"), name
        index = c.get("/").json()
        assert "POST /faults" in index["endpoints"]


def test_lab_faults_command_lists_every_fault_with_its_doc() -> None:
    from cai_tui.cli.main import app

    result = CliRunner().invoke(app, ["lab", "faults"])
    assert result.exit_code == 0, result.output
    for name, spec in FAULTS.items():
        line = next((ln for ln in result.output.splitlines() if ln.strip().startswith(name + " ")), None)
        assert line is not None and spec.doc in line, name
    assert "PUT    /faults/<name>[?param=N]" in result.output and "GET    /health" in result.output


def test_trustee_down_refuses_the_kbs_client_and_health_says_so(lab: Any, lab_clients: Any) -> None:
    clients = lab_clients(lab.credentials_path)
    assert clients.kbs_model_key() == lab.demo.password.encode()
    with admin(lab) as c:
        r = c.put("/faults/trustee-down")
        assert r.status_code == 200 and r.json()["on"] is True
        with pytest.raises(KbsUnreachable) as info:
            clients.kbs_model_key(timeout=2)
        assert info.value.reason == "refused"
        health = c.get("/health")
        assert health.status_code == 503
        comps = health.json()["components"]
        assert comps["trustee"]["up"] is False and comps["trustee"]["faults"] == ["trustee-down"]
        assert comps["oss"]["up"] and comps["kms"]["up"] and comps["admin"]["up"]

        r = c.delete("/faults/trustee-down")
        assert r.status_code == 200 and r.json()["on"] is False
        assert c.get("/health").status_code == 200
    assert clients.kbs_model_key() == lab.demo.password.encode()


def test_kms_secret_missing_fails_the_sdk_and_the_trustee(lab: Any, lab_clients: Any) -> None:
    clients = lab_clients(lab.credentials_path)
    with admin(lab) as c:
        r = c.post("/faults", json={"set": {"kms-secret-missing": True}})
        assert r.status_code == 200 and r.json()["active"] == {"kms-secret-missing": None}
        with pytest.raises(ClientException) as info:
            clients.kms_secret()
        assert info.value.code == "Forbidden.ResourceNotFound" and info.value.status_code == 404
        # The Trustee's KMS backend finds nothing either.
        with pytest.raises(KbsError) as kbs_info:
            clients.kbs_model_key()
        assert kbs_info.value.status is not None and kbs_info.value.status >= 400
        assert kbs_info.value.type_variant, "a KBS error answer, not a transport failure"
        assert not isinstance(kbs_info.value, KbsUnreachable)

        r = c.post("/faults", json={"clear": ["kms-secret-missing"]})
        assert r.status_code == 200 and r.json()["active"] == {}
    assert clients.kms_secret() == lab.demo.password
    assert clients.kbs_model_key() == lab.demo.password.encode()


def test_oss_access_denied_refuses_oss2(lab: Any, lab_clients: Any) -> None:
    bucket = lab_clients(lab.credentials_path).oss_bucket()
    assert bucket.object_exists(CONF)
    with admin(lab) as c:
        assert c.put("/faults/oss-access-denied").status_code == 200
        with pytest.raises(oss2.exceptions.AccessDenied) as info:
            bucket.get_object(CONF).read()
        assert info.value.status == 403 and info.value.code == "AccessDenied"
        with pytest.raises(oss2.exceptions.AccessDenied):
            list(oss2.ObjectIterator(bucket, prefix=DEMO_PREFIX))
        assert c.delete("/faults").json()["active"] == {}
    assert bucket.get_object(CONF).read().startswith(b"{")


def test_trustee_slow_parameter_delays_answers(lab: Any, lab_clients: Any) -> None:
    clients = lab_clients(lab.credentials_path)
    with admin(lab) as c:
        r = c.put("/faults/trustee-slow", params={"param": "0.6"})
        assert r.status_code == 200 and r.json()["param"] == 0.6
        with clients.kbs() as kbs:
            assert kbs.auth(tee="sample").latency_s >= 0.6
        c.post("/faults", json={"set": {"trustee-slow": False}})
        with clients.kbs() as kbs:
            assert kbs.auth(tee="sample").latency_s < 0.5


def test_unknown_fault_is_400_with_the_known_list_and_changes_nothing(lab: Any) -> None:
    with admin(lab) as c:
        r = c.post("/faults", json={"set": {"oss-skew": None, "no-such-fault": 1}})
        assert r.status_code == 400
        body = r.json()
        assert "no-such-fault" in body["error"] and body["known"] == sorted(FAULTS)
        assert c.get("/faults").json()["active"] == {}, "a rejected POST must not switch anything"
        for method in ("PUT", "DELETE", "GET"):
            r = c.request(method, "/faults/no-such-fault")
            assert r.status_code == 400 and "trustee-down" in r.json()["known"], method
        assert c.put("/faults/trustee-slow", params={"param": "soon"}).status_code == 400
        assert c.put("/faults/trustee-slow", params={"param": "-1"}).status_code == 400
        assert c.post("/faults", content=b"not json").status_code == 400
        assert c.post("/faults", json={"set": [1]}).status_code == 400
        assert c.get("/nowhere").status_code == 404
        assert c.post("/health").status_code == 405
        assert c.get("/faults").json()["active"] == {}
        info = c.get("/info").json()
        assert info == lab.ready_info()


def test_faults_given_at_start_are_on_after_seeding(tmp_path: Path, lab_clients: Any) -> None:
    with Lab(state_dir=tmp_path / "s", faults="oss-access-denied,trustee-slow=0.2") as lab:
        assert lab.faults.active() == {"oss-access-denied": None, "trustee-slow": 0.2}
        clients = lab_clients(lab.credentials_path)
        with pytest.raises(oss2.exceptions.AccessDenied):
            clients.oss_bucket().get_object(CONF)
        lab.faults.set("oss-access-denied", False)
        assert clients.oss_bucket().object_exists(CONF), "the seed went in before the fault was switched on"
        creds = json.loads(lab.credentials_path.read_text())
        assert creds["oss_bucket"] == "lab-models"


def test_unknown_fault_at_construction_names_the_known_ones(tmp_path: Path) -> None:
    from cai_tui.lab.faults import UnknownFault

    with pytest.raises(UnknownFault, match=r"known faults: .*trustee-down"):
        Lab(state_dir=tmp_path / "s", faults="trustee-down,bogus")
    assert not (tmp_path / "s").exists(), "nothing is created for a rejected fault list"
