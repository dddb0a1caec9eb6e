"""What several commands share: loading a recipe with its problems printed, and the hidden secret prompt.
Light imports only (``--help`` stays fast)."""

from __future__ import annotations

import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from ..recipe.yaml_io import LoadedRecipe
    from ..targets.base import Target

T = TypeVar("T")


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


async def close_targets(targets: dict[str, Target]) -> None:
    """Close each distinct target once; a failing close is ignored (it must not hide results)."""
    for t in {id(t): t for t in targets.values()}.values():
        try:
            await t.close()
        except Exception:
            pass


def run_closing(work: Coroutine[Any, Any, T], targets: dict[str, Target]) -> T:
    """``asyncio.run(work)``, the targets closed afterwards whatever happened."""
    import asyncio

    async def go() -> T:
        try:
            return await work
        finally:
            await close_targets(targets)

    return asyncio.run(go())
