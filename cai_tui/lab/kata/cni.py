"""The kata lab's CNI network: Debian's containernetworking-plugins (``/usr/lib/cni``: bridge, host-local, loopback)
attach real network namespaces here. A lab recipe gets answers that cannot collide with the host or a parallel run:
its own conf_dir under the lab's folder, a unique network name, netns and bridge, and a 10.213.x.0/24 subnet that no
route or interface address of this host overlaps. :func:`host_network_snapshot` is what an undo must leave unchanged.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ...kata.cni_host import clashes, netns_address

LAB_BIN_DIR = "/usr/lib/cni"
PLUGINS = ("bridge", "host-local", "loopback")

__all__ = [
    "LAB_BIN_DIR",
    "free_subnet",
    "host_network_snapshot",
    "lab_cni_answers",
    "netns_address",
    "remove_lab_network",
]


def free_subnet(tries: int = 64) -> str:
    """A 10.213.x.0/24 that no route or interface address of this host overlaps."""
    from ...targets.local import LocalTarget

    for _ in range(tries):
        subnet = f"10.213.{secrets.randbelow(254) + 1}.0/24"
        if not asyncio.run(clashes(LocalTarget(), subnet, "")):
            return subnet
    raise RuntimeError("no free 10.213.x.0/24 on this host")


def lab_cni_answers(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """``answers.cni`` for a lab recipe: plugins from Debian's package, the conf in ``<directory>/net.d``, unique
    names (``cai<hex>``) and a free subnet. RuntimeError naming the package when the plugins are missing."""
    missing = [p for p in PLUGINS if not os.access(f"{LAB_BIN_DIR}/{p}", os.X_OK)]
    if missing:
        raise RuntimeError(
            f"{LAB_BIN_DIR} lacks {', '.join(missing)}: apt-get install containernetworking-plugins (the kata lab)"
        )
    tag = secrets.token_hex(3)
    conf_dir = Path(directory) / "net.d"
    conf_dir.mkdir(parents=True, exist_ok=True)
    return {
        "plugins_version": "v1.6.0",
        "bin_dir": LAB_BIN_DIR,
        "conf_dir": str(conf_dir),
        "network_name": f"cai-net-{tag}",
        "netns": f"cai-ns-{tag}",
        "bridge": f"cai{tag}",
        "subnet": free_subnet(),
    }


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def host_network_snapshot() -> dict[str, Any]:
    """What the CNI steps change on the host, for a before/after comparison: netns names, link names, routes of
    every table, the nat and filter rules, net.ipv4.ip_forward and /var/lib/cni."""
    links = sorted(str(link.get("ifname")) for link in json.loads(_run(["ip", "-j", "link", "show"]) or "[]"))
    routes = sorted(
        json.dumps(r, sort_keys=True) for r in json.loads(_run(["ip", "-j", "route", "show", "table", "all"]) or "[]")
    )
    cni_dir = Path("/var/lib/cni")
    return {
        "netns": sorted(_run(["ip", "netns", "list"]).split("\n")),
        "links": links,
        "routes": routes,
        "nat": _run(["iptables", "-t", "nat", "-S"]).splitlines(),
        "filter": _run(["iptables", "-S"]).splitlines(),
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
        "var_lib_cni": sorted(str(p) for p in cni_dir.rglob("*")) if cni_dir.exists() else None,
    }


def remove_lab_network(answers: dict[str, Any]) -> list[str]:
    """Test teardown whatever state a run left: the lab netns and bridge, the bridge plugin's NAT rules and chains
    for this network (their comment names it), its host-local folder and its conf. What was still there."""
    left: list[str] = []
    name, netns, bridge = answers["network_name"], answers["netns"], answers["bridge"]
    if Path(f"/var/run/netns/{netns}").exists():
        subprocess.run(["ip", "netns", "del", netns], check=False)
        left.append(f"netns {netns}")
    if subprocess.run(["ip", "link", "show", "dev", bridge], capture_output=True).returncode == 0:
        subprocess.run(["ip", "link", "del", bridge], check=False)
        left.append(f"bridge {bridge}")
    marker = f'name: \\"{name}\\"'
    rules = [r for r in _run(["iptables", "-t", "nat", "-S"]).splitlines() if marker in r]
    for rule in (r for r in rules if r.startswith("-A POSTROUTING")):
        subprocess.run(["iptables", "-t", "nat", *shlex.split(rule.replace("-A", "-D", 1))], check=False)
        left.append(f"nat rule {rule}")
    for chain in sorted({r.split()[-1] for r in rules if r.startswith("-A POSTROUTING")}):
        subprocess.run(["iptables", "-t", "nat", "-F", chain], check=False)
        subprocess.run(["iptables", "-t", "nat", "-X", chain], check=False)
    ipam = Path("/var/lib/cni/networks") / name
    if ipam.exists():
        shutil.rmtree(ipam, ignore_errors=True)
        left.append(str(ipam))
    conf = Path(answers["conf_dir"]) / f"{name}.conf"
    if conf.exists():
        conf.unlink()
    return left


# ------------------------------------------------------------------------------------------------ cnitool stand-in
CNITOOL_CACHE = "/var/lib/cni/results"


def cnitool_main(argv: list[str] | None = None) -> int:
    """A stand-in for cnitool (not buildable here: no Go, GitHub out of reach) with its command line and
    environment: ``cnitool add|check|del NETWORK NETNS`` with NETCONFPATH (default /etc/cni/net.d), CNI_PATH and
    CNI_IFNAME (default eth0), the container ID from the namespace path, and libcni's result cache
    (``/var/lib/cni/results/NETWORK-ID-IFNAME``) for check and del. The plugins are the real ones, invoked through
    :mod:`cai_tui.kata.cni_spec` as libcni would."""
    import sys

    from ...kata import cni_spec
    from ...targets.local import LocalTarget

    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[0] not in ("add", "check", "del"):
        print("usage: cnitool [add|check|del] <net> <netns>", file=sys.stderr)
        return 1
    cmd, name, netns = args[0], args[1], os.path.abspath(args[2])
    t = LocalTarget()
    net = asyncio.run(cni_spec.find_network(t, os.environ.get("NETCONFPATH") or "/etc/cni/net.d", name))
    if net is None:
        print(f"no net configuration with name {name!r} in {os.environ.get('NETCONFPATH')}", file=sys.stderr)
        return 1
    att = cni_spec.Attachment(
        cni_spec.cnitool_container_id(netns),
        netns,
        os.environ.get("CNI_IFNAME") or "eth0",
        os.environ.get("CNI_PATH", ""),
    )
    cache = Path(CNITOOL_CACHE) / f"{name}-{att.container_id}-{att.ifname}"

    def err(stream: str, text: str) -> None:
        print(text, file=sys.stderr)

    try:
        if cmd == "add":
            result = asyncio.run(cni_spec.add(t, net, att, err))
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"kind": "cniCacheV1", "containerId": att.container_id, "result": result}))
            print(json.dumps(result, indent=4))
        elif cmd == "check":
            cached = json.loads(cache.read_text())["result"]
            asyncio.run(cni_spec.check(t, net, att, cached, err))
        else:
            cached = json.loads(cache.read_text())["result"] if cache.exists() else None
            asyncio.run(cni_spec.delete(t, net, att, cached, err))
            cache.unlink(missing_ok=True)
    except cni_spec.CniError as e:
        print(e.message, file=sys.stderr)
        return 1
    return 0


def install_cnitool_standin(bin_dir: str | os.PathLike[str]) -> Path:
    """A CNI_PATH folder for the cnitool branch: links to Debian's plugins plus ``cnitool`` (the stand-in above)."""
    import sys

    folder = Path(bin_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for plugin in os.listdir(LAB_BIN_DIR):
        (folder / plugin).symlink_to(f"{LAB_BIN_DIR}/{plugin}")
    tool = folder / "cnitool"
    tool.write_text(
        f"#!{sys.executable}\nfrom cai_tui.lab.kata.cni import cnitool_main\nraise SystemExit(cnitool_main())\n"
    )
    tool.chmod(0o755)
    return tool
