"""KATA-4.4–4.5 on the kata lab: a real network namespace attached by invoking Debian's CNI plugins directly (no
cnitool here), the address pingable from the host, a second attach that adds nothing, and an undo that leaves the
netns list, links, routes, NAT rules, ip_forward and /var/lib/cni as they were."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cai_tui.cli.main import app
from cai_tui.lab.kata.cni import (
    host_network_snapshot,
    install_cnitool_standin,
    lab_cni_answers,
    netns_address,
    remove_lab_network,
)
from tests.helpers import run_cli


@pytest.fixture
def cni_lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    answers = lab_cni_answers(tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "flow": "kata-virtcca",
                "name": "cni-lab",
                "answers": {"cni": answers},
                "targets": {"host": "local"},
            }
        )
    )
    env = {"CAI_TUI_STATE_DIR": str(tmp_path / "state")}
    try:
        yield {"answers": answers, "recipe": recipe, "env": env, "state": tmp_path / "state"}
    finally:
        left = remove_lab_network(answers)
        assert not left, f"the test left {left}"


def _cli(lab: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """``cai-tui kata cni ARGS --recipe R`` in this process (fast; the CLI's exit code, stdout and stderr)."""
    r = CliRunner(env=lab["env"]).invoke(app, ["kata", "cni", *args, "--recipe", str(lab["recipe"])])
    return subprocess.CompletedProcess(args, r.exit_code, r.stdout, r.stderr)


def _real_cli(lab: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """The same as a separate process, as the stage engine runs it."""
    return run_cli("kata", "cni", *args, "--recipe", str(lab["recipe"]), env=lab["env"])


def _ours(snapshot: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
    """The snapshot's entries that name this run's network, netns, bridge or subnet (other processes share the
    host: their changes are not this test's), plus the host-wide values the ADD may change."""
    keys = (a["netns"], a["bridge"], a["network_name"], a["subnet"].rsplit(".", 1)[0] + ".")
    lists = ("netns", "links", "routes", "nat", "var_lib_cni")
    pick = {k: [e for e in snapshot[k] or [] if any(s in e for s in keys)] for k in lists}
    return {**pick, "ip_forward": snapshot["ip_forward"]}


def test_attach_by_direct_plugin_invocation_ping_and_undo(cni_lab: dict[str, Any]) -> None:
    a = cni_lab["answers"]
    before = host_network_snapshot()
    assert _cli(cni_lab, "undo").stdout.strip() == "nothing to undo"  # nothing recorded: exit 0

    assert _cli(cni_lab, "write-conf").returncode == 0
    r = _cli(cni_lab, "create-netns")
    assert r.returncode == 0, r.stderr
    assert f"network namespace {a['netns']} created" in r.stdout
    assert a["netns"] in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "exists" in _cli(cni_lab, "create-netns").stdout

    r = _real_cli(cni_lab, "attach")
    assert r.returncode == 0, r.stderr
    assert "cnitool is not installed: attaching by invoking the CNI plugins directly" in r.stderr
    assert (
        "CNI_COMMAND=ADD CNI_CONTAINERID=cnitool-" in r.stderr and f"CNI_NETNS=/var/run/netns/{a['netns']}" in r.stderr
    )
    assert "CNI CHECK passed for every plugin" in r.stderr
    address = netns_address(a["netns"])
    assert address.startswith(a["subnet"].rsplit(".", 1)[0] + ".")
    assert f"attached: netns {a['netns']} on {a['network_name']}, address {address}" in r.stdout
    assert "3 packets transmitted, 3 received" in r.stderr
    ping = subprocess.run(["ping", "-c", "1", "-W", "2", address], capture_output=True, text=True)
    assert ping.returncode == 0, ping.stdout
    nat = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    assert f'-A POSTROUTING -s {address}/32 -m comment --comment "name: \\"{a["network_name"]}\\"' in nat
    record = json.loads((cni_lab["state"] / "kata-cni-attach.json").read_text())
    assert record["state"] == "added" and record["via"] == "plugins"
    assert record["network"]["doc"]["ipam"]["subnet"] == a["subnet"]
    assert record["bridge"] == {"name": a["bridge"], "created": True}
    assert record["result"]["ips"][0]["address"] == f"{address}/24"

    guard = CliRunner().invoke(app, ["doctor", "--recipe", str(cni_lab["recipe"]), "--only", "cni.network", "--json"])
    (check,) = json.loads(guard.stdout)["checks"]
    assert check["status"] == "pass", check["summary"]  # the steps' guard
    assert f"netns {a['netns']} has eth0 {address}/24" in check["summary"]

    again = _cli(cni_lab, "attach")  # idempotent: no second attachment
    assert again.returncode == 0, again.stderr
    assert f"already attached: netns {a['netns']} on {a['network_name']}, address {address}" in again.stdout
    ports = json.loads(
        subprocess.run(["ip", "-j", "link", "show", "master", a["bridge"]], capture_output=True, text=True).stdout
    )
    assert len(ports) == 1
    leases = [p.name for p in (Path("/var/lib/cni/networks") / a["network_name"]).iterdir() if p.name[0].isdigit()]
    assert leases == [address]

    plan = _cli(cni_lab, "undo", "--plan")
    assert f"ip link del {a['bridge']}" in plan.stdout and f"ip netns del {a['netns']}" in plan.stdout
    u = _real_cli(cni_lab, "undo")
    assert u.returncode == 0, u.stderr
    assert f"CNI DEL of {a['network_name']} for {record['container_id']}" in u.stdout
    assert f"bridge {a['bridge']} deleted" in u.stdout and f"network namespace {a['netns']} deleted" in u.stdout
    after = host_network_snapshot()
    assert _ours(after, a) == _ours(before, a)
    assert not any(a["network_name"] in rule for rule in after["nat"])
    assert _cli(cni_lab, "undo").stdout.strip() == "nothing to undo"


def test_attach_refuses_a_subnet_that_now_clashes_and_adds_nothing(cni_lab: dict[str, Any]) -> None:
    a = cni_lab["answers"]
    assert _cli(cni_lab, "write-conf").returncode == 0
    assert _cli(cni_lab, "create-netns").returncode == 0
    other = f"caix{secrets.token_hex(3)}"
    subprocess.run(["ip", "link", "add", other, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", a["subnet"].replace(".0/24", ".9/24"), "dev", other], check=True)
        subprocess.run(["ip", "link", "set", other, "up"], check=True)
        r = _cli(cni_lab, "attach")
        assert r.returncode == 2
        assert f"clashes with the host's route {a['subnet']}" in r.stderr and other in r.stderr
        assert not (cni_lab["state"] / "kata-cni-attach.json").exists()
        inside = subprocess.run(["ip", "-n", a["netns"], "link", "show", "eth0"], capture_output=True)
        assert inside.returncode != 0  # no interface was added
    finally:
        subprocess.run(["ip", "link", "del", other], check=False)
    u = _cli(cni_lab, "undo")
    assert u.returncode == 0 and f"network namespace {a['netns']} deleted" in u.stdout


def test_attach_without_netns_or_conf_says_which_step_first(cni_lab: dict[str, Any]) -> None:
    r = _cli(cni_lab, "attach")
    assert r.returncode == 1
    assert f"network namespace {cni_lab['answers']['netns']} does not exist: create it first" in r.stderr
    assert "Traceback" not in r.stderr


def test_failed_add_is_deleted_and_an_unfinished_one_is_redone(cni_lab: dict[str, Any]) -> None:
    a = cni_lab["answers"]
    assert _cli(cni_lab, "write-conf").returncode == 0
    assert _cli(cni_lab, "create-netns").returncode == 0
    record = cni_lab["state"] / "kata-cni-attach.json"
    leases = Path("/var/lib/cni/networks") / a["network_name"]
    # the bridge's name taken by a link that is no bridge: the bridge plugin's ADD fails after host-local leased
    subprocess.run(["ip", "link", "add", a["bridge"], "type", "veth", "peer", "name", a["bridge"] + "p"], check=True)
    try:
        r = _cli(cni_lab, "attach")
        assert r.returncode == 1
        assert "bridge ADD failed (CNI error code" in r.stderr and "is not a bridge" in r.stderr
        assert "ADD failed: deleting the partial attachment" in r.stderr  # SPEC: a DEL follows a failed ADD
        assert not record.exists()
        assert not [p for p in leases.glob("*") if p.name[0].isdigit()]  # the DEL released the address
    finally:
        subprocess.run(["ip", "link", "del", a["bridge"]], check=False)
    assert _cli(cni_lab, "attach").returncode == 0
    rec = json.loads(record.read_text())
    rec["state"] = "adding"  # as if the run had been killed between ADD and its record
    record.write_text(json.dumps(rec))
    r = _cli(cni_lab, "attach")
    assert r.returncode == 0, r.stderr
    assert "an earlier attachment did not finish" in r.stderr and "attached: netns" in r.stdout
    assert len([p for p in leases.glob("*") if p.name[0].isdigit()]) == 1
    u = _cli(cni_lab, "undo")
    assert u.returncode == 0 and f"bridge {a['bridge']} deleted" in u.stdout


def test_the_plans_undo_lines_in_reverse_order(cni_lab: dict[str, Any]) -> None:
    """What `replay --undo` runs: attach's undo, then create-netns's, then write-conf's; each idempotent."""
    a = cni_lab["answers"]
    conf = Path(a["conf_dir"]) / f"{a['network_name']}.conf"
    for step in ("write-conf", "create-netns", "attach"):
        assert _cli(cni_lab, step).returncode == 0
    u = _cli(cni_lab, "undo", "--what", "attach")
    assert u.returncode == 0 and "CNI DEL" in u.stdout and f"bridge {a['bridge']} deleted" in u.stdout
    assert Path(f"/var/run/netns/{a['netns']}").exists() and conf.exists()
    assert subprocess.run(["ip", "-n", a["netns"], "link", "show", "eth0"], capture_output=True).returncode != 0
    assert _cli(cni_lab, "undo", "--what", "attach").stdout.strip() == "nothing to undo"
    u = _cli(cni_lab, "undo", "--what", "netns")
    assert u.returncode == 0 and u.stdout.strip() == f"undone: network namespace {a['netns']} deleted"
    assert not Path(f"/var/run/netns/{a['netns']}").exists() and conf.exists()
    u = _cli(cni_lab, "undo", "--what", "conf")
    assert u.returncode == 0 and u.stdout.strip() == f"undone: {conf} removed (it did not exist before)"
    assert not conf.exists()
    assert _cli(cni_lab, "undo", "--what", "bogus").returncode == 2


def test_attach_with_cnitool_where_installed(cni_lab: dict[str, Any], tmp_path: Path) -> None:
    """The cnitool branch, with the lab's cnitool stand-in (same command line, environment, container ID and result
    cache) in front of Debian's plugins."""
    a = cni_lab["answers"]
    tool = install_cnitool_standin(tmp_path / "bin")
    lab = {**cni_lab, "recipe": tmp_path / "tool.yaml"}
    doc = json.loads(cni_lab["recipe"].read_text())
    doc["answers"]["cni"]["bin_dir"] = str(tmp_path / "bin")
    lab["recipe"].write_text(json.dumps(doc))
    before = host_network_snapshot()
    r = _cli(lab, "install-cnitool")
    assert r.returncode == 0 and f"cnitool is installed ({tool}): attach uses it" in r.stdout
    assert _cli(lab, "write-conf").returncode == 0 and _cli(lab, "create-netns").returncode == 0
    r = _cli(lab, "attach")
    assert r.returncode == 0, r.stderr
    ns = f"/var/run/netns/{a['netns']}"
    assert f"$ CNI_PATH={tmp_path / 'bin'} NETCONFPATH={a['conf_dir']} {tool} add {a['network_name']} {ns}" in r.stderr
    assert "cnitool check passed" in r.stderr and "attaching by invoking the CNI plugins directly" not in r.stderr
    address = netns_address(a["netns"])
    assert f"attached: netns {a['netns']} on {a['network_name']}, address {address}" in r.stdout
    record = json.loads((cni_lab["state"] / "kata-cni-attach.json").read_text())
    assert record["via"] == "cnitool" and record["cnitool"] == str(tool)
    assert record["result"]["ips"][0]["address"] == f"{address}/24"
    again = _cli(lab, "attach")
    assert again.returncode == 0 and "already attached (cnitool" in again.stderr
    u = _cli(lab, "undo")
    assert u.returncode == 0, u.stderr
    assert f"cnitool del {a['network_name']} {ns}" in u.stdout and f"bridge {a['bridge']} deleted" in u.stdout
    assert _ours(host_network_snapshot(), a) == _ours(before, a)
    assert not list(Path("/var/lib/cni/results").glob(f"{a['network_name']}-*"))
