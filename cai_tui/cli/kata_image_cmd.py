"""``cai-tui kata image install-buildx|build|undo|import|undo-import (KATA-2)``. Imports of the core stay inside the commands (``--help`` must stay fast).

Exit codes: 0 done; 1 failed (buildx missing for a Dockerfile that needs BuildKit, not enough disk, the build or the
save failed); 2 bad input (recipe, image.build_dir, image.dockerfile); 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

# --- install-buildx / build / undo (KATA-2.1–2.3): the image-build section ------------------------------------------

image_app = typer.Typer(
    help="KATA-2: the vLLM image (buildx, build and docker save, ctr import).", no_args_is_help=True
)
_RECIPE = typer.Option(..., "--recipe", help="kata-virtcca recipe (answers.image).")


def _load(recipe: Path) -> Any:
    from .common import load_or_report

    loaded = load_or_report(recipe)
    if loaded is None:
        raise typer.Exit(2)
    if loaded.recipe.flow != "kata-virtcca":
        typer.echo(f"{recipe}: flow is {loaded.recipe.flow!r}; these steps belong to the kata-virtcca flow", err=True)
        raise typer.Exit(2)
    return loaded


def _run(work: Any) -> None:
    """``work(view, token)`` with live output (stdout; JSON lines under the engine) and Ctrl-C/SIGTERM as cancel;
    returns (exit code, summary) or a summary."""
    from ..events import CancelToken, note
    from ..kata.image_build import ImageError
    from ..kata.state import StateError
    from .events_view import EventsView, cancel_on_signals

    with EventsView(out="stdout") as view, cancel_on_signals(CancelToken()) as token:
        try:
            out = work(view, token)
        except (ImageError, StateError, OSError) as e:
            view(note(getattr(e, "message", None) or str(e), level="error"))
            raise typer.Exit(getattr(e, "exit_code", 1)) from None
        rc, summary = out if isinstance(out, tuple) else (0, out)
        view(note(summary, level="info" if rc == 0 else "error"))
    if rc:
        raise typer.Exit(rc)


@image_app.command("install-buildx")
def install_buildx(recipe: Path = _RECIPE) -> None:
    """KATA-2.1: check `docker buildx version`; when it is missing, the documented install (it downloads from
    GitHub) and whether image build can go on with the classic builder."""
    loaded = _load(recipe)
    from ..kata.image_build import buildx_check

    _run(lambda view, token: buildx_check(loaded.recipe, view))


@image_app.command("build")
def build(
    recipe: Path = _RECIPE,
    need_gib: float | None = typer.Option(
        None, "--need-gib", help="Free space docker's data root must have (default: 60 for the seed's Dockerfile)."
    ),
) -> None:
    """KATA-2.2/2.3: write the seed's Dockerfile into image.build_dir (or use image.dockerfile), docker build
    --target … --tag … with live output, then docker save -o image.archive. Undo: cai-tui kata image undo."""
    loaded = _load(recipe)
    from ..kata.image_build import build as run_build

    _run(lambda view, token: run_build(loaded.recipe, view, token, need_gib))


@image_app.command("undo")
def undo(recipe: Path = _RECIPE) -> None:
    """Remove what image build created: the tag (when it did not exist before), the archive, the Dockerfile it wrote."""
    loaded = _load(recipe)
    from ..kata.image_build import undo as run_undo

    _run(lambda view, token: run_undo(loaded.recipe, view))


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``cai-tui kata``: the ``image`` group."""
    app.add_typer(image_app, name="image")


# --- image import / undo-import (KATA-2.4): the container helper's section (the commands live in kata_container_cmd)
from .kata_container_cmd import add_image_import_commands  # noqa: E402

add_image_import_commands(image_app)
