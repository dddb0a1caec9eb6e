"""What several commands share: loading a recipe with its problems printed, and the hidden secret prompt.
Light imports only (``--help`` stays fast)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from ..recipe.yaml_io import LoadedRecipe


def load_or_report(path: Path | str) -> LoadedRecipe | None:
    """The loaded recipe, or None after printing each problem as ``file:line: field: message`` on stderr."""
    from ..recipe import RecipeError, load_recipe

    try:
        return load_recipe(path)
    except RecipeError as e:
        for p in e.problems:
            typer.echo(str(p), err=True)
        return None


def hidden_prompter() -> Any:
    """A ``prompt`` secret resolver that asks on the terminal without echo; None without a terminal."""
    if not sys.stdin.isatty():
        return None

    def ask(field: str) -> str:
        return str(typer.prompt(f"{field} (input hidden)", hide_input=True, err=True))

    return ask
