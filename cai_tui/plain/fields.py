"""Which of a stage's fields to ask now; what kind of question each is comes from the core's
:func:`~cai_tui.recipe.field_kinds.field_kind`, the same reading of the model that picks the wizard's form widgets.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from ..recipe.field_kinds import LIST, PATH, SECRET, SECRET_SCHEMES, SELECT, FieldKind, field_kind

if TYPE_CHECKING:
    from ..recipe.draft import Draft
    from ..stages.spec import FieldSpec, StageSpec

__all__ = ["LIST", "PATH", "SECRET", "SECRET_SCHEMES", "SELECT", "FieldKind", "applicable", "field_kind", "pending"]


def applicable(stage: StageSpec, path: str, draft: Draft) -> bool:
    """False when every step of the stage that takes ``path`` as input does not apply to the answers as they stand
    (a step's ``when:``, e.g. the Sam key while the method is gocryptfs)."""
    from ..engine.plan import applies

    users = [s for s in stage.steps if isinstance(s.input, list) and path in s.input]
    return not users or any(not applies(s, draft.loaded) for s in users)


def pending(stage: StageSpec, draft: Draft, asked: Collection[str]) -> list[FieldSpec]:
    """The stage's fields not asked yet that apply now."""
    return [f for f in stage.fields if f.path not in asked and applicable(stage, f.path, draft)]
