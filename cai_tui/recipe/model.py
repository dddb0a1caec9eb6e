"""The recipe: ``{schema_version, flow, name, answers, targets, waivers}``; one class per flow."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import Field, TypeAdapter, field_validator

from .base import Section
from .cai import CaiAnswers
from .kata import KataAnswers
from .types import CheckId, TargetUri

SCHEMA_VERSION = 1
FLOWS = ("cai", "kata-virtcca")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,79}$")


class Waiver(Section):
    """A check the user has decided not to hold against a run (with the reason, shown in reports)."""

    check: CheckId
    reason: str = Field(min_length=3)


class CaiTargets(Section):
    """Where each role's commands run."""

    workstation: TargetUri | None = Field(None, description="where the model is encrypted and uploaded")
    trustee_admin: TargetUri | None = Field(None, description="where kubectl and helm reach the ACK cluster")
    instance: TargetUri | None = Field(None, description="the gn8v-tee instance, e.g. ssh://root@203.0.113.7")
    client: TargetUri | None = Field(None, description="the inference client running TNG")


class KataTargets(Section):
    host: TargetUri | None = Field(None, description="the virtCCA host")
    guest: TargetUri | None = Field(None, description="the confidential container, e.g. ctr://arch")


class _RecipeBase(Section):
    schema_version: int = Field(SCHEMA_VERSION, description="recipe format version")
    name: str = Field(description="a short name for this setup")
    description: str = ""
    waivers: list[Waiver] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("a recipe name is 1–80 letters, digits, spaces, . _ -, starting with a letter or digit")
        return v


class CaiRecipe(_RecipeBase):
    flow: Literal["cai"]
    answers: CaiAnswers
    targets: CaiTargets = Field(default_factory=CaiTargets)


class KataRecipe(_RecipeBase):
    flow: Literal["kata-virtcca"]
    answers: KataAnswers
    targets: KataTargets = Field(default_factory=KataTargets)


Recipe = Annotated[Union[CaiRecipe, KataRecipe], Field(discriminator="flow")]  # noqa: UP007
RecipeModel = CaiRecipe | KataRecipe
RECIPE_ADAPTER: TypeAdapter[CaiRecipe | KataRecipe] = TypeAdapter(Recipe)
MODEL_BY_FLOW: dict[str, type[CaiRecipe] | type[KataRecipe]] = {"cai": CaiRecipe, "kata-virtcca": KataRecipe}


def json_schema() -> dict:
    schema = RECIPE_ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cai-tui recipe"
    return schema
