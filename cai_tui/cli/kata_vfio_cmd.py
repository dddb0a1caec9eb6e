"""``cai-tui kata vfio plan|apply|undo`` (KATA-3): the GPU and its IOMMU group to vfio-pci, and back.

Exit codes: 0 done (or nothing to do), 1 binding cannot work or failed (the reason and the fix printed), 2 bad input
(or ``apply`` without ``--yes`` and no terminal to ask on), 130 interrupted. Imports of the core stay inside the
commands (``--help`` must stay fast).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

EXIT_INTERRUPTED = 130

_BDF = typer.Option(None, "--bdf", help="The GPU's PCI address (default: answers.gpu.bdf, else every NVIDIA GPU).")
_SYSROOT = typer.Option(
    None, "--sysroot", help="Read and write /sys and /dev under DIR (default: answers.gpu.sysroot, else /)."
)
_RECIPE = typer.Option(None, "--recipe", help="kata-virtcca recipe (answers.gpu.bdf, answers.gpu.sysroot).")
_JSON = typer.Option(False, "--json", help="Print the result as JSON.")


def _say(text: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text.rstrip("\n") + "\n")
    stream.flush()


def _inputs(bdf: str | None, sysroot: Path | None, recipe: Path | None) -> tuple[str | None, str | None, str]:
    """(bdf, sysroot, where the bdf came from), options first, then the recipe's answers."""
    from .common import load_or_report

    found_by = "--bdf"
    if recipe is not None:
        loaded = load_or_report(recipe)
        if loaded is None:
            raise typer.Exit(2)
        if loaded.recipe.flow != "kata-virtcca":
            _say(f"error: {recipe}: a {loaded.recipe.flow} recipe; kata vfio needs a kata-virtcca recipe", err=True)
            raise typer.Exit(2)
        gpu = loaded.recipe.answers.gpu
        if bdf is None and gpu.bdf:
            bdf, found_by = str(gpu.bdf), "answers.gpu.bdf"
        if sysroot is None and gpu.sysroot:
            sysroot = Path(str(gpu.sysroot))
    if sysroot is not None and not sysroot.is_dir():
        _say(f"error: --sysroot {sysroot}: not a directory", err=True)
        raise typer.Exit(2)
    return bdf, (str(sysroot) if sysroot is not None else None), found_by


def _survey(bdf: str | None, sysroot: str | None, found_by: str) -> Any:
    import asyncio

    from ..kata.vfio import VfioError, survey

    try:
        return asyncio.run(survey(sysroot, bdf, found_by))
    except VfioError as e:
        _say(f"error: {e.message}", err=True)
        raise typer.Exit(e.exit_code) from None


def _show(plan: Any, as_json: bool) -> None:
    from ..kata.vfio import plan_text

    if as_json:
        _say(json.dumps(plan.to_json(), indent=2))
    else:
        for text in plan_text(plan):
            _say(text)


def register(app: typer.Typer) -> None:
    """Add ``cai-tui kata vfio …``."""
    vfio_app = typer.Typer(
        help="KATA-3: bind the GPU and the rest of its IOMMU group to vfio-pci (plan, apply, undo).",
        no_args_is_help=True,
    )
    app.add_typer(vfio_app, name="vfio")

    @vfio_app.command("plan")
    def plan_cmd(
        bdf: str | None = _BDF,
        sysroot: Path | None = _SYSROOT,
        recipe: Path | None = _RECIPE,
        as_json: bool = _JSON,
    ) -> None:
        """Show each NVIDIA GPU, its IOMMU group and members, and what binding writes where (exit 1: blocked)."""
        plan = _survey(*_inputs(bdf, sysroot, recipe))
        _show(plan, as_json)
        raise typer.Exit(0 if plan.viable else 1)

    @vfio_app.command("apply")
    def apply_cmd(
        bdf: str | None = _BDF,
        sysroot: Path | None = _SYSROOT,
        recipe: Path | None = _RECIPE,
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (needed without a terminal)."),
        as_json: bool = _JSON,
    ) -> None:
        """Bind the planned functions to vfio-pci, verify the driver and /dev/vfio/<N>, record the old drivers."""
        from ..events import Cancelled, CancelToken
        from ..kata.state import StateError
        from ..kata.vfio import VfioError
        from ..kata.vfio_apply import apply
        from .events_view import EventsView, cancel_on_signals

        plan = _survey(*_inputs(bdf, sysroot, recipe))
        if not as_json or not plan.viable:
            _show(plan, as_json)
        if not plan.viable:
            raise typer.Exit(1)
        if plan.to_bind and not yes:
            if not sys.stdin.isatty():
                _say("error: this changes the host's drivers; give --yes (no terminal to ask on)", err=True)
                raise typer.Exit(2)
            if not typer.confirm(f"Bind {len(plan.to_bind)} function(s) to vfio-pci?", default=False):
                _say("nothing changed")
                raise typer.Exit(1)
        token = CancelToken()
        try:
            with EventsView(out="stdout") as view, cancel_on_signals(token):
                out = apply(plan, sink=view, token=token)
        except (VfioError, StateError) as e:
            _say(f"error: {getattr(e, 'message', e)}", err=True)
            raise typer.Exit(getattr(e, "exit_code", 1)) from None
        except Cancelled:
            _say("interrupted: some functions may be on vfio-pci; `cai-tui kata vfio undo` gives them back", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        if as_json:
            _say(json.dumps({"plan": plan.to_json(), **out.to_json()}))
            return
        for m in out.messages:
            _say(m)
        for node in out.nodes:
            _say(f"export VFIO={node}")

    @vfio_app.command("undo")
    def undo_cmd(
        sysroot: Path | None = _SYSROOT,
        recipe: Path | None = _RECIPE,
        yes: bool = typer.Option(False, "--yes", "-y", help="Accepted for symmetry; undo does not ask."),
        as_json: bool = _JSON,
    ) -> None:
        """Give the recorded functions back to their previous drivers (exit 0 with nothing recorded)."""
        from ..events import Cancelled, CancelToken
        from ..kata.state import StateError
        from ..kata.vfio import VfioError
        from ..kata.vfio_apply import undo
        from .events_view import EventsView, cancel_on_signals

        _, root, _ = _inputs(None, sysroot, recipe)
        token = CancelToken()
        try:
            with EventsView(out="stdout") as view, cancel_on_signals(token):
                out = undo(root, sink=view, token=token)
        except (VfioError, StateError) as e:
            _say(f"error: {getattr(e, 'message', e)}", err=True)
            raise typer.Exit(getattr(e, "exit_code", 1)) from None
        except Cancelled:
            _say("interrupted: run `cai-tui kata vfio undo` again to finish", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        if as_json:
            _say(json.dumps(out.to_json()))
            return
        for m in out.messages:
            _say(m)
