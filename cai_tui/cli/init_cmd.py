"""``cai-tui init``: start a new recipe of a flow, in the wizard or (``--plain``) as one-line prompts.

Light imports only: questionary and Textual load when the command runs, not for ``--help``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def init_command(
    ctx: typer.Context,
    plain: bool = typer.Option(
        False, "--plain", help="Ask the stages as plain text prompts (serial consoles, ssh -t, screen readers)."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Where to save the recipe (default: <flow>-recipe.yaml here)."
    ),
    flow: str = typer.Option("cai", "--flow", help="cai or kata-virtcca."),
    lang: str | None = typer.Option(None, "--lang", help="Language of the questions: en or zh."),
) -> None:
    """Start a new recipe from the flow's documented example and fill it in stage by stage."""
    from ..recipe.model import FLOWS

    parent = ctx.parent.params if ctx.parent is not None else {}
    lang = lang or parent.get("lang") or "en"
    if lang not in ("en", "zh"):
        typer.echo(f"--lang: {lang!r} is not a language of cai-tui; use en or zh", err=True)
        raise typer.Exit(2)
    if flow not in FLOWS:
        typer.echo(f"--flow: {flow!r} is not a flow; use one of {', '.join(FLOWS)}", err=True)
        raise typer.Exit(2)
    if plain:
        from ..plain.run import run_plain

        raise typer.Exit(run_plain(flow=flow, output=output, lang=lang))
    raise typer.Exit(_wizard(flow, output, lang))


def _wizard(flow: str, output: Path | None, lang: str) -> int:
    """The Textual wizard on an unsaved recipe of ``flow``; with ``-o`` every Ctrl+S saves there."""
    if output is not None and output.exists():
        typer.echo(
            f"{output}: already exists; open it with `cai-tui --recipe {output}`, or give another -o (nothing changed)",
            err=True,
        )
        return 2
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        typer.echo(
            "cai-tui init opens the wizard on a terminal; without one use `cai-tui recipe new FILE --flow "
            f"{flow}` and edit the file",
            err=True,
        )
        return 2
    from ..tui.app import make_app

    app = make_app(lang=lang)
    app.state.new_recipe(flow)
    if output is not None and app.state.loaded is not None:
        app.state.loaded.path = output  # the recipe's file-to-be: Ctrl+S writes it (no Save-as question)
    app.run()
    return app.return_code or 0
