"""KATA-4: the CNI network's doers — plugins present, the network file written, the namespace made, the namespace
attached (cnitool where installed, else the plugins invoked as the CNI spec defines: :mod:`.cni_spec`) and pinged —
and the undo of each, from what was recorded (:mod:`.state`): CNI DEL with the same configuration and IDs, the bridge
the plugin created removed, the namespace deleted, the network file restored from its backup or removed.

Records: ``kata-cni-conf``, ``kata-cni-netns``, ``kata-cni-attach``. Every function reports through ``emit``.
"""

from __future__ import annotations

import difflib
import os
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import events as ev
from . import state
from .cni_attach import REC_ATTACH, attach, cnitool_path, detach, documented_attach
from .cni_host import clash_message, clashes, netns_exists, netns_path, subnets_of
from .cni_spec import CniError, find_plugin, load_text

if TYPE_CHECKING:
    from ..events import EventSink
    from ..recipe.kata import CniAnswers
    from ..targets.base import Target

REC_CONF = "kata-cni-conf"
REC_NETNS = "kata-cni-netns"
PLUGINS_NEEDED = ("bridge", "host-local", "loopback")
PARTS = ("attach", "netns", "conf")
EXIT_MANUAL = 3  # as the other kata doers: a step a person must do (the message names the commands)
MANUAL_PLUGINS = (
    "cai-tui downloads nothing: the documented commands fetch the release from GitHub (on an aarch64 host the "
    "arm64 archive, not arm); or set answers.cni.bin_dir to a folder that holds them (Debian's "
    "containernetworking-plugins: /usr/lib/cni)"
)

__all__ = ["CniError", "attach", "create_netns", "install_cnitool", "install_plugins", "undo", "write_conf"]


@dataclass
class Done:
    """What a doer did: ``changed`` False when everything was already so."""

    summary: str
    changed: bool


def documented_plugins(cni: CniAnswers) -> list[str]:
    v = cni.plugins_version
    tgz = f"cni-plugins-linux-arm64-{v}.tgz"
    bin_dir, conf_dir = shlex.quote(cni.bin_dir), shlex.quote(cni.conf_dir)
    return [
        f"wget https://github.com/containernetworking/plugins/releases/download/{v}/{tgz}",
        f"mkdir -p {bin_dir} {conf_dir}",
        f"tar -zxvf {tgz} -C {bin_dir}",
    ]


def documented_cnitool(cni: CniAnswers) -> list[str]:
    tool = shlex.quote(f"{cni.bin_dir.rstrip('/')}/cnitool")
    return [
        "git clone https://github.com/containernetworking/cni.git",
        "cd cni && go mod tidy && cd cnitool && GOOS=linux GOARCH=arm64 go build .",
        f"cp cni/cnitool/cnitool {tool} && chmod +x {tool}",
        f"ln -sf {tool} /usr/local/bin/cnitool",
    ]


def _note(emit: EventSink, text: str, level: str = "info") -> None:
    emit(ev.note(text, level=level, source="cni"))


async def install_plugins(t: Target, cni: CniAnswers, emit: EventSink) -> Done:
    """KATA-4.1: done when ``bin_dir`` holds bridge, host-local and loopback; else CniError with the documented
    commands (this program downloads nothing)."""
    missing = plugins_missing(cni)
    if not missing:
        return Done(
            f"{cni.bin_dir} already holds the CNI plugins ({', '.join(PLUGINS_NEEDED)}): nothing to install", False
        )
    raise CniError(
        f"manual: {cni.bin_dir} lacks the CNI plugin(s) {', '.join(missing)}; {MANUAL_PLUGINS}. Run this yourself: "
        + " && ".join(documented_plugins(cni)),
        EXIT_MANUAL,
    )


def plugins_missing(cni: CniAnswers) -> list[str]:
    """The plugins the network needs that ``bin_dir`` lacks (on this machine)."""
    return [p for p in PLUGINS_NEEDED if find_plugin(cni.bin_dir, p) is None]


async def install_cnitool(t: Target, cni: CniAnswers, emit: EventSink) -> Done:
    """KATA-4.2: cnitool is optional here; absent, attach invokes the plugins directly as the CNI spec defines."""
    found = cnitool_path(cni)
    if found:
        return Done(f"cnitool is installed ({found}): attach uses it", False)
    cmds = "\n  ".join(documented_cnitool(cni))
    _note(emit, f"to build cnitool as the document does (needs Go and network access):\n  {cmds}")
    return Done(
        "cnitool is not installed: nothing to do — attach invokes the CNI plugins directly as the CNI spec defines "
        "(CNI_COMMAND=ADD, CNI_NETNS, …), which is what cnitool does",
        False,
    )


# ------------------------------------------------------------------------------------------------ KATA-4.3
def conf_path(cni: CniAnswers) -> str:
    return f"{cni.conf_dir.rstrip('/')}/{cni.network_name}.conf"


async def _read(t: Target, path: str) -> bytes | None:
    try:
        return await t.read_file(path)
    except FileNotFoundError:
        return None


async def other_networks(t: Target, cni: CniAnswers, own: str) -> list[str]:
    """Problems with the other files of ``conf_dir``: one defining the same network name (cnitool would take the
    first), one whose IPAM subnet overlaps ours."""
    import ipaddress

    try:
        entries = sorted(await t.listdir(cni.conf_dir))
    except FileNotFoundError:
        return []
    ours = ipaddress.ip_network(cni.subnet, strict=False)
    problems = []
    for entry in entries:
        path = f"{cni.conf_dir.rstrip('/')}/{entry}"
        if path == own or not entry.endswith((".conf", ".conflist", ".json")):
            continue
        try:
            net = load_text(path, (await t.read_file(path)).decode("utf-8", "replace"))
        except (CniError, OSError):
            continue
        if net.name == cni.network_name:
            problems.append(
                f"{path} defines the network {net.name} too: remove it or pick another answers.cni.network_name"
            )
        for plugin in net.plugins:
            for s in subnets_of(plugin):
                try:
                    if ipaddress.ip_network(s, strict=False).overlaps(ours):
                        problems.append(f"{path} (network {net.name}) uses {s}, which overlaps {cni.subnet}")
                except ValueError:
                    continue
    return problems


async def check_subnet(t: Target, cni: CniAnswers) -> None:
    """CniError (exit 2) naming each route, interface address or CNI network that ``cni.subnet`` overlaps."""
    found = await clashes(t, cni.subnet, cni.bridge)
    if found:
        raise CniError(clash_message(cni.subnet, cni.bridge, found), 2)
    others = await other_networks(t, cni, conf_path(cni))
    if others:
        raise CniError("; ".join(others), 2)


async def conf_plan(t: Target, recipe: Any) -> tuple[str, str | None, str]:
    """(path, current text or None, new text) of the network file."""
    from ..render.kata import CniConf

    rendered = CniConf().render(recipe)
    path = conf_path(recipe.answers.cni)
    current = await _read(t, path)
    return path, None if current is None else current.decode("utf-8", "replace"), rendered.text


def _missing_dirs(folder: str) -> list[str]:
    """``folder`` and its absent parents, outermost first (what ``mkdir -p`` creates)."""
    out: list[str] = []
    d = os.path.abspath(folder)
    while not os.path.exists(d):
        out.insert(0, d)
        d = os.path.dirname(d)
    return out


def conf_diff(path: str, current: str | None, new: str) -> list[str]:
    old = (current or "").splitlines(keepends=True)
    label = path if current is not None else "/dev/null"
    return [ln.rstrip("\n") for ln in difflib.unified_diff(old, new.splitlines(keepends=True), label, path)]


async def write_conf(t: Target, recipe: Any, emit: EventSink) -> Done:
    """KATA-4.3: the rendered network file in ``conf_dir``, refused when the subnet clashes; a differing file is kept
    as ``.bak`` first (once: the user's original, not our own earlier write)."""
    cni = recipe.answers.cni
    await check_subnet(t, cni)
    path, current, new = await conf_plan(t, recipe)
    if current == new:
        return Done(
            f"{path} is up to date (network {cni.network_name}, bridge {cni.bridge}, subnet {cni.subnet})", False
        )
    for line in conf_diff(path, current, new):
        emit(ev.line(line, source="cni"))
    rec = state.read_record(REC_CONF)
    if rec is None or rec.get("path") != path:
        rec = {
            "path": path,
            "existed": current is not None,
            "backup": None,
            "dirs_created": _missing_dirs(cni.conf_dir),
        }
        if current is not None:
            backup = path + ".bak"
            mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o644
            await t.write_file(backup, current.encode(), mode=mode)
            rec["backup"] = backup
            _note(emit, f"the previous {path} is kept as {backup}")
        state.write_record(REC_CONF, rec)
    await t.run(["mkdir", "-p", cni.conf_dir], timeout=30.0)
    await t.write_file(path, new.encode(), mode=0o644)
    return Done(
        f"{path} {'changed' if current is not None else 'written'}: network {cni.network_name}, bridge "
        f"{cni.bridge}, subnet {cni.subnet}",
        True,
    )


# ------------------------------------------------------------------------------------------------ KATA-4.4
async def create_netns(t: Target, cni: CniAnswers, emit: EventSink) -> Done:
    if await netns_exists(t, cni.netns):
        return Done(f"network namespace {cni.netns} exists ({netns_path(cni.netns)})", False)
    state.write_record(REC_NETNS, {"netns": cni.netns, "created": True})
    r = await t.run(["ip", "netns", "add", cni.netns], timeout=30.0, on_line=ev.line_sink(emit, source="ip"))
    if r.rc != 0:
        state.drop_record(REC_NETNS)
        raise CniError(f"`ip netns add {cni.netns}` failed: {(r.stderr.strip() or f'exit {r.rc}')}")
    return Done(f"network namespace {cni.netns} created ({netns_path(cni.netns)})", True)


# ------------------------------------------------------------------------------------------------ undo
async def undo(t: Target, cni: CniAnswers, emit: EventSink, parts: tuple[str, ...] = PARTS) -> list[str]:
    """Undo what was recorded, in reverse order (detach, delete the namespace, restore the file); what was undone
    (empty: nothing recorded)."""
    done: list[str] = []
    if "attach" in parts or "netns" in parts:  # the attachment lives in the namespace: detach it first
        rec = state.read_record(REC_ATTACH)
        if rec is not None:
            done += await detach(t, rec, emit)
            state.drop_record(REC_ATTACH)
    if "netns" in parts:
        rec = state.read_record(REC_NETNS)
        if rec is not None:
            name = str(rec["netns"])
            if await netns_exists(t, name):
                r = await t.run(["ip", "netns", "del", name], timeout=30.0, on_line=ev.line_sink(emit, source="ip"))
                if r.rc != 0:
                    raise CniError(f"`ip netns del {name}` failed: {r.stderr.strip() or r.rc}")
                done.append(f"network namespace {name} deleted")
            else:
                done.append(f"network namespace {name} was already gone")
            state.drop_record(REC_NETNS)
    if "conf" in parts:
        rec = state.read_record(REC_CONF)
        if rec is not None:
            path = str(rec["path"])
            backup = rec.get("backup")
            if backup and os.path.exists(backup):
                os.replace(backup, path)
                done.append(f"{path} restored from {backup}")
            else:
                try:
                    os.unlink(path)
                    done.append(f"{path} removed (it did not exist before)")
                except FileNotFoundError:
                    done.append(f"{path} was already gone")
            for d in reversed(rec.get("dirs_created") or []):
                try:
                    os.rmdir(d)
                    done.append(f"{d} removed (created for the file, now empty)")
                except OSError:
                    break  # not empty (or gone): what is left there is not ours
            state.drop_record(REC_CONF)
    return done


__all__ += ["Done", "check_subnet", "conf_diff", "conf_plan", "documented_attach"]
