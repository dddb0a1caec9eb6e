"""cni.network against real network namespaces made here (KATA-4.3..4.5 as cnitool would leave them).

The test makes its own namespaces with unique names: a "host side" one holding the bridge and one end of a veth pair,
the "container" one holding the other end with an address from a private test subnet, and an empty one. Nothing is
added to this machine's own namespace; every namespace is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cai_tui.checks.base import CheckContext
from cai_tui.checks.registry import all_checks
from cai_tui.checks.runner import CheckOutcome, run_checks
from cai_tui.recipe.model import KataRecipe
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.local import LocalTarget

from .checklib import expect

SUBNET = "10.231.7.0/24"  # private, and only ever assigned inside the test's own namespace
ADDRESS = "10.231.7.2/24"


def ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.fail(f"ip {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")


@dataclass(frozen=True)
class Net:
    netns: str  # the container's namespace, with the address
    empty: str  # a namespace without any address
    bridge: str
    name: str  # the CNI network name


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    if shutil.which("ip") is None:
        pytest.fail("the ip command is missing: install iproute2 (apt-get install -y iproute2)")
    if os.geteuid() != 0:
        pytest.fail("creating network namespaces needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN): run the tests as root")
    tag = secrets.token_hex(3)
    n = Net(netns=f"cai-ct-{tag}", empty=f"cai-em-{tag}", bridge=f"cb{tag}", name=f"cainet{tag}")
    host_side = f"cai-hs-{tag}"
    made: list[str] = []
    try:
        for ns in (host_side, n.netns, n.empty):
            ip("netns", "add", ns)
            made.append(ns)
        ip("-n", host_side, "link", "add", n.bridge, "type", "bridge")
        ip("-n", host_side, "link", "add", f"vh{tag}", "type", "veth", "peer", "name", "eth0", "netns", n.netns)
        ip("-n", host_side, "link", "set", f"vh{tag}", "master", n.bridge)
        for dev in (n.bridge, f"vh{tag}"):
            ip("-n", host_side, "link", "set", dev, "up")
        ip("-n", n.netns, "addr", "add", ADDRESS, "dev", "eth0")
        ip("-n", n.netns, "link", "set", "eth0", "up")
        ip("-n", n.netns, "link", "set", "lo", "up")
        yield n
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def seed_conf(net: Net, subnet: str = SUBNET) -> dict[str, Any]:
    """/etc/cni/net.d/vllmnet.conf as KATA-4.3 writes it."""
    return {
        "cniVersion": "0.4.0",
        "name": net.name,
        "type": "bridge",
        "bridge": net.bridge,
        "isDefaultGateway": True,
        "forceAddress": False,
        "ipMasq": True,
        "hairpinMode": True,
        "ipam": {"type": "host-local", "subnet": subnet},
    }


def write_conf(conf_dir: Path, net: Net, doc: dict[str, Any] | str) -> Path:
    conf_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / f"{net.name}.conf"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=4) + "\n")
    return path


def run(
    conf_dir: Path, net: Net, netns: str | None = None, subnet: str = SUBNET, ids: tuple[str, ...] = ("cni.network",)
) -> dict[str, CheckOutcome]:
    cni = {
        "conf_dir": str(conf_dir),
        "network_name": net.name,
        "netns": netns or net.netns,
        "bridge": net.bridge,
        "subnet": subnet,
    }
    rec = KataRecipe.model_validate({"flow": "kata-virtcca", "name": "cni-test", "answers": {"cni": cni}})
    ctx = CheckContext(recipe=rec, targets={"host": LocalTarget()}, redactor=Redactor(), timeout=10.0)
    outcomes = asyncio.run(run_checks([all_checks()[i] for i in ids], ctx, timeout=10.0))
    return {o.id: o for o in outcomes}


def parts(result: Any) -> dict[str, str]:
    return {name: p["status"] for name, p in result.data["parts"].items()}


def test_seed_network_passes(net: Net, tmp_path: Path) -> None:
    conf = write_conf(tmp_path, net, seed_conf(net))
    res = expect(run(tmp_path, net), "cni.network", "pass")
    assert parts(res) == {"conf": "pass", "netns": "pass", "address": "pass"}
    assert res.data["addresses"] == [f"eth0 {ADDRESS}"]
    assert [e.source for e in res.evidence] == [str(conf), f"/var/run/netns/{net.netns}", f"ip -n {net.netns} -j addr"]
    assert res.evidence[2].observed == f"address: pass: eth0 {ADDRESS}"
    assert all(e.target == "local" for e in res.evidence)


def test_missing_namespace(net: Net, tmp_path: Path) -> None:
    write_conf(tmp_path, net, seed_conf(net))
    absent = f"cai-no-{secrets.token_hex(3)}"
    res = expect(run(tmp_path, net, netns=absent), "cni.network", "fail", "cni-network-broken")
    assert parts(res) == {"conf": "pass", "netns": "fail", "address": "fail"}
    assert res.summary == f"network namespace {absent} does not exist (/var/run/netns/{absent})"
    assert f"ip netns add {absent}" in res.fix.text


def test_namespace_without_an_address(net: Net, tmp_path: Path) -> None:
    write_conf(tmp_path, net, seed_conf(net))
    res = expect(run(tmp_path, net, netns=net.empty), "cni.network", "fail", "cni-network-broken")
    assert parts(res) == {"conf": "pass", "netns": "pass", "address": "fail"}
    assert res.summary == f"no address from {SUBNET} inside netns {net.empty}"
    assert res.evidence[2].observed == "address: fail: (no addresses)"
    assert f"cnitool add {net.name} /var/run/netns/{net.empty}" in res.fix.text


def test_subnet_mismatch(net: Net, tmp_path: Path) -> None:
    # the conf file names another subnet than the recipe
    write_conf(tmp_path, net, seed_conf(net, subnet="10.231.8.0/24"))
    res = expect(run(tmp_path, net), "cni.network", "fail", "cni-network-broken")
    assert parts(res) == {"conf": "fail", "netns": "pass", "address": "pass"}
    assert res.summary == f'"ipam.subnet" is 10.231.8.0/24, the recipe says {SUBNET}'
    # conf and recipe agree, but the namespace's address comes from elsewhere
    other = "10.231.9.0/24"
    write_conf(tmp_path, net, seed_conf(net, subnet=other))
    res = expect(run(tmp_path, net, subnet=other), "cni.network", "fail", "cni-network-broken")
    assert parts(res) == {"conf": "pass", "netns": "pass", "address": "fail"}
    seen = res.evidence[2].observed
    assert seen.startswith("address: fail: lo 127.0.0.1/8") and f"eth0 {ADDRESS}" in seen
    assert res.summary == f"no address from {other} inside netns {net.netns}"


def test_broken_conf_files(net: Net, tmp_path: Path) -> None:
    res = expect(run(tmp_path, net), "cni.network", "fail", "cni-network-broken")
    assert parts(res)["conf"] == "fail" and res.summary == f"{tmp_path}/{net.name}.conf is absent"
    text = json.dumps(seed_conf(net), indent=4).replace('"ipMasq": true,', '"ipMasq": true')
    write_conf(tmp_path, net, text)
    res = expect(run(tmp_path, net), "cni.network", "fail", "cni-network-broken")
    assert "is not JSON: Expecting ',' delimiter (line 9)" in res.summary
    assert res.evidence[0].observed == 'conf: fail: line 9: "hairpinMode": true,'
    doc = seed_conf(net, subnet="{subnetIp}/{mask}")
    write_conf(tmp_path, net, doc)
    res = expect(run(tmp_path, net), "cni.network", "fail", "cni-network-broken")
    assert '"ipam.subnet" is still the placeholder {subnetIp}/{mask}' in res.summary
    doc = seed_conf(net) | {"bridge": "cni0", "name": "other"}
    write_conf(tmp_path, net, doc)
    res = expect(run(tmp_path, net), "cni.network", "fail", "cni-network-broken")
    assert f'"name" is "other", expected "{net.name}"' in res.summary
    assert f'"bridge" is "cni0", expected "{net.bridge}"' in res.summary


def test_conf_and_netns_guards_each_prove_their_own_step(net: Net, tmp_path: Path) -> None:
    """KATA-4.3's guard passes once the conf is written (no namespace yet), KATA-4.4's once the namespace exists (no
    address yet); neither passes without its own part."""
    absent = f"cai-no-{secrets.token_hex(3)}"
    both = ("cni.conf", "cni.netns")
    res = run(tmp_path, net, netns=absent, ids=both)
    expect(res, "cni.conf", "fail", "cni-network-broken")
    assert "cai-tui kata cni write-conf" in res["cni.conf"].result.fix.text
    expect(res, "cni.netns", "fail", "cni-network-broken")
    write_conf(tmp_path, net, seed_conf(net))
    res = run(tmp_path, net, netns=absent, ids=both)
    expect(res, "cni.conf", "pass")
    assert res["cni.netns"].result.summary == f"network namespace {absent} does not exist (/var/run/netns/{absent})"
    res = run(tmp_path, net, netns=net.empty, ids=("cni.netns", "cni.network"))
    expect(res, "cni.netns", "pass")
    expect(res, "cni.network", "fail", "cni-network-broken")  # an empty namespace is not yet KATA-4.5
    write_conf(tmp_path, net, seed_conf(net, subnet="10.231.8.0/24"))
    expect(run(tmp_path, net, ids=("cni.conf",)), "cni.conf", "fail", "cni-network-broken")
