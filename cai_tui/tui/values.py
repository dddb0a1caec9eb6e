"""The current value of a stage field, as text: what a person may see, never a secret's value.

The path walk and the text form live in the core (:mod:`cai_tui.recipe.draft`); this is the TUI's entry.
"""

from __future__ import annotations

from pydantic import BaseModel

from ..recipe.draft import FieldValue, UnknownField, field_value

__all__ = ["FieldValue", "answer_value"]


def answer_value(answers: BaseModel, path: str) -> FieldValue:
    """``path`` under a recipe's answers; a path the answers do not have reads as unset."""
    try:
        return field_value(answers, path)
    except UnknownField:
        return FieldValue(None)
