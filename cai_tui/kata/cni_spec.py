"""The CNI execution protocol as the spec defines it (containernetworking/cni SPEC.md, sections 2 and 3), for a runtime
that has no ``cnitool``: load a network configuration (``.conf`` or ``.conflist``) the way libcni does, and run an
attachment's plugins with ``CNI_COMMAND`` ADD (in order, each given the previous plugin's result as ``prevResult``),
CHECK (in order, with the ADD's final result) and DEL (in reverse order, with the ADD's final result).

The configuration goes to the plugin on stdin, the parameters in the environment (``CNI_COMMAND``, ``CNI_CONTAINERID``,
``CNI_NETNS``, ``CNI_IFNAME``, ``CNI_PATH``); a plugin answers with a result (or an error structure) on stdout, and
its stderr is streamed as it runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..targets.base import Target

NETNS_DIR = "/var/run/netns"
PLUGIN_TIMEOUT_S = 120.0
CONF_SUFFIXES = (".conf", ".json")
LIST_SUFFIX = ".conflist"


class CniError(Exception):
    """A CNI configuration or plugin failure; the message names the file or plugin and the fix."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class NetworkConfig:
    """A network configuration: its name, version and plugin configurations (one for a ``.conf``)."""

    path: str
    name: str
    cni_version: str
    plugins: tuple[dict[str, Any], ...]
    disable_check: bool = False
    raw: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return {"path": self.path, "doc": self.raw}

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> NetworkConfig:
        return parse_network(str(rec["path"]), rec["doc"])


def parse_network(path: str, doc: Any) -> NetworkConfig:
    """A ``.conflist`` (``plugins`` list) or a single-plugin ``.conf``; CniError naming what is wrong."""
    if not isinstance(doc, dict):
        raise CniError(f"{path}: not a JSON object", 2)
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise CniError(f'{path}: "name" is missing (cnitool finds the network by it)', 2)
    version = str(doc.get("cniVersion") or "0.4.0")
    if "plugins" in doc:
        plugins = doc["plugins"]
        if not isinstance(plugins, list) or not plugins or not all(isinstance(p, dict) for p in plugins):
            raise CniError(f'{path}: "plugins" must be a non-empty list of plugin configurations', 2)
    else:
        plugins = [doc]
    for i, p in enumerate(plugins):
        if not isinstance(p.get("type"), str) or not p["type"]:
            raise CniError(f'{path}: plugin {i + 1} has no "type" (the plugin binary\'s name)', 2)
    return NetworkConfig(path, name, version, tuple(plugins), bool(doc.get("disableCheck")), doc)


def load_text(path: str, text: str) -> NetworkConfig:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise CniError(f"{path}: not JSON: {e.msg} (line {e.lineno}); fix the file or write it again", 2) from None
    return parse_network(path, doc)


async def find_network(t: Target, conf_dir: str, name: str) -> NetworkConfig | None:
    """The network ``name`` in ``conf_dir`` as libcni's LoadNetworkConf finds it: ``.conflist`` files first, then
    ``.conf``/``.json``, each in name order; the first whose ``name`` matches. None when no file defines it."""
    try:
        entries = sorted(await t.listdir(conf_dir))
    except FileNotFoundError:
        return None
    lists = [e for e in entries if e.endswith(LIST_SUFFIX)]
    singles = [e for e in entries if e.endswith(CONF_SUFFIXES)]
    for entry in lists + singles:
        path = f"{conf_dir.rstrip('/')}/{entry}"
        try:
            text = (await t.read_file(path)).decode("utf-8", "replace")
            net = load_text(path, text)
        except (CniError, OSError):
            continue  # libcni skips files it cannot load too
        if net.name == name:
            return net
    return None


def cnitool_container_id(netns_path: str) -> str:
    """The container ID cnitool derives from the namespace path (cnitool/cmd/root.go): attachments made by cnitool
    and by direct invocation are then the same attachment, and either can delete the other's."""
    return "cnitool-" + hashlib.sha512(os.path.abspath(netns_path).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Attachment:
    """The attachment parameters (SPEC section 3): the same for ADD, CHECK and DEL."""

    container_id: str
    netns_path: str
    ifname: str
    cni_path: str

    def env(self, command: str) -> dict[str, str]:
        return {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": self.container_id,
            "CNI_NETNS": self.netns_path,
            "CNI_IFNAME": self.ifname,
            "CNI_PATH": self.cni_path,
            "CNI_ARGS": "",
        }


def request_config(net: NetworkConfig, plugin: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, Any]:
    """The plugin configuration with ``cniVersion`` and ``name`` from the network, ``prevResult`` when given, and no
    ``capabilities`` (SPEC: "Deriving request configuration from plugin configuration")."""
    conf = {k: v for k, v in plugin.items() if k != "capabilities"}
    conf["cniVersion"] = net.cni_version
    conf["name"] = net.name
    if prev is not None:
        conf["prevResult"] = prev
    return conf


def find_plugin(cni_path: str, kind: str) -> str | None:
    for d in cni_path.split(os.pathsep):
        p = os.path.join(d, kind)
        if d and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def missing_plugins(net: NetworkConfig, cni_path: str) -> list[str]:
    """Plugin types (and the IPAM plugins they delegate to) not found in CNI_PATH."""
    kinds: list[str] = []
    for p in net.plugins:
        kinds.append(str(p["type"]))
        ipam = p.get("ipam")
        if isinstance(ipam, dict) and isinstance(ipam.get("type"), str):
            kinds.append(ipam["type"])
    return [k for k in dict.fromkeys(kinds) if find_plugin(cni_path, k) is None]


def _error_text(kind: str, command: str, rc: int, stdout: str, stderr: str) -> str:
    """The plugin's error structure (``code``, ``msg``, ``details``) in words, else its last stderr line."""
    try:
        doc = json.loads(stdout) if stdout.strip() else None
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("msg"):
        details = f" ({doc['details']})" if doc.get("details") else ""
        return f"{kind} {command} failed (CNI error code {doc.get('code')}): {doc['msg']}{details}"
    last = next((ln for ln in reversed(stderr.splitlines()) if ln.strip()), "")
    return f"{kind} {command} failed (exit {rc}): {last or stdout.strip()[:300] or 'no message'}"


LineSink = Callable[[str, str], None]


async def invoke(
    t: Target,
    net: NetworkConfig,
    plugin: dict[str, Any],
    att: Attachment,
    command: str,
    prev: dict[str, Any] | None,
    on_line: LineSink | None = None,
) -> dict[str, Any] | None:
    """Run one plugin binary for ``command``; its result (ADD), None (DEL, CHECK); CniError with its message."""
    kind = str(plugin["type"])
    exe = find_plugin(att.cni_path, kind)
    if exe is None:
        raise CniError(f'plugin "{kind}" not found in CNI_PATH {att.cni_path} (install it there: cni.install_plugins)')
    stdin = json.dumps(request_config(net, plugin, prev)).encode()

    def relay(stream: str, text: str) -> None:
        if stream == "stderr" and on_line is not None:
            on_line("stderr", f"{kind}: {text}")

    r = await t.run([exe], stdin=stdin, env=att.env(command), timeout=PLUGIN_TIMEOUT_S, on_line=relay)
    if r.rc != 0:
        raise CniError(_error_text(kind, command, r.rc, r.stdout, r.stderr))
    if command != "ADD":
        return None
    try:
        result = json.loads(r.stdout)
    except json.JSONDecodeError:
        raise CniError(f"{kind} ADD printed no JSON result: {r.stdout.strip()[:300]!r}") from None
    if not isinstance(result, dict):
        raise CniError(f"{kind} ADD printed {type(result).__name__}, not a result object")
    return result


async def add(t: Target, net: NetworkConfig, att: Attachment, on_line: LineSink | None = None) -> dict[str, Any]:
    """ADD every plugin in order, each with the previous result; the final result."""
    prev: dict[str, Any] | None = None
    for plugin in net.plugins:
        prev = await invoke(t, net, plugin, att, "ADD", prev, on_line)
    assert prev is not None
    return prev


async def check(
    t: Target, net: NetworkConfig, att: Attachment, result: dict[str, Any], on_line: LineSink | None = None
) -> bool:
    """CHECK every plugin in order with the ADD's final result; False when the network disables checks or its
    version predates CHECK (before 0.4.0), CniError when a plugin reports a problem."""
    if net.disable_check or _version(net.cni_version) < (0, 4, 0):
        return False
    for plugin in net.plugins:
        await invoke(t, net, plugin, att, "CHECK", result, on_line)
    return True


async def delete(
    t: Target, net: NetworkConfig, att: Attachment, result: dict[str, Any] | None, on_line: LineSink | None = None
) -> None:
    """DEL every plugin in reverse order with the ADD's final result (none before 0.4.0, or after a failed ADD)."""
    prev = result if result is not None and _version(net.cni_version) >= (0, 4, 0) else None
    for plugin in reversed(net.plugins):
        await invoke(t, net, plugin, att, "DEL", prev, on_line)


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(".")[:3])
    except ValueError:
        return (0, 0, 0)


def result_addresses(result: dict[str, Any], ifname: str) -> list[str]:
    """The container's addresses (``a.b.c.d/len``) in a result: 0.3+ ``ips`` (those on the container's interface
    when the result says which), 0.2 ``ip4``/``ip6``."""
    out: list[str] = []
    raw = result.get("interfaces")
    ifaces: list[Any] = raw if isinstance(raw, list) else []
    for ip in result.get("ips") or []:
        if not isinstance(ip, dict) or not isinstance(ip.get("address"), str):
            continue
        idx = ip.get("interface")
        if isinstance(idx, int) and 0 <= idx < len(ifaces):
            iface = ifaces[idx]
            if isinstance(iface, dict) and iface.get("sandbox") is None:
                continue  # an address on a host-side interface
            if isinstance(iface, dict) and iface.get("name") not in (None, ifname):
                continue
        out.append(ip["address"])
    for key in ("ip4", "ip6"):
        v = result.get(key)
        if isinstance(v, dict) and isinstance(v.get("ip"), str):
            out.append(v["ip"])
    return out
