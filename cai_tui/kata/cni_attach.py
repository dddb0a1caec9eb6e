"""KATA-4.5: attach the namespace to the network and prove it (the address, a ping from the host), and detach it.

With cnitool installed, ``cnitool add`` (NETCONFPATH = the recipe's conf_dir); without it, each plugin of the network
configuration is invoked as the CNI spec defines (:mod:`.cni_spec`), with cnitool's container ID so either can undo
the other's attachment. What the attachment created is recorded before the ADD (a DEL must follow even a failed or
interrupted ADD): the configuration and IDs, the final result, the bridge when the plugin created it, the IPAM data
folders it created, and ``net.ipv4.ip_forward`` when the bridge plugin turned it on.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import TYPE_CHECKING, Any

from .. import events as ev
from . import state
from .cni_host import bridge_ports, clash_message, clashes, link_exists, netns_addresses, netns_exists, netns_path
from .cni_spec import (
    Attachment,
    CniError,
    NetworkConfig,
    add,
    check,
    cnitool_container_id,
    delete,
    find_network,
    find_plugin,
    missing_plugins,
    result_addresses,
)

if TYPE_CHECKING:
    from ..events import EventSink
    from ..recipe.kata import CniAnswers
    from ..targets.base import Target

REC_ATTACH = "kata-cni-attach"
IFNAME = "eth0"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
IPAM_DATA_DIR = "/var/lib/cni/networks"
CNI_CACHE_DIR = "/var/lib/cni"


def _note(emit: EventSink, text: str, level: str = "info") -> None:
    emit(ev.note(text, level=level, source="cni"))


def cnitool_path(cni: CniAnswers) -> str | None:
    """cnitool in ``bin_dir`` or on PATH; None when absent (attach then invokes the plugins directly)."""
    import shutil

    return find_plugin(cni.bin_dir, "cnitool") or shutil.which("cnitool")


def documented_attach(cni: CniAnswers, net: NetworkConfig | None = None) -> list[str]:
    """The commands attach runs, as a person would type them."""
    ns = netns_path(cni.netns)
    tool = cnitool_path(cni)
    if tool:
        env = f"CNI_PATH={cni.bin_dir} NETCONFPATH={cni.conf_dir}"
        return [f"{env} {tool} add {cni.network_name} {ns}", f"{env} {tool} check {cni.network_name} {ns}"]
    cid = cnitool_container_id(ns)
    env = f"CNI_CONTAINERID={cid} CNI_NETNS={ns} CNI_IFNAME={IFNAME} CNI_PATH={cni.bin_dir}"
    kinds = [str(p["type"]) for p in net.plugins] if net else ["bridge"]
    src = net.path if net else f"{cni.conf_dir.rstrip('/')}/{cni.network_name}.conf"
    lines = [
        f"CNI_COMMAND=ADD {env} {cni.bin_dir}/{k} < {src}" + (" (+ prevResult)" if i else "")
        for i, k in enumerate(kinds)
    ]
    lines += [f"CNI_COMMAND=CHECK {env} {cni.bin_dir}/{k} < {src} + prevResult" for k in kinds]
    return lines


def _ipam_dirs(net: NetworkConfig, cnitool: bool) -> list[str]:
    """The folders the ADD may create, outermost first: host-local's data folders for this network, and libcni's
    result cache when cnitool runs it."""
    out: list[str] = []
    for p in net.plugins:
        ipam = p.get("ipam") if isinstance(p.get("ipam"), dict) else None
        if ipam and ipam.get("type") == "host-local":
            base = str(ipam.get("dataDir") or IPAM_DATA_DIR)
            chain = [base, f"{base}/{net.name}"]
            if base == IPAM_DATA_DIR:
                chain = [CNI_CACHE_DIR, *chain]
            out += [d for d in chain if d not in out]
    if cnitool:
        out += [d for d in (CNI_CACHE_DIR, f"{CNI_CACHE_DIR}/results") if d not in out]
    return out


async def _read_forward(t: Target) -> str | None:
    try:
        return (await t.read_file(IP_FORWARD)).decode().strip()
    except OSError:
        return None


def _params(cni: CniAnswers) -> Attachment:
    ns = netns_path(cni.netns)
    return Attachment(cnitool_container_id(ns), ns, IFNAME, cni.bin_dir)


async def _load(t: Target, cni: CniAnswers) -> NetworkConfig:
    net = await find_network(t, cni.conf_dir, cni.network_name)
    if net is None:
        raise CniError(
            f"no network {cni.network_name} in {cni.conf_dir}: write it first (cai-tui kata cni write-conf, KATA-4.3)"
        )
    return net


async def attach(t: Target, cni: CniAnswers, emit: EventSink, *, ping: bool = True) -> tuple[str, bool]:
    """Attach (once) and verify; (the container's address, whether anything changed)."""
    if not await netns_exists(t, cni.netns):
        raise CniError(f"network namespace {cni.netns} does not exist: create it first (cai-tui kata cni create-netns)")
    net = await _load(t, cni)
    att = _params(cni)
    rec = state.read_record(REC_ATTACH)
    if rec is not None and (
        rec.get("netns_path") != att.netns_path or rec.get("network", {}).get("doc", {}).get("name") != net.name
    ):
        raise CniError(
            f"an attachment of netns {rec.get('netns_path')} to {rec.get('network', {}).get('doc', {}).get('name')} is "
            "recorded and the recipe names another: undo it first (cai-tui kata cni undo --recipe R)"
        )
    present = await netns_addresses(t, cni.netns, IFNAME)
    if rec is not None and rec.get("state") == "added" and present:
        _note(emit, f"already attached ({rec.get('via')}, container ID {rec['container_id']}): not adding again")
        if rec.get("via") == "plugins" and await check(
            t, NetworkConfig.from_record(rec["network"]), att, rec["result"], _relay(emit)
        ):
            _note(emit, "CNI CHECK passed for every plugin")
        return await _verify(t, cni, present, emit, ping), False
    if rec is None and present:
        _note(
            emit,
            f"{IFNAME} in netns {cni.netns} already has {', '.join(present)}, attached by something else: "
            "nothing is recorded, so undo will not detach it (detach it with `cnitool del` if cnitool made it)",
            "warn",
        )
        return await _verify(t, cni, present, emit, ping), False
    if rec is not None:  # an ADD that did not finish (or whose interface is gone): DEL before adding again
        _note(emit, "an earlier attachment did not finish or its interface is gone: deleting it before adding again")
        await detach(t, rec, emit)
        state.drop_record(REC_ATTACH)
    missing = missing_plugins(net, cni.bin_dir)
    if missing:
        raise CniError(f"CNI plugin(s) {', '.join(missing)} not in {cni.bin_dir} (answers.cni.bin_dir): see KATA-4.1")
    subnet = next((s for p in net.plugins for s in _subnets(p)), None)
    if subnet:
        found = await clashes(t, subnet, str(net.plugins[0].get("bridge") or cni.bridge))
        if found:
            raise CniError(clash_message(subnet, cni.bridge, found), 2)
    bridge = str(net.plugins[0].get("bridge") or "cni0") if net.plugins[0].get("type") == "bridge" else None
    tool = cnitool_path(cni)
    rec = {
        "state": "adding",
        "via": "cnitool" if tool else "plugins",
        "network": net.to_record(),
        "container_id": att.container_id,
        "netns": cni.netns,
        "netns_path": att.netns_path,
        "ifname": att.ifname,
        "cni_path": att.cni_path,
        "conf_dir": cni.conf_dir,
        "cnitool": tool,
        "result": None,
        "bridge": {"name": bridge, "created": bridge is not None and not await link_exists(t, bridge)},
        "dirs_created": [d for d in _ipam_dirs(net, bool(tool)) if not await t.exists(d)],
        "ip_forward_before": await _read_forward(t),
    }
    state.write_record(REC_ATTACH, rec)
    for line in documented_attach(cni, net)[: 1 if tool else len(net.plugins)]:
        emit(ev.line(f"$ {line}", source="cni"))
    try:
        if tool:
            result = await _cnitool_run(t, tool, "add", rec, emit)
        else:
            result = await add(t, net, att, _relay(emit))
    except BaseException as e:
        # SPEC: "A delete must still be executed even if the add fails"
        _note(emit, "ADD failed: deleting the partial attachment", "warn")
        try:
            await detach(t, rec, emit)
            state.drop_record(REC_ATTACH)
        except CniError as again:
            _note(
                emit, f"the DEL after the failed ADD failed too: {again.message} (the record stays for undo)", "error"
            )
        if isinstance(e, CniError) and "already has an IP address different from" in e.message:
            raise CniError(
                f"{e.message}: the bridge {bridge} exists with another address (left by another CNI): "
                f"`ip link del {bridge}` or pick another answers.cni.bridge"
            ) from None
        raise
    rec["result"], rec["state"] = result, "added"
    if rec["ip_forward_before"] == "0" and await _read_forward(t) == "1":
        rec["ip_forward_changed"] = True
        _note(emit, "the bridge plugin turned on net.ipv4.ip_forward (undo turns it off again)")
    state.write_record(REC_ATTACH, rec)
    emit(ev.line(f"result: {json.dumps(result, separators=(',', ':'))}", source="cni"))
    if tool:
        await _cnitool_run(t, tool, "check", rec, emit)
        _note(emit, "cnitool check passed")
    elif await check(t, net, att, result, _relay(emit)):
        _note(emit, "CNI CHECK passed for every plugin")
    addrs = result_addresses(result, IFNAME) or await netns_addresses(t, cni.netns, IFNAME)
    return await _verify(t, cni, addrs, emit, ping), True


def _subnets(plugin: dict[str, Any]) -> list[str]:
    from .cni_host import subnets_of

    return subnets_of(plugin)


def _relay(emit: EventSink) -> Any:
    def on_line(stream: str, text: str) -> None:
        if text.strip():
            emit(ev.line(text, stream=stream, source="cni"))

    return on_line


async def _cnitool_run(t: Target, tool: str, cmd: str, rec: dict[str, Any], emit: EventSink) -> dict[str, Any]:
    name = str(rec["network"]["doc"]["name"])
    env = {"CNI_PATH": str(rec["cni_path"]), "NETCONFPATH": str(rec["conf_dir"]), "CNI_IFNAME": str(rec["ifname"])}
    r = await t.run([tool, cmd, name, str(rec["netns_path"])], env=env, timeout=120.0, on_line=_relay(emit))
    if r.rc != 0:
        last = (r.stderr.strip().splitlines() or [r.stdout.strip() or f"exit {r.rc}"])[-1]
        raise CniError(f"cnitool {cmd} {name} {rec['netns_path']} failed: {last}")
    if cmd != "add":
        return {}
    start = r.stdout.find("{")
    try:
        doc = json.loads(r.stdout[start:]) if start >= 0 else {}
    except json.JSONDecodeError:
        doc = {}
    return doc if isinstance(doc, dict) else {}


async def _verify(t: Target, cni: CniAnswers, addrs: list[str], emit: EventSink, ping: bool) -> str:
    v4 = [a.split("/")[0] for a in addrs if ":" not in a]
    if not v4:
        raise CniError(f"no IPv4 address on {IFNAME} in netns {cni.netns} (`ip -n {cni.netns} addr`)")
    _note(emit, f"netns {cni.netns}: {IFNAME} has {', '.join(addrs)}")
    if ping:
        argv = ["ping", "-c", "3", "-W", "2", "-i", "0.2", v4[0]]
        emit(ev.line(f"$ {shlex.join(argv)}", source="cni"))
        r = await t.run(argv, timeout=30.0, on_line=_relay(emit))
        if r.rc == 127:
            raise CniError("ping is not installed (iputils-ping): install it to verify the network")
        if r.rc != 0:
            raise CniError(
                f"attached, but the host cannot ping {v4[0]} (exit {r.rc}): check the bridge "
                f"{cni.bridge} is up with its gateway address (`ip addr show {cni.bridge}`) and the "
                "host firewall (`iptables -S`)"
            )
    return v4[0]


async def detach(t: Target, rec: dict[str, Any], emit: EventSink) -> list[str]:
    """CNI DEL with the recorded configuration and IDs, then what the ADD created around it."""
    done: list[str] = []
    net = NetworkConfig.from_record(rec["network"])
    att = Attachment(str(rec["container_id"]), str(rec["netns_path"]), str(rec["ifname"]), str(rec["cni_path"]))
    conf_there = os.path.exists(str(rec["network"]["path"]))
    if rec.get("via") == "cnitool" and rec.get("cnitool") and conf_there:
        await _cnitool_run(t, str(rec["cnitool"]), "del", rec, emit)
        done.append(f"cnitool del {net.name} {att.netns_path}")
    else:
        await delete(t, net, att, rec.get("result"), _relay(emit))
        done.append(f"CNI DEL of {net.name} for {att.container_id} ({att.netns_path}, {att.ifname})")
    bridge = rec.get("bridge") or {}
    if bridge.get("created") and await link_exists(t, str(bridge["name"])):
        ports = await bridge_ports(t, str(bridge["name"]))
        if ports:
            _note(emit, f"the bridge {bridge['name']} still has ports ({', '.join(ports)}): left in place", "warn")
        else:
            r = await t.run(["ip", "link", "del", str(bridge["name"])], timeout=30.0)
            if r.rc != 0:
                raise CniError(f"`ip link del {bridge['name']}` failed: {r.stderr.strip() or r.rc}")
            done.append(f"bridge {bridge['name']} deleted (the bridge plugin had created it)")
    for d in reversed(rec.get("dirs_created") or []):
        _remove_ipam_dir(d, done)
    if rec.get("ip_forward_changed"):
        await t.write_file(IP_FORWARD, b"0\n", mode=0o644)
        done.append("net.ipv4.ip_forward set back to 0")
    for line in done:
        _note(emit, line)
    return done


def _remove_ipam_dir(path: str, done: list[str]) -> None:
    """A folder the ADD created, once it holds only host-local's bookkeeping (lock, last_reserved_ip.*)."""
    try:
        entries = os.listdir(path)
    except FileNotFoundError:
        return
    if any(not (e == "lock" or e.startswith("last_reserved_ip.")) for e in entries):
        return
    for e in entries:
        os.unlink(os.path.join(path, e))
    try:
        os.rmdir(path)
        done.append(f"{path} removed (created by the ADD)")
    except OSError:
        pass
