"""The current value of a stage field, as text: what a person may see, never a secret's value."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import BaseModel

from ..recipe import SecretRef


@dataclass(frozen=True)
class FieldValue:
    text: str | None  # None: the recipe leaves it unset
    is_default: bool = False  # the recipe does not write it; the model's default applies
    is_secret: bool = False  # a SecretRef: ``text`` is the reference


def answer_value(answers: BaseModel, path: str) -> FieldValue:
    current: Any = answers
    explicit = True
    for part in path.split("."):
        if not isinstance(current, BaseModel) or part not in type(current).model_fields:
            return FieldValue(None)
        explicit = explicit and part in current.model_fields_set
        current = getattr(current, part)
        if current is None:
            return FieldValue(None)
    if isinstance(current, SecretRef):
        return FieldValue(str(current), not explicit, True)
    return FieldValue(_text(current), not explicit)


def _text(value: Any) -> str:
    if isinstance(value, SecretRef):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, BaseModel):
        return ", ".join(f"{k}={_text(v)}" for k, v in value if v is not None)
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_text(v) for v in value) if value else "[]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items()) if value else "{}"
    return str(value)
