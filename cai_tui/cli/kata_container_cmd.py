"""``cai-tui kata container run|smi|serve|ask|undo (KATA-5)``. Imports of the core stay inside the commands (``--help`` must stay fast)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

RECIPE_OPT = typer.Option(..., "--recipe", "-r", help="the kata-virtcca recipe (answers.container.*, serve.*)")
PLAN_OPT = typer.Option(False, "--plan", help="print the command lines and change nothing")


def load_kata(recipe: Path) -> Any:
    """The loaded kata recipe; exit 2 with the problems named otherwise."""
    from .common import load_or_report

    loaded = load_or_report(recipe)
    if loaded is None:
        raise typer.Exit(2)
    if loaded.recipe.flow != "kata-virtcca":
        typer.echo(f"{recipe}: flow is {loaded.recipe.flow!r}; these steps belong to the kata-virtcca flow", err=True)
        raise typer.Exit(2)
    return loaded


def print_plan(steps: list[Any]) -> None:
    import shlex

    for s in steps:
        typer.echo(f"# {s.title}  [{s.where}] changes: {s.changes}")
        for n in s.notes:
            typer.echo(f"#   note: {n}")
        typer.echo(shlex.join(s.argv))
        if s.undo:
            typer.echo(f"#   undo: {shlex.join(s.undo)}")


def run_doer(work: Callable[[Any], str]) -> None:
    """Run ``work(sink)`` with live output (stderr; JSON lines on stdout under the engine); its summary as the last
    plain line on stdout; KataRunError → its message and rc. SIGTERM stops it as Ctrl-C does (a child ctr is killed)."""
    import signal

    import cai_tui.events as ev

    from ..kata.container_ctr import KataRunError
    from ..kata.state import StateError
    from .events_view import EventsView

    def on_term(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        with EventsView(out="stderr") as view:
            try:
                summary = work(view)
            except (KataRunError, StateError) as e:
                view(ev.note(str(e), level="error"))
                raise typer.Exit(getattr(e, "rc", 1)) from None
            except KeyboardInterrupt:
                view(ev.note("cancelled", level="error"))
                raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    typer.echo(summary)


def _planned(loaded: Any, action: str) -> None:
    from ..actions import registry

    spec = registry.get(action)
    assert spec is not None, action
    print_plan(spec.plan(loaded))


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``cai-tui kata``."""
    container = typer.Typer(
        help="KATA-5: the confidential container: ctr run (VFIO device, netns), nvidia-smi inside, vLLM serve, "
        "the chat question; undo kills the task and deletes the container.",
        no_args_is_help=True,
    )
    app.add_typer(container, name="container")

    @container.command("run")
    def run(recipe: Path = RECIPE_OPT, plan: bool = PLAN_OPT) -> None:
        """KATA-5.1: ctr run the image detached in the recipe's netns; verified RUNNING with ctr task ls."""
        loaded = load_kata(recipe)
        if plan:
            return _planned(loaded, "container.run")
        from ..kata.container import run_container

        run_doer(lambda sink: run_container(loaded.recipe.answers, sink))

    @container.command("smi")
    def smi(recipe: Path = RECIPE_OPT) -> None:
        """KATA-5.2: nvidia-smi inside the container (ctr task exec), read by the doctor's check guest.nvidia_smi."""
        loaded = load_kata(recipe)
        from ..kata.container_smi import nvidia_smi

        run_doer(lambda sink: nvidia_smi(loaded, sink))

    @container.command("serve")
    def serve(
        recipe: Path = RECIPE_OPT,
        plan: bool = PLAN_OPT,
        timeout: float = typer.Option(1800.0, "--timeout", help="seconds to wait for /health (the model downloads)"),
    ) -> None:
        """KATA-5.3: start the vLLM serve command in the container; wait until /health answers on its address."""
        loaded = load_kata(recipe)
        if plan:
            return _planned(loaded, "container.serve")
        from ..kata.container import serve as do_serve

        run_doer(lambda sink: do_serve(loaded, sink, timeout=timeout))

    @container.command("ask")
    def ask(recipe: Path = RECIPE_OPT, plan: bool = PLAN_OPT) -> None:
        """KATA-5.4: POST the recipe's question to /v1/chat/completions on the container's address; print the answer."""
        loaded = load_kata(recipe)
        if plan:
            return _planned(loaded, "container.ask")
        from ..kata.container import ask as do_ask

        run_doer(lambda sink: do_ask(loaded.recipe.answers, sink))

    @container.command("undo")
    def undo(recipe: Path = RECIPE_OPT) -> None:
        """Kill the task and delete the container (and its snapshot) that container run started; else nothing."""
        load_kata(recipe)
        from ..kata.container import undo_container

        run_doer(undo_container)


# --------------------------------------------------------------------------------------------- KATA-2.4 image import


def add_image_import_commands(image: typer.Typer) -> None:
    """``cai-tui kata image import|undo-import``: added to kata_image_cmd's ``image`` group."""

    @image.command("import")
    def import_(recipe: Path = RECIPE_OPT, plan: bool = PLAN_OPT) -> None:
        """KATA-2.4: ctr image import of answers.image.archive (gunzip when gzip); verifies answers.image.containerd_ref."""
        loaded = load_kata(recipe)
        if plan:
            return _planned(loaded, "image.import")
        from ..kata.image_import import run_import

        run_doer(lambda sink: run_import(loaded.recipe.answers, sink))

    @image.command("undo-import")
    def undo_import(recipe: Path = RECIPE_OPT) -> None:
        """Remove from containerd the image refs that image import added (recorded); else nothing."""
        load_kata(recipe)
        from ..kata.image_import import undo_import as undo

        run_doer(undo)
