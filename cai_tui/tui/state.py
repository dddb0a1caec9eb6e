"""What the wizard knows: the flows' stage specs, the loaded recipe (or why it failed) and the lab.

One place for it, so later form screens edit one draft instead of each keeping a copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..recipe import LoadedRecipe, RecipeError, load_recipe
from ..stages import FlowStages, load_all


@dataclass
class WizardState:
    flows: dict[str, FlowStages]
    loaded: LoadedRecipe | None = None
    recipe_problems: list[str] = field(default_factory=list)
    lab_info: dict[str, Any] | None = None

    @classmethod
    def create(
        cls,
        recipe_path: str | Path | None = None,
        lab_info: dict[str, Any] | None = None,
        flows: dict[str, FlowStages] | None = None,
    ) -> WizardState:
        state = cls(flows=flows if flows is not None else load_all(), lab_info=lab_info)
        if recipe_path is not None:
            try:
                state.loaded = load_recipe(recipe_path)
            except RecipeError as e:
                state.recipe_problems = [str(p) for p in e.problems]
        return state

    @property
    def recipe_flow(self) -> str | None:
        return self.loaded.recipe.flow if self.loaded else None

    def answers_for(self, flow: str) -> Any | None:
        """The recipe's answers when it belongs to ``flow``; a recipe of the other flow has none here."""
        if self.loaded is None or self.loaded.recipe.flow != flow:
            return None
        return self.loaded.recipe.answers
