"""``cai-tui lab serve`` as a process: the ready line, signals, start-up failures, restarts."""

from __future__ import annotations

import json
import signal
import socket
import stat
from pathlib import Path
from typing import Any

import httpx
import oss2
import pytest

from cai_tui.lab.demo import DEMO_PREFIX
from cai_tui.lab.faults import FAULTS
from cai_tui.lab.orchestrator import CREDENTIAL_KEYS, READY_KEYS
from cai_tui.recipe import CaiRecipe, load_recipe

CONF = DEMO_PREFIX + "gocryptfs.conf"
NO_INSTANCE = ["--no-instance"]  # these tests are about the services; the lab instance has tests/labstack/


def refused(url_or_hostport: str) -> bool:
    hostport = url_or_hostport.split("://", 1)[-1].split("/", 1)[0]
    host, port = hostport.rsplit(":", 1)
    assert host == "127.0.0.1"
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def test_ready_line_within_2_s_and_the_only_stdout_line(lab_process_factory: Any, lab_port_base: int) -> None:
    lp = lab_process_factory(port_base=lab_port_base, args=NO_INSTANCE)
    assert lp.ready_after_s is not None and lp.ready_after_s < 2.0, f"ready after {lp.ready_after_s:.2f} s"
    info = lp.info
    assert list(info) == list(READY_KEYS)
    assert info["trustee_url"] == f"http://127.0.0.1:{lab_port_base}/trustee"
    assert info["oss_endpoint"] == f"http://127.0.0.1:{lab_port_base + 1}"
    assert info["kms_endpoint"] == f"127.0.0.1:{lab_port_base + 2}"
    assert info["admin_url"] == f"http://127.0.0.1:{lab_port_base + 3}"
    creds_path = Path(info["credentials"])
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    assert set(CREDENTIAL_KEYS) <= set(json.loads(creds_path.read_text()))
    load_recipe(info["recipe"])
    assert lp.stop(signal.SIGTERM) == 0
    assert lp.stdout_rest == [], "the ready line is the only line on stdout"
    assert "Traceback" not in lp.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly_and_frees_the_ports(lab_process_factory: Any, sig: signal.Signals) -> None:
    lp = lab_process_factory(args=NO_INSTANCE)
    info = lp.info
    with httpx.Client(timeout=5, trust_env=False) as c:
        assert c.get(info["admin_url"] + "/health").status_code == 200
    rc = lp.stop(sig)
    assert rc == 0, lp.stderr
    assert f"{sig.name} received" in lp.stderr
    assert "Traceback" not in lp.stderr and "interrupted" not in lp.stderr
    for key in ("trustee_url", "oss_endpoint", "kms_endpoint", "admin_url"):
        assert refused(info[key]), f"{key} still answers after {sig.name}"


def test_port_in_use_exits_2_with_one_clear_line(lab_process_factory: Any, lab_port_base: int) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", lab_port_base + 1))  # the OSS port
        holder.listen(1)
        lp = lab_process_factory(port_base=lab_port_base, wait=False)
        rc = lp.proc.wait(timeout=20)
    assert rc == 2
    assert lp.drain() == [], "no ready line when the lab cannot start"
    lines = [ln for ln in lp.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert f"port {lab_port_base + 1} (OSS)" in lines[0] and "in use" in lines[0] and "--port-base" in lines[0]


def test_unknown_fault_exits_2_listing_the_known_ones(lab_process_factory: Any) -> None:
    lp = lab_process_factory(args=["--faults", "trustee-down,warp-drive"], wait=False)
    assert lp.proc.wait(timeout=20) == 2
    assert lp.drain() == []
    assert "warp-drive" in lp.stderr
    for name in FAULTS:
        assert name in lp.stderr
    assert "Traceback" not in lp.stderr


def test_bad_flavour_and_protocol_version_exit_2(lab_process_factory: Any) -> None:
    lp = lab_process_factory(args=["--flavour", "azure"], wait=False)
    assert lp.proc.wait(timeout=20) == 2 and "--flavour" in lp.stderr
    lp = lab_process_factory(args=["--protocol-version", "latest"], wait=False)
    assert lp.proc.wait(timeout=20) == 2 and "--protocol-version" in lp.stderr


def test_faults_and_protocol_version_at_start(lab_process_factory: Any, lab_clients: Any) -> None:
    from cai_tui.clients.kbs import KbsProtocolMismatch, KbsUnreachable

    lp = lab_process_factory(args=["--faults", "trustee-down", "--protocol-version", "0.4.0", *NO_INSTANCE])
    info = lp.info
    assert refused(info["trustee_url"])
    with httpx.Client(base_url=info["admin_url"], timeout=5, trust_env=False) as c:
        assert c.get("/faults").json()["active"] == {"trustee-down": None}
        clients = lab_clients(info["credentials"])
        with pytest.raises(KbsUnreachable):
            clients.kbs_model_key(timeout=2)
        assert c.delete("/faults/trustee-down").status_code == 200
    assert clients.creds["protocol_version"] == "0.4.0"
    recipe = load_recipe(info["recipe"]).recipe
    assert isinstance(recipe, CaiRecipe) and recipe.answers.trustee.protocol_version == "0.4.0"
    assert clients.kbs_model_key() == Path(clients.creds["model_password_file"]).read_bytes()
    with clients.kbs() as kbs:
        kbs.protocol_version = "0.1.0"
        with pytest.raises(KbsProtocolMismatch) as mismatch:
            kbs.auth(tee="sample")
        assert mismatch.value.server_expected_version == "0.4.0"
    assert lp.stop() == 0


def test_restart_on_the_same_state_dir(lab_process_factory: Any, lab_clients: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = lab_process_factory(state_dir=state, args=NO_INSTANCE)
    old = lab_clients(first.info["credentials"])
    password = old.kms_secret()
    old.oss_bucket().put_object("notes/kept.txt", b"survives a restart")
    assert first.stop() == 0

    second = lab_process_factory(state_dir=state, args=NO_INSTANCE)  # a new port base, the same state
    new = lab_clients(second.info["credentials"])
    for key in ("oss_access_key_id", "oss_access_key_secret", "oss_sts_token", "kms_access_key_secret"):
        assert new.creds[key] != old.creds[key], f"{key} must be fresh at every start"
    # The old keys are gone, the new ones work; the demo and the bucket's other objects survived.
    stale = oss2.Bucket(
        oss2.Auth(old.creds["oss_access_key_id"], old.creds["oss_access_key_secret"]),
        new.creds["oss_endpoint"],
        "lab-models",
        region="cn-lab",
    )
    with pytest.raises(oss2.exceptions.ServerError) as info:
        stale.get_object(CONF)
    assert info.value.status == 403
    bucket = new.oss_bucket()
    assert bucket.get_object("notes/kept.txt").read() == b"survives a restart"
    assert bucket.object_exists(CONF)
    assert new.kms_secret() == password, "an intact demo seed is kept across restarts"
    assert new.kbs_model_key() == password.encode()
    load_recipe(second.info["recipe"])
    assert second.stop() == 0


def test_second_lab_on_a_busy_state_dir_exits_2(lab_process_factory: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = lab_process_factory(state_dir=state, args=NO_INSTANCE)
    second = lab_process_factory(state_dir=state, args=NO_INSTANCE, wait=False)
    assert second.proc.wait(timeout=20) == 2
    assert "another lab is running" in second.stderr
    with httpx.Client(timeout=5, trust_env=False) as c:
        assert c.get(first.info["admin_url"] + "/health").status_code == 200
    assert first.stop() == 0


def test_lab_process_fixture(lab_process: dict[str, Any], lab_clients: Any) -> None:
    clients = lab_clients(lab_process["credentials"])
    assert clients.oss_bucket().object_exists(CONF)
    assert clients.kbs_model_key() == Path(clients.creds["model_password_file"]).read_bytes()
