"""The recipe: ``{schema_version, flow, name, answers, targets, waivers}``; one class per flow."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal, Union

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


class _RecipeBase(Section):
    schema_version: int = Field(SCHEMA_VERSION, description="recipe format version")
    name: str = Field(description="a short name for this setup")
    description: str = ""
    targets: dict[str, TargetUri] = Field(
        default_factory=dict, description="where each role's commands run, e.g. instance: ssh://root@203.0.113.7"
    )
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
    ROLES: ClassVar[tuple[str, ...]] = ("workstation", "trustee_admin", "instance", "client")

    @field_validator("targets")
    @classmethod
    def _roles(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_roles(v, cls.ROLES)


class KataRecipe(_RecipeBase):
    flow: Literal["kata-virtcca"]
    answers: KataAnswers
    ROLES: ClassVar[tuple[str, ...]] = ("host", "guest")

    @field_validator("targets")
    @classmethod
    def _roles(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_roles(v, cls.ROLES)


def _check_roles(v: dict[str, str], roles: tuple[str, ...]) -> dict[str, str]:
    bad = [k for k in v if k not in roles]
    if bad:
        raise ValueError(f"unknown target role {bad[0]!r}; roles are {', '.join(roles)}")
    return v


Recipe = Annotated[Union[CaiRecipe, KataRecipe], Field(discriminator="flow")]  # noqa: UP007
RecipeModel = CaiRecipe | KataRecipe
RECIPE_ADAPTER: TypeAdapter[CaiRecipe | KataRecipe] = TypeAdapter(Recipe)
MODEL_BY_FLOW: dict[str, type[CaiRecipe] | type[KataRecipe]] = {"cai": CaiRecipe, "kata-virtcca": KataRecipe}


def json_schema() -> dict:
    schema = RECIPE_ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cai-tui recipe"
    return schema
