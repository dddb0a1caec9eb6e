"""Turn validation failures into lines a user can act on: ``file:line: field: message``.

Values are shown for plain fields to help spot typos, never for secret fields or unknown keys (which may be
a secret pasted in the wrong place).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class Problem:
    file: str | None
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file or "<recipe>"
        if self.line:
            where += f":{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class RecipeError(Exception):
    """One or more problems with a recipe file; ``str()`` is one line per problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def field_path(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated/Optional/Union-with-None down to the interesting type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that owns the last element of ``loc`` (for did-you-mean on unknown keys)."""
    current: Any = root
    for part in loc[:-1]:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else None
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _show_value(value: Any) -> str | None:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "…'"
    return None


def problems_from_validation(
    exc: ValidationError,
    root: type[BaseModel],
    *,
    file: str | None = None,
    line_of: typing.Callable[[Sequence[str | int]], int | None] = lambda loc: None,
    strip_tag: bool = True,
) -> list[Problem]:
    out: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = list(err.get("loc", ()))
        if strip_tag and loc and loc[0] in ("cai", "kata-virtcca"):
            loc = loc[1:]
        kind = err.get("type", "")
        msg = err.get("msg", "invalid")
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if kind == "extra_forbidden":
            key = str(loc[-1]) if loc else "?"
            owner = model_at(root, loc) if loc else root
            known = list(owner.model_fields) if owner else []
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else (f"; known keys here: {', '.join(known)}" if known else "")
            )
            msg = f"unknown key {key!r}{hint}"
        elif kind == "missing":
            msg = "required; add it"
        elif kind in ("union_tag_not_found", "union_tag_invalid"):
            msg = "flow must be one of: cai, kata-virtcca"
            loc = ["flow"]
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            msg = "must be a section of keys (it is empty or a single value)"
        elif kind == "literal_error":
            shown = _show_value(err.get("input"))
            msg = f"{msg}" + (f" (got {shown})" if shown else "")
        elif not kind.startswith("secret_"):
            shown = _show_value(err.get("input"))
            if shown is not None and kind not in ("model_type", "dict_type"):
                msg = f"{msg} (got {shown})"
        out.append(Problem(file, line_of(loc), field_path(loc), msg))
    return sorted(out, key=lambda p: p.line or 0)


def mapping_line(data: Any, loc: Sequence[str | int]) -> int | None:
    """1-based line of the deepest key of ``loc`` found in a ruamel round-trip tree."""
    line = None
    node = data
    for part in loc:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(node, Mapping) and part in node:
                if lc is not None:
                    line = lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                if lc is not None:
                    line = lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        except (KeyError, IndexError, TypeError, AttributeError):
            break
    if line is None and getattr(data, "lc", None) is not None:
        line = data.lc.line + 1
    return line
