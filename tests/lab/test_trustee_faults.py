"""Every trustee fault switch toggled at run time, with real clients."""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_trustee import *  # noqa: F403
from conftest_trustee import handler_threads, log_has

from cai_tui.clients.kbs import KbsClient, KbsError, KbsProtocolMismatch, KbsUnreachable
from cai_tui.lab.faults import FaultSwitches
from cai_tui.lab.trustee import TrusteeLab
from tests.helpers import wait_until

URI = "kbs:///default/test/model_key"
AUTH = {"version": "0.1.0", "tee": "tdx", "extra-params": "foo"}


def _refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_trustee_down_refuses_and_recovers_on_the_same_port(trustee: TrusteeLab, faults: FaultSwitches) -> None:
    port = trustee.port
    with KbsClient(trustee.url, timeout=2) as kc:
        kc.attest_sample()  # a kept-alive connection exists now
        faults.set("trustee-down", True)
        assert _refused(port)
        with pytest.raises(KbsUnreachable) as info:
            kc.get_resource(URI)
        assert info.value.reason == "refused"
        with pytest.raises(KbsUnreachable):
            kc.auth()
        faults.set("trustee-down", False)
        assert trustee.port == port and not _refused(port)
        assert kc.get_resource(URI) == b"seed-model-key-material"  # sessions survive the outage
    assert log_has(trustee, f"listener on port {port} closed")


def test_started_while_down_keeps_its_port_closed(make_trustee, faults: FaultSwitches) -> None:
    faults.set("trustee-down", True)
    lab = make_trustee()
    assert lab.port > 0 and not lab.listening and _refused(lab.port)
    faults.set("trustee-down", False)
    assert lab.listening
    assert httpx.post(lab.base_url + "/kbs/v0/auth", json=AUTH).status_code == 200


def test_trustee_hang_costs_only_the_client_timeout(trustee: TrusteeLab, faults: FaultSwitches) -> None:
    baseline = handler_threads(trustee)
    faults.set("trustee-hang", True)
    t0 = time.monotonic()
    errors: list[Exception] = []

    def call() -> None:
        try:
            with KbsClient(trustee.url, timeout=0.5) as kc:
                kc.auth()
        except Exception as exc:
            errors.append(exc)

    callers = [threading.Thread(target=call) for _ in range(3)]
    for t in callers:
        t.start()
    assert wait_until(lambda: handler_threads(trustee) >= baseline + 3, timeout=0.4)  # all three are being held
    for t in callers:
        t.join()
    elapsed = time.monotonic() - t0
    assert 0.45 <= elapsed < 2.0  # three concurrent hung requests: one timeout, not three
    assert len(errors) == 3 and all(isinstance(e, KbsUnreachable) and e.reason == "timeout" for e in errors)
    # The hung handler threads notice their clients left and end, although the fault is still on.
    assert wait_until(lambda: handler_threads(trustee) <= baseline, timeout=3)
    faults.set("trustee-hang", False)
    assert httpx.post(trustee.url + "/kbs/v0/auth", json=AUTH, timeout=2).status_code == 200


def test_hung_request_is_answered_when_the_fault_is_switched_off(trustee: TrusteeLab, faults: FaultSwitches) -> None:
    faults.set("trustee-hang", True)
    result: list[int] = []
    t = threading.Thread(
        target=lambda: result.append(httpx.post(trustee.base_url + "/kbs/v0/auth", json=AUTH, timeout=5).status_code)
    )
    t.start()
    time.sleep(0.3)
    assert result == []
    faults.set("trustee-hang", False)
    t.join(3)
    assert result == [200]


def test_hung_requests_end_when_the_server_stops(make_trustee, faults: FaultSwitches) -> None:
    lab = make_trustee()
    baseline = handler_threads(lab)
    faults.set("trustee-hang", True)
    outcome: list[str] = []

    def call() -> None:
        try:
            httpx.post(lab.base_url + "/kbs/v0/auth", json=AUTH, timeout=10)
            outcome.append("answered")
        except httpx.HTTPError as exc:
            outcome.append(type(exc).__name__)

    t = threading.Thread(target=call)
    t.start()
    assert wait_until(lambda: handler_threads(lab) > baseline, timeout=2)
    t0 = time.monotonic()
    lab.stop()
    t.join(3)
    assert outcome and outcome[0] != "answered" and time.monotonic() - t0 < 2
    assert wait_until(lambda: handler_threads(lab) <= baseline, timeout=3)


def test_trustee_slow(trustee: TrusteeLab, faults: FaultSwitches) -> None:
    with KbsClient(trustee.url, timeout=3) as kc:
        fast = kc.auth().latency_s
        faults.set("trustee-slow", True, 0.4)
        slow = kc.auth().latency_s
        assert slow >= 0.4 and fast < 0.4
        with KbsClient(trustee.url, timeout=0.2) as impatient, pytest.raises(KbsUnreachable) as info:
            impatient.auth()
        assert info.value.reason == "timeout"
        faults.set("trustee-slow", False)
        assert kc.auth().latency_s < 0.4


@pytest.mark.parametrize("server_version", ["0.1.0", "0.4.0"])
def test_kbs_version_mismatch_fault(make_trustee, faults: FaultSwitches, server_version: str) -> None:
    lab = make_trustee(protocol_version=server_version)
    with KbsClient(lab.url, protocol_version=server_version) as kc:
        assert kc.auth().nonce
        faults.set("kbs-version-mismatch", True)
        with pytest.raises(KbsProtocolMismatch) as info:
            kc.auth()
        assert info.value.server_expected_version not in (None, server_version)
        faults.set("kbs-version-mismatch", False)
        assert kc.auth().nonce


@pytest.mark.parametrize("flavour,status", [("alibaba", 403), ("upstream", 401)])
def test_kbs_policy_deny_fault(make_trustee, faults: FaultSwitches, flavour: str, status: int) -> None:
    lab = make_trustee(flavour=flavour)
    lab.set_resource("default", "test", "model_key", b"k")
    with KbsClient(lab.base_url) as kc:
        kc.attest_sample()
        faults.set("kbs-policy-deny", True)
        with pytest.raises(KbsError) as info:
            kc.get_resource(URI)
        assert (info.value.status, info.value.type_variant) == (status, "PolicyDeny")
        faults.set("kbs-policy-deny", False)
        assert kc.get_resource(URI) == b"k"
    assert log_has(lab, 'Evaluated: {"allow":false}')


@pytest.mark.parametrize("flavour,status", [("alibaba", 500), ("upstream", 401)])
def test_kbs_resource_missing_fault(make_trustee, faults: FaultSwitches, flavour: str, status: int) -> None:
    lab = make_trustee(flavour=flavour)
    lab.set_resource("default", "test", "model_key", b"k")
    with KbsClient(lab.base_url) as kc:
        kc.attest_sample()
        faults.set("kbs-resource-missing", True)
        with pytest.raises(KbsError) as info:
            kc.get_resource(URI)
        assert (info.value.status, info.value.type_variant) == (status, "PluginInternalError")
        faults.set("kbs-resource-missing", False)
        assert kc.get_resource(URI) == b"k"
    assert log_has(lab, "resource not found: default/test/model_key")


def test_faults_of_other_components_do_not_touch_the_trustee(trustee: TrusteeLab, faults: FaultSwitches) -> None:
    faults.set("oss-access-denied", True)
    faults.set("kms-secret-missing", True)
    with KbsClient(trustee.url) as kc:
        kc.attest_sample()
        assert kc.get_resource(URI) == b"seed-model-key-material"


def test_a_stopped_lab_ignores_fault_changes(make_trustee, faults: FaultSwitches) -> None:
    lab = make_trustee()
    port = lab.port
    lab.stop()
    faults.set("trustee-down", True)
    faults.set("trustee-down", False)
    assert not lab.listening and _refused(port)
