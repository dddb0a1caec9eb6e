"""The recipe draft: read and change one field by dotted path, with the model's validation, then save.

Paths are relative to ``answers`` as stage specs write them (``oss.bucket_path``); ``targets.<role>`` names a
target. Every front end edits a recipe through :class:`Draft`: a change is parsed the way the field's type needs,
validated by the whole recipe model (field, section and recipe validators), and either applied completely or
not at all, with a :class:`Problem` naming ``answers.<path>`` and saying what to do.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from .model import MODEL_BY_FLOW, CaiRecipe, KataRecipe
from .problems import Problem, RecipeError, _unwrap, mapping_line, problems_from_validation
from .secrets import SecretRef
from .yaml_io import LoadedRecipe, load_recipe, save_recipe

if TYPE_CHECKING:
    from ..stages.spec import StageSpec

ROOTS = ("answers", "targets")  # the top-level sections a path may start in; answers is implied
_INT_RE = re.compile(r"^[+-]?\d+$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class FieldValue:
    """A field's current value as text: what a person may see, never a secret's value."""

    text: str | None  # None: the recipe leaves it unset
    is_default: bool = False  # the recipe does not write it; the model's default applies
    is_secret: bool = False  # a SecretRef: ``text`` is the reference


class UnknownField(RecipeError):
    """A dotted path that names no field; the problem says which names are close."""


# --- path resolution ---------------------------------------------------------------------------------


def _optional(annotation: Any) -> bool:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(
        annotation
    )


def _section(annotation: Any) -> type[BaseModel] | None:
    inner = _unwrap(annotation)
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def leaf_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every dotted path of a value (not a section) under ``model``."""
    for name, info in model.model_fields.items():
        sub = _section(info.annotation)
        if sub is None:
            yield prefix + name
        else:
            yield from leaf_paths(sub, prefix + name + ".")


def lookup(model: type[BaseModel], path: str, *, what: str = "answers") -> FieldInfo:
    """The field ``path`` names under ``model`` (a value or a section); ValueError with did-you-mean otherwise."""
    parts = path.split(".")
    current: type[BaseModel] | None = model
    info: FieldInfo | None = None
    for i, part in enumerate(parts):
        if current is None:
            done = ".".join(parts[:i])
            raise ValueError(f"{done!r} is a value, not a section; it has no key {part!r}")
        info = current.model_fields.get(part)
        if info is None:
            raise ValueError(_unknown_message(model, path, current, part, ".".join(parts[:i]), what))
        current = _section(info.annotation)
    assert info is not None  # a path has at least one part
    return info


def path_exists(model: type[BaseModel], path: str) -> bool:
    try:
        lookup(model, path)
    except ValueError:
        return False
    return True


def _unknown_message(root: type[BaseModel], path: str, owner: type[BaseModel], key: str, where: str, what: str) -> str:
    place = f"{what}.{where}" if where else what
    close = difflib.get_close_matches(path, list(leaf_paths(root)), n=1, cutoff=0.6)
    if close:
        hint = f"; did you mean {close[0]!r}?"
    else:
        near = difflib.get_close_matches(key, list(owner.model_fields), n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else f"; known keys here: {', '.join(owner.model_fields)}"
    return f"unknown key {key!r} in {place}{hint}"


# --- reading -----------------------------------------------------------------------------------------


def value_text(value: Any) -> str:
    """A value as the text :meth:`Draft.set` reads back (lists comma-separated, ``[]`` when empty)."""
    if isinstance(value, SecretRef):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, BaseModel):
        return ", ".join(f"{k}={value_text(v)}" for k, v in value if v is not None)
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(value_text(v) for v in value) if value else "[]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={value_text(v)}" for k, v in value.items()) if value else "{}"
    return str(value)


def field_value(model: BaseModel, path: str) -> FieldValue:
    """The value at ``path`` under a model instance (e.g. a recipe's answers); UnknownField for a bad path."""
    try:
        lookup(type(model), path)
    except ValueError as e:
        raise UnknownField([Problem(None, None, path, str(e))]) from None
    current: Any = model
    explicit = True
    for part in path.split("."):
        explicit = explicit and part in current.model_fields_set
        current = getattr(current, part)
        if current is None:
            return FieldValue(None, not explicit)
    if isinstance(current, SecretRef):
        return FieldValue(str(current), not explicit, True)
    return FieldValue(value_text(current), not explicit)


# --- the draft ---------------------------------------------------------------------------------------

_CLEAR = object()  # remove the key: the field goes back to its default (None)


@dataclass(frozen=True)
class _Slot:
    path: str  # as the user names it: oss.bucket_path or targets.instance
    loc: tuple[str, ...]  # from the recipe's top: ("answers", "oss", "bucket_path")
    info: FieldInfo

    @property
    def shown(self) -> str:
        return ".".join(self.loc)


class Draft:
    """A recipe being edited: get and set fields by dotted path; :meth:`save` writes only what was set."""

    def __init__(self, loaded: LoadedRecipe) -> None:
        self._loaded = loaded
        self._saved = self._data()
        self._changed: list[str] = []

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Draft:
        """Load a recipe file (RecipeError with file:line problems when it is not valid)."""
        return cls(load_recipe(path))

    # --- state ---------------------------------------------------------------------------------------

    @property
    def loaded(self) -> LoadedRecipe:
        return self._loaded

    @property
    def recipe(self) -> CaiRecipe | KataRecipe:
        return self._loaded.recipe

    @property
    def flow(self) -> str:
        return self.recipe.flow

    @property
    def dirty(self) -> bool:
        """True when saving would change the file (a set that restored the saved value is not a change)."""
        return self._data() != self._saved

    @property
    def changed(self) -> list[str]:
        """The paths set since loading or the last save, in the order first set."""
        return list(self._changed)

    def _data(self) -> dict[str, Any]:
        return self.recipe.model_dump(mode="python", exclude_unset=True)

    # --- paths ---------------------------------------------------------------------------------------

    def _slot(self, path: str) -> _Slot:
        text = path.strip()
        model = type(self.recipe)
        parts = text.split(".") if text else [""]
        if parts[0] == "answers" and len(parts) > 1:
            parts = parts[1:]
        if parts[0] == "waivers":
            raise self._unknown(text, "waivers are not fields; edit them in the recipe file (waivers: list)")
        root = "targets" if parts[0] == "targets" and len(parts) > 1 else "answers"
        rel = parts[1:] if root == "targets" else parts
        section = model.model_fields[root].annotation
        assert isinstance(section, type) and issubclass(section, BaseModel)
        try:
            if any(not p for p in rel):
                raise ValueError(f"{text!r} is not a dotted path like oss.bucket_path or targets.instance")
            info = lookup(section, ".".join(rel), what=root)
        except ValueError as e:
            raise self._unknown(text, str(e)) from None
        return _Slot(".".join(rel) if root == "answers" else text, (root, *rel), info)

    def _unknown(self, path: str, message: str) -> UnknownField:
        shown = path if path.split(".", 1)[0] in (*ROOTS, "waivers") else f"answers.{path}"
        return UnknownField([Problem(self._loaded.source, None, shown, message)])

    # --- get / set -----------------------------------------------------------------------------------

    def get(self, path: str) -> FieldValue:
        """The field's value as text (a secret as its reference); UnknownField names close paths."""
        slot = self._slot(path)
        return field_value(getattr(self.recipe, slot.loc[0]), ".".join(slot.loc[1:]))

    def value(self, path: str) -> Any:
        """The field's typed value (a SecretRef for a secret, a list for a list, None when unset), for code that
        fills commands from the recipe; UnknownField for a bad path."""
        current: Any = self.recipe
        for part in self._slot(path).loc:
            current = getattr(current, part)
            if current is None:
                return None
        return current

    def set(self, path: str, text: str) -> Problem | None:
        """Parse ``text`` for the field and validate the whole recipe with it; None when applied.

        On a problem nothing changes. '' clears an optional field (an empty list for a list field).
        """
        try:
            slot = self._slot(path)
        except UnknownField as e:
            return e.problems[0]
        try:
            value = _parse(slot, text)
        except ValueError as e:
            return self._problem(slot, str(e))
        data = self._data()
        _put(data, slot.loc, value)
        root = MODEL_BY_FLOW[self.flow]
        try:
            recipe = root.model_validate(data)
        except ValidationError as e:
            problems = problems_from_validation(e, root, strip_tag=False)
            return self._problem(slot, "; ".join(_unique(_relative(p, slot) for p in problems)))
        self._loaded.recipe = recipe
        if slot.path not in self._changed:
            self._changed.append(slot.path)
        return None

    def _problem(self, slot: _Slot, message: str) -> Problem:
        return Problem(self._loaded.source, mapping_line(self._loaded.document, list(slot.loc)), slot.shown, message)

    # --- whole recipe --------------------------------------------------------------------------------

    def validate(self, stage: StageSpec | None = None) -> list[Problem]:
        """Problems of the whole recipe as it stands, or only those touching ``stage``'s field paths."""
        root = MODEL_BY_FLOW[self.flow]
        doc = self._loaded.document
        try:
            root.model_validate(self._data())
        except ValidationError as e:
            problems = problems_from_validation(
                e, root, file=self._loaded.source, line_of=lambda loc: mapping_line(doc, loc), strip_tag=False
            )
        else:
            problems = []
        if stage is None:
            return problems
        wanted = [f"answers.{p}" for p in stage.field_paths]
        return [p for p in problems if any(_related(p.field, w) for w in wanted)]

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write through save_recipe: comments kept, only the keys set change, previous file as .bak, mode 0600."""
        target = path if path is not None else self._loaded.path
        if target is None:
            raise RecipeError(
                [Problem(self._loaded.source, None, "", "this recipe has no file yet; give the path to save it to")]
            )
        written = save_recipe(self._loaded, target)
        self._saved = self._data()
        self._changed = []
        return written


# --- parsing text for a field ------------------------------------------------------------------------


def _parse(slot: _Slot, text: str) -> Any:
    annotation = slot.info.annotation
    kind = _unwrap(annotation)
    origin = typing.get_origin(kind)
    stripped = text.strip()
    if _section(annotation) is not None:
        keys = ", ".join(_section(annotation).model_fields)  # type: ignore[union-attr]
        raise ValueError(f"is a section, not a value; set one of its keys: {keys}")
    if origin in (list, tuple, set, frozenset):
        if stripped in ("", "[]"):
            return []
        return [item.strip() for item in stripped.split(",") if item.strip()]
    if stripped == "":
        if _optional(annotation):
            return _CLEAR if slot.info.default is None else None
        if kind is str:
            return stripped  # the field's own rules (min_length, pattern) decide
        raise ValueError(f"cannot be empty; give {_expected(kind, slot.info)}")
    if kind is bool:
        low = stripped.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("expected true or false")
    if kind is int:
        if not _INT_RE.match(stripped):
            raise ValueError(f"expected {_expected(kind, slot.info)}")
        return int(stripped)
    if kind is float:
        try:
            return float(stripped)
        except ValueError:
            raise ValueError(f"expected {_expected(kind, slot.info)}") from None
    return stripped


def _expected(kind: Any, info: FieldInfo) -> str:
    example = None if info.is_required() or info.default_factory is not None else info.default
    eg = f", e.g. {value_text(example)}" if example is not None and not isinstance(example, BaseModel) else ""
    if kind is int:
        return "a whole number" + eg
    if kind is float:
        return "a number" + eg
    if kind is bool:
        return "true or false"
    if typing.get_origin(kind) is typing.Literal:
        return "one of: " + ", ".join(str(a) for a in typing.get_args(kind))
    if kind is SecretRef:
        return "a secret reference: env:NAME, file:PATH, keyring:SERVICE/NAME or prompt"
    return "a value" + eg


def _put(data: dict[str, Any], loc: Sequence[str], value: Any) -> None:
    """Set (or, for _CLEAR, remove) ``loc`` in a nested dict, creating sections and pruning emptied ones."""
    trail: list[tuple[dict[str, Any], str]] = []
    node = data
    for part in loc[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        trail.append((node, part))
        node = child
    if value is _CLEAR:
        node.pop(loc[-1], None)
        for parent, part in reversed(trail[1:]):  # keep answers/targets themselves
            if parent[part]:
                break
            del parent[part]
    else:
        node[loc[-1]] = value


def _relative(problem: Problem, slot: _Slot) -> str:
    """A validation message for the field being set; another field's problem keeps its own path."""
    target = slot.shown
    if problem.field == target or target.startswith(problem.field + ".") or problem.field.startswith(target + "["):
        return problem.message
    return f"{problem.field}: {problem.message}"


def _related(field: str, wanted: str) -> bool:
    return field == wanted or field.startswith((wanted + ".", wanted + "[")) or wanted.startswith(field + ".")


def _unique(items: Iterator[str] | list[str]) -> list[str]:
    out: list[str] = []
    for i in items:
        if i not in out:
            out.append(i)
    return out


__all__ = [
    "Draft",
    "FieldValue",
    "UnknownField",
    "field_value",
    "leaf_paths",
    "lookup",
    "path_exists",
    "value_text",
]
