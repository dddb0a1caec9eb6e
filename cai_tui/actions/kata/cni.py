"""Plans of the kata-virtcca doers of KATA-4.x: the CNI network (cni.install_plugins, cni.install_cnitool, cni.write_conf, cni.create_netns, cni.attach)."""

from __future__ import annotations

from typing import Any

from ..registry import ActionSpec, PlanStep
from ._common import CLI, kata_answers, recipe_path

FLOW = "kata-virtcca"


def _argv(sub: str, recipe: str) -> list[str]:
    return [CLI, "kata", "cni", sub, "--recipe", recipe]


def _undo(what: str, recipe: str) -> tuple[str, ...]:
    return (CLI, "kata", "cni", "undo", "--what", what, "--recipe", recipe)


def plan_install_plugins(loaded: Any) -> list[PlanStep]:
    from ...kata.cni import MANUAL_PLUGINS, documented_plugins, plugins_missing

    cni = kata_answers(loaded).cni
    notes: list[str] = []
    recipe = recipe_path(loaded, notes)
    title = f"check that {cni.bin_dir} holds the CNI plugins bridge, host-local, loopback (KATA-4.1)"
    host = getattr(loaded.recipe.targets, "host", None)
    here = host in (None, "local")  # the plugins can be looked for while planning only where the host is this machine
    missing = plugins_missing(cni) if here else []
    if missing:  # known before anything starts: a person downloads them (this program downloads nothing)
        return [
            PlanStep(
                title,
                ["sh", "-c", " && ".join(documented_plugins(cni))],
                where="host",
                changes=f"unpacks the CNI plugins into {cni.bin_dir}",
                notes=tuple(notes),
                manual=f"{cni.bin_dir} lacks {', '.join(missing)}; {MANUAL_PLUGINS}",
            )
        ]
    return [
        PlanStep(
            title,
            _argv("install-plugins", recipe),
            where="host",
            changes=f"nothing: {cni.bin_dir} is only read (where the plugins are missing it exits 3 naming the "
            "documented commands)",
            notes=tuple(notes),
        )
    ]


def plan_install_cnitool(loaded: Any) -> list[PlanStep]:
    cni = kata_answers(loaded).cni
    notes: list[str] = []
    recipe = recipe_path(loaded, notes)
    notes.append("cnitool is optional: without it, attach invokes the CNI plugins directly as the CNI spec defines")
    return [
        PlanStep(
            f"look for cnitool in {cni.bin_dir} and PATH (KATA-4.2)",
            _argv("install-cnitool", recipe),
            where="host",
            changes="nothing: prints the documented build commands when cnitool is absent",
            notes=tuple(notes),
        )
    ]


def plan_write_conf(loaded: Any) -> list[PlanStep]:
    cni = kata_answers(loaded).cni
    notes: list[str] = []
    recipe = recipe_path(loaded, notes)
    path = f"{cni.conf_dir.rstrip('/')}/{cni.network_name}.conf"
    return [
        PlanStep(
            f"write {path}: bridge {cni.bridge}, host-local {cni.subnet} (KATA-4.3)",
            _argv("write-conf", recipe),
            where="host",
            changes=f"writes {path} (mode 0644; a differing file is kept as {path}.bak); refused when {cni.subnet} "
            "overlaps a host route, an interface address or another CNI network",
            notes=tuple(notes),
            undo=_undo("conf", recipe),
        )
    ]


def plan_create_netns(loaded: Any) -> list[PlanStep]:
    cni = kata_answers(loaded).cni
    notes: list[str] = []
    recipe = recipe_path(loaded, notes)
    return [
        PlanStep(
            f"ip netns add {cni.netns} (KATA-4.4)",
            _argv("create-netns", recipe),
            where="host",
            changes=f"creates the network namespace {cni.netns} (/var/run/netns/{cni.netns}) unless it exists",
            notes=tuple(notes),
            undo=_undo("netns", recipe),
        )
    ]


def plan_attach(loaded: Any) -> list[PlanStep]:
    cni = kata_answers(loaded).cni
    notes: list[str] = []
    recipe = recipe_path(loaded, notes)
    return [
        PlanStep(
            f"attach netns {cni.netns} to {cni.network_name} and ping its address (KATA-4.5)",
            _argv("attach", recipe),
            where="host",
            changes=f"CNI ADD (cnitool, or the plugins in {cni.bin_dir} invoked directly): a veth pair into "
            f"{cni.netns}, the bridge {cni.bridge} (created when absent), an address from {cni.subnet}, the "
            "bridge plugin's NAT rules (ipMasq); a second run adds nothing",
            notes=tuple(notes),
            undo=_undo("attach", recipe),
        )
    ]


ACTIONS: list[ActionSpec] = [
    ActionSpec("cni.install_plugins", "Check the CNI plugins", FLOW, plan_install_plugins),
    ActionSpec("cni.install_cnitool", "Look for cnitool", FLOW, plan_install_cnitool),
    ActionSpec("cni.write_conf", "Write the CNI network file", FLOW, plan_write_conf),
    ActionSpec("cni.create_netns", "Create the network namespace", FLOW, plan_create_netns),
    ActionSpec("cni.attach", "Attach the namespace to the network", FLOW, plan_attach),
]
