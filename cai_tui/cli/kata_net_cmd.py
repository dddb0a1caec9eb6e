"""``cai-tui kata cni install-plugins|install-cnitool|write-conf|create-netns|attach|undo (KATA-4)``. Imports of the core stay inside the commands (``--help`` must stay fast).

Exit codes: 0 done (or already so), 1 failed (the message says what to do), 2 input error (a clashing subnet, a recipe
of another flow), 3 manual (the CNI plugins are missing: the message names the documented commands). ``--plan`` prints what the step would run and change, and changes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import typer

cni_app = typer.Typer(
    help="KATA-4: the CNI network — plugins, the network file, the namespace, the attachment (and undo).",
    no_args_is_help=True,
)

RECIPE = typer.Option(..., "--recipe", help="The kata-virtcca recipe (answers.cni.*).")
EXIT_MANUAL = 3  # a step a person must do (cai_tui.kata.cni.EXIT_MANUAL)
PLAN = typer.Option(False, "--plan", help="Print what would run and change; change nothing.")


def _say(message: str, *, err: bool = False) -> None:
    from ..recipe import REDACTOR

    stream = sys.stderr if err else sys.stdout
    stream.write(REDACTOR.redact(message).rstrip("\n") + "\n")
    stream.flush()


def _loaded(recipe: str) -> Any:
    from .common import load_or_report

    loaded = load_or_report(recipe)
    if loaded is None:
        raise typer.Exit(2)
    if loaded.recipe.flow != "kata-virtcca":
        _say(
            f"error: {recipe}: the CNI steps belong to the kata-virtcca flow; this recipe's flow is "
            f"{loaded.recipe.flow!r}",
            err=True,
        )
        raise typer.Exit(2)
    return loaded


def _run(work: Callable[[Any, Any], Coroutine[Any, Any, str | None]], recipe: str) -> None:
    """Run ``work(target, emit)`` with the events view; CniError → its message and exit code."""
    import asyncio

    from ..kata.cni_spec import CniError
    from ..kata.state import StateError
    from ..targets.local import LocalTarget
    from .events_view import EventsView

    _loaded(recipe)
    try:
        with EventsView(out="stderr") as view:
            summary: str | None = asyncio.run(work(LocalTarget(), view))
    except CniError as e:
        _say(e.message if e.exit_code == EXIT_MANUAL else f"error: {e.message}", err=True)
        raise typer.Exit(e.exit_code) from None
    except StateError as e:
        _say(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        _say("interrupted: run `cai-tui kata cni undo --recipe R` to remove what was begun", err=True)
        raise typer.Exit(130) from None
    if summary:
        _say(summary)


def _print_plan(action: str, recipe: str, extra: list[str] | None = None) -> None:
    from ..actions.registry import get

    loaded = _loaded(recipe)
    spec = get(action)
    assert spec is not None
    for step in spec.plan(loaded):
        _say(f"{step.title}\n  $ {' '.join(step.argv)}\n  changes: {step.changes}")
        for n in step.notes:
            _say(f"  note: {n}")
        if step.undo:
            _say(f"  undo: {' '.join(step.undo)}")
    for line in extra or []:
        _say(line)


def _cni(recipe: str) -> Any:
    return _loaded(recipe).recipe.answers.cni


@cni_app.command("install-plugins")
def install_plugins(recipe: str = RECIPE, plan: bool = PLAN) -> None:
    """KATA-4.1: check that answers.cni.bin_dir holds the CNI plugins; else print the documented download commands."""
    if plan:
        return _print_plan("cni.install_plugins", recipe)
    from ..kata.cni import install_plugins as doer

    cni = _cni(recipe)
    _run(lambda t, emit: _summary(doer(t, cni, emit)), recipe)


@cni_app.command("install-cnitool")
def install_cnitool(recipe: str = RECIPE, plan: bool = PLAN) -> None:
    """KATA-4.2: say whether cnitool is installed (optional: attach invokes the plugins directly without it)."""
    if plan:
        return _print_plan("cni.install_cnitool", recipe)
    from ..kata.cni import install_cnitool as doer

    cni = _cni(recipe)
    _run(lambda t, emit: _summary(doer(t, cni, emit)), recipe)


@cni_app.command("write-conf")
def write_conf(recipe: str = RECIPE, plan: bool = PLAN) -> None:
    """KATA-4.3: write <conf_dir>/<network_name>.conf (refused when the subnet clashes with a route or interface)."""
    loaded = _loaded(recipe)
    if plan:
        import asyncio

        from ..kata.cni import conf_diff, conf_plan
        from ..targets.local import LocalTarget

        path, current, new = asyncio.run(conf_plan(LocalTarget(), loaded.recipe))
        diff = conf_diff(path, current, new)
        return _print_plan("cni.write_conf", recipe, diff or [f"{path} is up to date: nothing to write"])
    from ..kata.cni import write_conf as doer

    _run(lambda t, emit: _summary(doer(t, loaded.recipe, emit)), recipe)


@cni_app.command("create-netns")
def create_netns(recipe: str = RECIPE, plan: bool = PLAN) -> None:
    """KATA-4.4: ip netns add <netns> (nothing when it exists)."""
    if plan:
        return _print_plan("cni.create_netns", recipe)
    from ..kata.cni import create_netns as doer

    cni = _cni(recipe)
    _run(lambda t, emit: _summary(doer(t, cni, emit)), recipe)


@cni_app.command("attach")
def attach(recipe: str = RECIPE, plan: bool = PLAN) -> None:
    """KATA-4.5: attach the namespace to the network (cnitool, or the plugins invoked directly), print the address
    and ping it from the host. A second run adds nothing."""
    cni = _cni(recipe)
    if plan:
        from ..kata.cni import documented_attach

        return _print_plan("cni.attach", recipe, ["would run:", *(f"  $ {c}" for c in documented_attach(cni))])
    from ..kata.cni import attach as doer

    async def work(t: Any, emit: Any) -> str:
        from ..kata.cni import cnitool_path

        if cnitool_path(cni) is None:
            emit_note(emit, "cnitool is not installed: attaching by invoking the CNI plugins directly (CNI spec)")
        address, changed = await doer(t, cni, emit)
        what = "attached" if changed else "already attached"
        return f"{what}: netns {cni.netns} on {cni.network_name}, address {address}; ping {address}: ok"

    _run(work, recipe)


def emit_note(emit: Any, text: str) -> None:
    from ..events import note

    emit(note(text, source="cni"))


@cni_app.command("undo")
def undo(
    recipe: str = RECIPE,
    what: str = typer.Option("all", "--what", help="all, or one of attach, netns, conf."),
    plan: bool = PLAN,
) -> None:
    """Undo what the CNI steps recorded: CNI DEL (same config and IDs), the bridge they created, the namespace, the
    network file (restored from its backup or removed). Nothing recorded → 'nothing to undo'."""
    from ..kata.cni import PARTS

    if what != "all" and what not in PARTS:
        _say(f"error: --what {what!r}: use all, attach, netns or conf", err=True)
        raise typer.Exit(2)
    parts = PARTS if what == "all" else (what,)
    if plan:
        return _undo_plan(parts)
    cni = _cni(recipe)
    from ..kata.cni import undo as doer

    async def work(t: Any, emit: Any) -> str:
        done = await doer(t, cni, emit, parts)
        return "undone: " + "; ".join(done) if done else "nothing to undo"

    _run(work, recipe)


def _undo_plan(parts: tuple[str, ...]) -> None:
    from ..kata import state
    from ..kata.cni import REC_ATTACH, REC_CONF, REC_NETNS

    shown = False
    for part, name in (("attach", REC_ATTACH), ("netns", REC_NETNS), ("conf", REC_CONF)):
        if part not in parts and not (part == "attach" and "netns" in parts):
            continue
        rec = state.read_record(name)
        if rec is None:
            continue
        shown = True
        if part == "attach":
            _say(
                f"CNI DEL of {rec['network']['doc'].get('name')} for {rec['container_id']} ({rec['netns_path']})"
                + (f"; ip link del {rec['bridge']['name']}" if rec.get("bridge", {}).get("created") else "")
            )
        elif part == "netns":
            _say(f"ip netns del {rec['netns']}")
        else:
            _say(f"mv {rec['backup']} {rec['path']}" if rec.get("backup") else f"rm {rec['path']}")
    if not shown:
        _say("nothing to undo")


async def _summary(work: Awaitable[Any]) -> str:
    done = await work
    return str(done.summary)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``cai-tui kata``."""
    app.add_typer(cni_app, name="cni")
