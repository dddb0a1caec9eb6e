"""cni.network: the CNI conf file, the network namespace and an address from the subnet."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...targets.base import CommandResult, Target
from ..base import CheckContext, Result, Status
from ..common import ev, make
from ..registry import check
from ._common import FLOW, _first_line, _host, _last_line, _read_text, _run, _worst, kata_answers

if TYPE_CHECKING:
    from ...recipe.kata import KataAnswers

NETNS_DIR = "/var/run/netns"
CNI_DOCUMENTED = {"isDefaultGateway": True, "forceAddress": False, "ipMasq": True, "hairpinMode": True}


# --------------------------------------------------------------------------------------------- cni.network


@dataclass
class _Part:
    status: Status
    observed: str
    source: str
    problem: str = ""


def _conf_part(text: str | None, why: str, path: str, answers: KataAnswers) -> tuple[_Part, dict[str, Any]]:
    cni = answers.cni
    if text is None:
        return _Part("fail", f"({why})", path, f"{path} is {why}"), {}
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        line = text.splitlines()[e.lineno - 1] if 0 < e.lineno <= len(text.splitlines()) else ""
        return _Part(
            "fail", f"line {e.lineno}: {line.strip()}", path, f"{path} is not JSON: {e.msg} (line {e.lineno})"
        ), {}
    if not isinstance(doc, dict):
        return _Part("fail", text.strip()[:200], path, f"{path} is not a JSON object"), {}
    ipam = doc.get("ipam") if isinstance(doc.get("ipam"), dict) else {}
    subnet = ipam.get("subnet") if isinstance(ipam, dict) else None
    shown = json.dumps({k: doc.get(k) for k in ("name", "type", "bridge")} | {"ipam": ipam}, ensure_ascii=False)
    problems: list[str] = []
    for key, want in (("name", cni.network_name), ("type", "bridge"), ("bridge", cni.bridge)):
        if doc.get(key) != want:
            problems.append(f'"{key}" is {json.dumps(doc.get(key))}, expected "{want}"')
    if not isinstance(ipam, dict) or ipam.get("type") != "host-local":
        problems.append(f'"ipam.type" is {json.dumps(ipam.get("type") if ipam else None)}, expected "host-local"')
    if not isinstance(subnet, str):
        problems.append('"ipam.subnet" is missing')
    elif "{" in subnet:
        problems.append(f'"ipam.subnet" is still the placeholder {subnet}: put the subnet ({cni.subnet}) there')
    else:
        try:
            if ipaddress.ip_network(subnet, strict=False) != ipaddress.ip_network(cni.subnet, strict=False):
                problems.append(f'"ipam.subnet" is {subnet}, the recipe says {cni.subnet}')
        except ValueError:
            problems.append(f'"ipam.subnet" {subnet!r} is not a network')
    if "cniVersion" not in doc:
        problems.append('"cniVersion" is missing (the document uses "0.4.0")')
    differs = [f"{k}={json.dumps(doc.get(k))}" for k, v in CNI_DOCUMENTED.items() if doc.get(k) != v]
    facts = {"subnet": subnet, "bridge": doc.get("bridge"), "name": doc.get("name"), "differs_from_document": differs}
    if problems:
        return _Part("fail", shown, path, "; ".join(problems)), facts
    note = f" (differs from the document: {', '.join(differs)})" if differs else ""
    return _Part("pass", shown + note, path), facts


async def _read_conf(t: Target, answers: KataAnswers) -> tuple[str, _Part, dict[str, Any]]:
    """(path, judged part, facts) of the network's conf file ``<conf_dir>/<network_name>.conf`` on the host."""
    cni = answers.cni
    conf_path = f"{cni.conf_dir.rstrip('/')}/{cni.network_name}.conf"
    text, why = await _read_text(t, conf_path, 1024 * 1024)
    conf, facts = _conf_part(text, why, conf_path, answers)
    return conf_path, conf, facts


def _address_part(r: CommandResult | None, netns: str, subnet: str, argv: str) -> tuple[_Part, list[str]]:
    if r is None:
        return _Part("unknown", "(commands cannot run on a sysroot)", argv, "cannot run ip here"), []
    if r.rc == 127:
        return _Part("unknown", _last_line(r.stderr) or "ip: not found", argv, "ip (iproute2) is not installed"), []
    if not r.ok:
        line = _last_line(r.stderr) or f"exit {r.rc}"
        return _Part("fail", line, argv, f"ip -n {netns} failed: {line}"), []
    try:
        links = json.loads(r.stdout or "[]")
    except json.JSONDecodeError:
        return _Part("unknown", _first_line(r.stdout)[:200], argv, "ip -j printed no JSON (iproute2 too old?)"), []
    net = ipaddress.ip_network(subnet, strict=False)
    seen: list[str] = []
    inside: list[str] = []
    for link in links if isinstance(links, list) else []:
        for a in link.get("addr_info", []) if isinstance(link, dict) else []:
            if not isinstance(a, dict) or a.get("family") not in ("inet", "inet6"):
                continue
            text = f"{link.get('ifname')} {a.get('local')}/{a.get('prefixlen')}"
            seen.append(text)
            try:
                if ipaddress.ip_address(a.get("local", "")) in net:
                    inside.append(text)
            except ValueError:
                continue
    if not inside:
        return _Part(
            "fail",
            ", ".join(seen) or "(no addresses)",
            argv,
            f"no address from {subnet} inside netns {netns}",
        ), []
    return _Part("pass", ", ".join(inside), argv), inside


@check(
    "cni.network",
    "CNI network: conf file, network namespace and an address from the subnet",
    stage="cni-network",
    flows=FLOW,
    runs_on="host",
)
async def cni_network(ctx: CheckContext) -> Result:
    t = _host(ctx)
    answers, origin = kata_answers(ctx)
    cni = answers.cni
    conf_path, conf, facts = await _read_conf(t, answers)
    ns_path = f"{NETNS_DIR}/{cni.netns}"
    ns_ok = await t.exists(ns_path)
    ns = _Part(
        "pass" if ns_ok else "fail",
        "exists" if ns_ok else "(absent)",
        ns_path,
        "" if ns_ok else f"network namespace {cni.netns} does not exist ({ns_path})",
    )
    argv = ["ip", "-n", cni.netns, "-j", "addr"]
    shown_argv = " ".join(argv)
    if ns_ok:
        addr, inside = _address_part(await _run(ctx, t, argv), cni.netns, cni.subnet, shown_argv)
    else:
        addr, inside = _Part("fail", "(not checked: no namespace)", shown_argv), []
    parts = {"conf": conf, "netns": ns, "address": addr}
    evidence = [ev(ctx, f"{name}: {p.status}: {p.observed}", p.source, t.name) for name, p in parts.items()]
    data: dict[str, Any] = {
        "parts": {
            name: {"status": p.status, "observed": p.observed, "problem": p.problem} for name, p in parts.items()
        },
        "conf": facts,
        "addresses": inside,
        "answers": origin,
    }
    status = _worst(p.status for p in parts.values())
    problems = [p.problem for p in parts.values() if p.problem and p.status == status]
    if status == "fail":
        steps = []
        if conf.status == "fail":
            steps.append(
                f"write {conf_path} as in KATA-4.3 (name {cni.network_name}, bridge {cni.bridge}, "
                f"ipam host-local subnet {cni.subnet})"
            )
        if ns.status == "fail":
            steps.append(f"`ip netns add {cni.netns}` (KATA-4.4)")
        if addr.status == "fail":
            steps.append(
                f"`CNI_PATH={cni.bin_dir} cnitool add {cni.network_name} {ns_path}` then "
                f"`cnitool check {cni.network_name} {ns_path}` (KATA-4.5)"
            )
        return make(
            ctx,
            "fail",
            "; ".join(problems),
            evidence,
            (
                "cni-network-broken",
                "Fix the network: " + "; ".join(steps) + f"; `ip -n {cni.netns} addr` must then "
                f"show an address from {cni.subnet}.",
            ),
            **data,
        )
    if status == "unknown":
        return make(ctx, "unknown", "; ".join(problems), evidence, **data)
    return make(
        ctx,
        "pass",
        f"{conf_path} defines {cni.network_name} on {cni.bridge} with {cni.subnet}; netns {cni.netns} has "
        f"{', '.join(inside)}",
        evidence,
        **data,
    )


# --------------------------------------------------------------------------------------------- cni.conf, cni.netns
# The guards of KATA-4.3 and KATA-4.4 on their own: after the conf is written there is no namespace yet, and after the
# namespace is made there is no address yet, so cni.network (all three) can only prove KATA-4.5.


@check(
    "cni.conf",
    "CNI network conf file: name, bridge and the recipe's subnet",
    stage="cni-network",
    flows=FLOW,
    runs_on="host",
)
async def cni_conf(ctx: CheckContext) -> Result:
    t = _host(ctx)
    answers, origin = kata_answers(ctx)
    cni = answers.cni
    conf_path, conf, facts = await _read_conf(t, answers)
    evidence = [ev(ctx, conf.observed, conf.source, t.name)]
    data: dict[str, Any] = {"conf": facts, "answers": origin}
    if conf.status == "fail":
        fix = (
            f"Write {conf_path} as in KATA-4.3 (name {cni.network_name}, bridge {cni.bridge}, ipam host-local "
            f"subnet {cni.subnet}): `cai-tui kata cni write-conf --recipe RECIPE`."
        )
        return make(ctx, "fail", conf.problem, evidence, ("cni-network-broken", fix), **data)
    return make(
        ctx, "pass", f"{conf_path} defines {cni.network_name} on {cni.bridge} with {cni.subnet}", evidence, **data
    )


@check("cni.netns", "The container's network namespace exists", stage="cni-network", flows=FLOW, runs_on="host")
async def cni_netns(ctx: CheckContext) -> Result:
    t = _host(ctx)
    answers, origin = kata_answers(ctx)
    ns_path = f"{NETNS_DIR}/{answers.cni.netns}"
    if await t.exists(ns_path):
        return make(ctx, "pass", f"network namespace {answers.cni.netns} exists", [ev(ctx, "exists", ns_path, t.name)])
    return make(
        ctx,
        "fail",
        f"network namespace {answers.cni.netns} does not exist ({ns_path})",
        [ev(ctx, "(absent)", ns_path, t.name)],
        ("cni-network-broken", f"Create it as in KATA-4.4: `ip netns add {answers.cni.netns}`."),
        answers=origin,
    )
