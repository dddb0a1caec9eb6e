"""What every kata-virtcca doer's plan needs: the flow's answers and the recipe's path for ``--recipe``."""

from __future__ import annotations

from typing import Any

from ..registry import CLI, RECIPE_PLACEHOLDER, _recipe_path

__all__ = ["CLI", "RECIPE_PLACEHOLDER", "kata_answers", "recipe_path"]


def kata_answers(loaded: Any) -> Any:
    """The recipe's answers (:class:`cai_tui.recipe.kata.KataAnswers`); ValueError for a recipe of another flow."""
    recipe = loaded.recipe
    if recipe.flow != "kata-virtcca":
        raise ValueError(f"the kata actions belong to the kata-virtcca flow; this recipe's flow is {recipe.flow!r}")
    return recipe.answers


def recipe_path(loaded: Any, notes: list[str]) -> str:
    """The recipe file's path for ``--recipe``; the placeholder (and a note saying so) for a recipe not from a file."""
    return _recipe_path(loaded, notes)
