"""What the CNI doers read on the host: routes and interface addresses (``ip -j``) that a subnet would clash with,
links, network namespaces and the address an attached namespace got."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .cni_spec import NETNS_DIR, CniError

if TYPE_CHECKING:
    from ..targets.base import Target

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Clash:
    what: str  # "route 10.88.0.0/16 dev cni1" / "address 10.88.0.1/16 on eth1"
    dev: str


async def ip_json(t: Target, argv: list[str]) -> list[dict[str, Any]]:
    r = await t.run(["ip", "-j", *argv], timeout=30.0)
    if r.rc == 127:
        raise CniError("ip (iproute2) is not installed: install iproute2")
    if r.rc != 0:
        last = (r.stderr.strip().splitlines() or [f"exit {r.rc}"])[-1]
        raise CniError(f"`ip -j {' '.join(argv)}` failed: {last}")
    try:
        doc = json.loads(r.stdout or "[]")
    except json.JSONDecodeError:
        raise CniError(f"`ip -j {' '.join(argv)}` printed no JSON (iproute2 too old?)") from None
    return [d for d in doc if isinstance(d, dict)] if isinstance(doc, list) else []


def subnets_of(plugin: dict[str, Any]) -> list[str]:
    """The subnets a plugin configuration's IPAM hands out (``ipam.subnet``, ``ipam.ranges``)."""
    ipam = plugin.get("ipam") if isinstance(plugin.get("ipam"), dict) else {}
    assert isinstance(ipam, dict)
    out = [ipam["subnet"]] if isinstance(ipam.get("subnet"), str) else []
    for rset in ipam.get("ranges") or []:
        for r in rset if isinstance(rset, list) else []:
            if isinstance(r, dict) and isinstance(r.get("subnet"), str):
                out.append(r["subnet"])
    return out


def _net(text: str) -> Net | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


async def clashes(t: Target, subnet: str, bridge: str) -> list[Clash]:
    """Routes (main table) and interface addresses that overlap ``subnet``; the bridge's own (``bridge``, where the
    network is already set up) are not clashes, unless the bridge holds an address outside the subnet."""
    net = _net(subnet)
    if net is None:
        raise CniError(f"{subnet!r} is not a network (answers.cni.subnet)", 2)
    found: list[Clash] = []
    for route in await ip_json(t, ["route", "show"]) + await ip_json(t, ["-6", "route", "show"]):
        dst = route.get("dst")
        dev = str(route.get("dev") or "")
        if not isinstance(dst, str) or dst == "default":
            continue
        rnet = _net(dst)
        if rnet is None or rnet.version != net.version or not rnet.overlaps(net) or dev == bridge:
            continue
        via = f" via {route['gateway']}" if route.get("gateway") else ""
        found.append(Clash(f"route {dst}{via} dev {dev}", dev))
    for link in await ip_json(t, ["addr", "show"]):
        dev = str(link.get("ifname") or "")
        for a in link.get("addr_info") or []:
            if not isinstance(a, dict) or a.get("family") not in ("inet", "inet6"):
                continue
            anet = _net(f"{a.get('local')}/{a.get('prefixlen')}")
            if anet is None or anet.version != net.version:
                continue
            inside = anet.overlaps(net)
            if dev == bridge and (inside and anet.prefixlen == net.prefixlen):
                continue  # the network's own gateway address
            if dev == bridge and not anet.is_link_local:
                found.append(Clash(f"address {a.get('local')}/{a.get('prefixlen')} on the bridge {dev}", dev))
            elif inside:
                found.append(Clash(f"address {a.get('local')}/{a.get('prefixlen')} on {dev}", dev))
    return found


def clash_message(subnet: str, bridge: str, found: list[Clash]) -> str:
    listed = "; ".join(c.what for c in found)
    on_bridge = [c for c in found if c.dev == bridge]
    fix = (
        f"delete the old bridge (`ip link del {bridge}`) or pick another bridge name (answers.cni.bridge)"
        if on_bridge and len(on_bridge) == len(found)
        else "pick a private range no route or interface uses for answers.cni.subnet (see `ip route` and `ip addr`), "
        "or remove the network that holds it"
    )
    return f"the subnet {subnet} clashes with the host's {listed}: {fix}"


async def link_exists(t: Target, name: str, netns: str | None = None) -> bool:
    argv = (["ip", "-n", netns] if netns else ["ip"]) + ["link", "show", "dev", name]
    return (await t.run(argv, timeout=30.0)).rc == 0


async def bridge_ports(t: Target, bridge: str) -> list[str]:
    links = await ip_json(t, ["link", "show", "master", bridge])
    return [str(link.get("ifname")) for link in links]


def netns_path(name: str) -> str:
    return f"{NETNS_DIR}/{name}"


async def netns_exists(t: Target, name: str) -> bool:
    return await t.exists(netns_path(name))


async def netns_addresses(t: Target, netns: str, ifname: str = "eth0") -> list[str]:
    """``a.b.c.d/len`` of ``ifname`` inside ``netns`` (empty when the interface is absent)."""
    r = await t.run(["ip", "-n", netns, "-j", "addr", "show", "dev", ifname], timeout=30.0)
    if r.rc != 0:
        return []
    try:
        links = json.loads(r.stdout or "[]")
    except json.JSONDecodeError:
        return []
    out = []
    for link in links if isinstance(links, list) else []:
        for a in link.get("addr_info") or [] if isinstance(link, dict) else []:
            if isinstance(a, dict) and a.get("family") in ("inet", "inet6") and a.get("scope") != "link":
                out.append(f"{a.get('local')}/{a.get('prefixlen')}")
    return out


def netns_address(netns: str, ifname: str = "eth0") -> str:
    """The container address (IPv4, no prefix) of ``ifname`` in ``netns``: what a host reaches the container on.
    CniError when the namespace has no such interface or address."""
    import asyncio

    from ..targets.local import LocalTarget

    addrs = asyncio.run(netns_addresses(LocalTarget(), netns, ifname))
    v4 = [a.split("/")[0] for a in addrs if ":" not in a]
    if not v4:
        raise CniError(f"netns {netns} has no IPv4 address on {ifname}: attach it first (cai-tui kata cni attach)")
    return v4[0]


async def read_sysctl(t: Target, path: str) -> str | None:
    try:
        return (await t.read_file(path)).decode().strip()
    except OSError:
        return None
