"""Add a waiver to a recipe: a check the user decided not to hold against a run, with the reason.

The waiver is validated by the recipe model (a reason of at least 3 characters, a check id or a glob like ``gpu.*``),
then added both to the recipe and to its YAML document in place, so the comments of the file survive the next save.
:func:`save_waiver` writes one waiver into a recipe file alone (atomic, previous file as ``.bak``), for a front end
whose draft holds other changes the user has not chosen to save yet.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .model import MODEL_BY_FLOW, Waiver
from .problems import Problem, RecipeError, mapping_line, problems_from_validation
from .yaml_io import LoadedRecipe, load_recipe, save_recipe

NEED_REASON = "a waiver needs a reason: say why this check may fail here (the reason is shown in every report)"


def _refuse(loaded: LoadedRecipe, field: str, message: str) -> RecipeError:
    return RecipeError([Problem(loaded.source, None, field, message)])


def add_waiver(loaded: LoadedRecipe, check: str, reason: str, *, covers: str | None = None) -> Waiver:
    """Waive ``check`` (an id or a glob) for ``reason`` in ``loaded`` (recipe and document; nothing on disk).

    A scope that is already waived gets the new reason instead of a second entry. ``covers``: a check id the scope
    must match (the check being waived). RecipeError naming ``waivers[i].<field>`` when the waiver is not valid;
    then nothing changes."""
    scope = check.strip()
    text = " ".join(reason.split())  # one line: it is printed in reports
    current = [w.model_dump() for w in loaded.recipe.waivers]
    index = next((i for i, w in enumerate(current) if w["check"] == scope), len(current))
    where = f"waivers[{index}]"
    if not text:
        raise _refuse(loaded, f"{where}.reason", NEED_REASON)
    if not scope:
        raise _refuse(loaded, f"{where}.check", "give the check id to waive, or a glob like gpu.*")
    try:
        waiver = Waiver.model_validate({"check": scope, "reason": text})
    except ValidationError as e:
        problems = problems_from_validation(e, Waiver, file=loaded.source)
        raise RecipeError(
            [Problem(p.file, p.line, f"{where}.{p.field}" if p.field else where, p.message) for p in problems]
        ) from None
    if covers is not None and not fnmatch.fnmatchcase(covers, scope):
        raise _refuse(
            loaded, f"{where}.check", f"{scope!r} does not cover the check {covers}; give its id or a glob matching it"
        )
    wanted = [*current]
    if index < len(wanted):
        wanted[index] = waiver.model_dump()
    else:
        wanted.append(waiver.model_dump())
    root = MODEL_BY_FLOW[loaded.recipe.flow]
    data = loaded.recipe.model_dump(mode="python", exclude_unset=True)
    data["waivers"] = wanted
    try:
        recipe = root.model_validate(data)
    except ValidationError as e:
        doc = loaded.document
        raise RecipeError(
            problems_from_validation(
                e, root, file=loaded.source, line_of=lambda loc: mapping_line(doc, loc), strip_tag=False
            )
        ) from None
    _into_document(loaded.document, current, index, waiver)
    loaded.recipe = recipe
    return recipe.waivers[index]


def _into_document(doc: Any, before: list[dict[str, Any]], index: int, waiver: Waiver) -> None:
    """Put the waiver into the YAML document in place (comments kept); when the document's list is not the recipe's
    (or there is no document), the next save writes the list from the recipe instead."""
    if not isinstance(doc, MutableMapping):
        return
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    seq = doc.get("waivers")
    if not seq:  # absent, null or a flow-style []: a block list reads better
        seq = CommentedSeq()
        doc["waivers"] = seq
    elif not isinstance(seq, list) or len(seq) != len(before):
        return
    entry = CommentedMap([("check", waiver.check), ("reason", waiver.reason)])
    if index < len(seq):
        old = seq[index]
        if isinstance(old, MutableMapping) and old.get("check") == waiver.check:
            old["reason"] = waiver.reason
        else:
            seq[index] = entry
    else:
        seq.append(entry)


def save_waiver(path: str | os.PathLike[str], check: str, reason: str, *, covers: str | None = None) -> Path:
    """Add the waiver to the recipe file at ``path`` as it is on disk and write it back (atomic, comments kept,
    previous file as ``.bak``); RecipeError when the file or the waiver is not valid."""
    loaded = load_recipe(path)
    add_waiver(loaded, check, reason, covers=covers)
    return save_recipe(loaded, path)


__all__ = ["NEED_REASON", "add_waiver", "save_waiver"]
