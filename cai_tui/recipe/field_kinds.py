"""What kind of value a recipe field holds, read from the model's annotations, and a fast check of typed text.

Front ends pick their editor by :class:`FieldKind` (an input for a port, a list of choices for a Literal, a secret
reference picker for a :class:`~cai_tui.recipe.secrets.SecretRef`) and call :func:`quick_check` on every keystroke.
The quick check runs the field's own validators (the ones in :mod:`cai_tui.recipe.types`), so its messages are the
model's; only :meth:`cai_tui.recipe.draft.Draft.set` judges the whole recipe (cross-field rules) and has the last word.
"""

from __future__ import annotations

import inspect
import re
import types as pytypes
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError, PydanticUndefined

from . import types as T
from .draft import _optional, lookup, value_text
from .model import MODEL_BY_FLOW
from .problems import _unwrap
from .secrets import SecretRef

TEXT, SECRET, PATH, SELECT, PORT, SIZE, IP, CIDR, URL, INTEGER, NUMBER, LIST = (
    "text", "secret", "path", "select", "port", "size", "ip", "cidr", "url", "integer", "number", "list",
)  # fmt: skip
KINDS = (TEXT, SECRET, PATH, SELECT, PORT, SIZE, IP, CIDR, URL, INTEGER, NUMBER, LIST)
SECRET_SCHEMES = ("env", "file", "keyring", "prompt")
_SIZE_UNITS = {"_gib": "GiB", "_mib": "MiB", "_gb": "GB", "_bytes": "bytes"}
_INT_RE = re.compile(r"^[+-]?\d+$")
_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}

Check = Callable[[Any], Any]


def _funcs(alias: Any) -> set[Any]:
    """The validator functions an ``Annotated`` alias of types.py carries (how a field is recognised as a port …)."""
    return {getattr(m, "func", None) for m in typing.get_args(alias)[1:]} - {None}


_BY_VALIDATOR: list[tuple[set[Any], str]] = [
    (_funcs(T.Port), PORT),
    (_funcs(T.IpAddress), IP),
    (_funcs(T.PrivateCidr), CIDR),
    (_funcs(T.HttpUrl), URL),
    (_funcs(T.AbsPath), PATH),
]


@dataclass(frozen=True)
class FieldKind:
    """A field's kind and what an editor needs to know about it (never its value)."""

    kind: str
    path: str = ""
    optional: bool = False  # '' clears it (back to unset)
    default: str | None = None  # the model's default as text; None: no default
    choices: tuple[str, ...] = ()  # select: the allowed values, as the recipe writes them
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""  # size: GiB …
    pattern: str | None = None
    min_length: int | None = None
    item: FieldKind | None = None  # list: the kind of each item
    checks: tuple[Check, ...] = field(default=(), compare=False, repr=False)  # the type's own validators

    @property
    def numeric(self) -> bool:
        return self.kind in (PORT, SIZE, INTEGER, NUMBER)

    @property
    def example(self) -> str:
        """A short hint of the expected form, for a placeholder."""
        if self.kind == LIST:
            inner = self.item.example if self.item is not None and self.item.kind != TEXT else "a"
            return f"{inner}, …"
        if self.kind in (PORT, INTEGER, SIZE) and self.minimum is not None and self.maximum is not None:
            return f"{self.minimum:g}–{self.maximum:g}" + (f" {self.unit}" if self.unit else "")
        return {
            PATH: "/absolute/path or ~/path",
            IP: "203.0.113.7",
            CIDR: "10.88.0.0/16",
            URL: "https://host/path",
            PORT: "1–65535",
            SECRET: "env:NAME | file:PATH | keyring:SERVICE/NAME | prompt",
            NUMBER: "0.95",
        }.get(self.kind, "")


# --- the kind of a field -------------------------------------------------------------------------------------------


def field_kind(recipe: str | type[BaseModel], path: str) -> FieldKind:
    """The kind of ``path`` (relative to ``answers``, or ``targets.<role>``) in a flow's recipe model.

    ``recipe`` is a flow name (``cai``) or its recipe class. ValueError (with did-you-mean) for a path that names no
    value; a section (``oss``) is not a field either.
    """
    model = MODEL_BY_FLOW[recipe] if isinstance(recipe, str) else recipe
    parts = path.strip().split(".")
    if parts[0] == "answers" and len(parts) > 1:
        parts = parts[1:]
    root = "targets" if parts[0] == "targets" and len(parts) > 1 else "answers"
    rel = ".".join(parts[1:] if root == "targets" else parts)
    section = _unwrap(model.model_fields[root].annotation)
    info = lookup(section, rel, what=root)
    inner = _unwrap(info.annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        raise ValueError(f"{path!r} is a section, not a value; name one of its keys: {', '.join(inner.model_fields)}")
    return _kind(info.annotation, info.metadata, name=rel, path=path.strip(), default=_default_text(info))


def _default_text(info: FieldInfo) -> str | None:
    if info.default_factory is not None:
        try:
            value = info.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return None
        return None if isinstance(value, BaseModel) else value_text(value)
    if info.default is PydanticUndefined or info.default is None:
        return None
    return value_text(info.default)


def _metadata(annotation: Any, extra: Iterable[Any]) -> list[Any]:
    """Every Annotated metadata item on the way down to the plain type (Optional and Annotated unwrapped)."""
    found = list(extra)
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            args = typing.get_args(annotation)
            found += list(args[1:])
            annotation = args[0]
            continue
        if origin in (typing.Union, pytypes.UnionType):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(rest) == 1:
                annotation = rest[0]
                continue
        return found


def _kind(annotation: Any, extra: Iterable[Any], *, name: str, path: str, default: str | None) -> FieldKind:
    meta = _metadata(annotation, extra)
    base = _unwrap(annotation)
    optional = _optional(annotation)
    checks = tuple(m.func for m in meta if callable(getattr(m, "func", None)) and _one_arg(m.func))
    lo = hi = None
    pattern = None
    min_length = None
    for m in meta:
        if isinstance(m, annotated_types.Ge):
            lo = m.ge  # type: ignore[assignment]
        elif isinstance(m, annotated_types.Gt):
            lo = m.gt  # type: ignore[assignment]
        elif isinstance(m, annotated_types.Le):
            hi = m.le  # type: ignore[assignment]
        elif isinstance(m, annotated_types.Lt):
            hi = m.lt  # type: ignore[assignment]
        elif isinstance(m, annotated_types.MinLen):
            min_length = m.min_length
        elif getattr(m, "pattern", None):
            pattern = m.pattern
    common: dict[str, Any] = {
        "path": path, "optional": optional, "default": default, "minimum": lo, "maximum": hi,
        "pattern": pattern, "min_length": min_length, "checks": checks,
    }  # fmt: skip
    if typing.get_origin(base) in (list, tuple, set, frozenset):
        args = typing.get_args(base)
        item = _kind(args[0], (), name=name, path=path, default=None) if args else FieldKind(TEXT)
        return FieldKind(LIST, **common | {"optional": True, "checks": ()}, item=item)
    if base is SecretRef:
        return FieldKind(SECRET, **common | {"checks": ()})
    if typing.get_origin(base) is typing.Literal:
        return FieldKind(SELECT, **common, choices=tuple(str(a) for a in typing.get_args(base)))
    if isinstance(base, type) and issubclass(base, Enum):
        return FieldKind(SELECT, **common, choices=tuple(str(m.value) for m in base))
    if base is bool:
        return FieldKind(SELECT, **common, choices=("true", "false"))
    funcs = {getattr(m, "func", None) for m in meta}
    if _funcs(T.InstanceType) & funcs:
        return FieldKind(SELECT, **common, choices=T.INSTANCE_TYPES)
    for known, kind in _BY_VALIDATOR:
        if known & funcs:
            if kind == PORT:
                common |= {"minimum": 1, "maximum": 65535}
            return FieldKind(kind, **common)
    if base is int:
        leaf = name.rsplit(".", 1)[-1]
        unit = next((u for suffix, u in _SIZE_UNITS.items() if leaf.endswith(suffix)), "")
        return FieldKind(SIZE if unit else INTEGER, **common, unit=unit)
    if base is float:
        return FieldKind(NUMBER, **common)
    return FieldKind(TEXT, **common)


def _one_arg(func: Callable[..., Any]) -> bool:
    """Only plain one-argument validators can be run on their own (not those that want pydantic's info)."""
    try:
        params = [p for p in inspect.signature(func).parameters.values() if p.default is inspect.Parameter.empty]
    except (TypeError, ValueError):
        return False
    return len(params) == 1


# --- the quick check -----------------------------------------------------------------------------------------------


def quick_check(kind: FieldKind, text: str) -> str | None:
    """A message when ``text`` cannot be a value of this kind, else None; fast, for every keystroke.

    Syntax and the field's own rules only: a value that passes may still be refused by the whole recipe's rules.
    """
    stripped = text.strip()
    if kind.kind == LIST:
        if stripped in ("", "[]"):
            return None
        items = [i.strip() for i in stripped.split(",")]
        for n, item in enumerate(items, 1):
            if not item:
                return f"item {n} is empty; separate items with one comma"
            inner = kind.item or FieldKind(TEXT)
            problem = quick_check(inner, item)
            if problem is not None:
                return f"item {n} ({item}): {problem}"
        return None
    if stripped == "":
        if kind.optional:
            return None
        if kind.numeric or kind.kind in (SELECT, SECRET):
            return "cannot be empty" + (f"; the default is {kind.default}" if kind.default else "")
    if kind.kind == SECRET:
        try:
            SecretRef.parse(stripped)
        except ValueError:
            return _secret_problem(stripped)
        return None
    if kind.kind == SELECT:
        if kind.choices == ("true", "false"):
            return None if stripped.lower() in _BOOL_WORDS else "expected true or false"
        return None if stripped in kind.choices else "one of: " + ", ".join(kind.choices)
    if kind.kind in (PORT, SIZE, INTEGER):
        if not _INT_RE.match(stripped):
            return "a port is a whole number 1–65535" if kind.kind == PORT else "expected a whole number"
        value_num: float = int(stripped)
    elif kind.kind == NUMBER:
        try:
            value_num = float(stripped)
        except ValueError:
            return "expected a number" + (f", e.g. {kind.default}" if kind.default else "")
    else:
        value_num = 0
    if kind.numeric:
        if kind.minimum is not None and value_num < kind.minimum:
            return _range(kind)
        if kind.maximum is not None and value_num > kind.maximum:
            return _range(kind)
        return _run_checks(kind, int(value_num) if kind.kind != NUMBER else stripped)
    if kind.min_length is not None and len(stripped) < kind.min_length:
        return f"at least {kind.min_length} characters"
    if kind.pattern is not None and stripped and not re.search(kind.pattern, stripped):
        return f"does not match the expected form {kind.pattern}"
    return _run_checks(kind, stripped)


def _range(kind: FieldKind) -> str:
    if kind.kind == PORT:
        return "a port is a whole number 1–65535"
    unit = f" {kind.unit}" if kind.unit else ""
    if kind.minimum is not None and kind.maximum is not None:
        return f"expected {kind.minimum:g}–{kind.maximum:g}{unit}"
    if kind.minimum is not None:
        return f"expected at least {kind.minimum:g}{unit}"
    return f"expected at most {kind.maximum:g}{unit}"


def _run_checks(kind: FieldKind, value: Any) -> str | None:
    for check in kind.checks:
        try:
            check(value)
        except PydanticCustomError as e:
            return e.message()
        except (ValueError, TypeError) as e:
            return str(e)
    return None


def _secret_problem(text: str) -> str:
    scheme, sep, _ = text.partition(":")
    if sep and scheme == "env":
        return "env:NAME takes a variable name: letters, digits and _, not starting with a digit"
    if sep and scheme == "keyring":
        return "keyring:SERVICE/NAME needs both parts, without spaces"
    if sep and scheme == "file":
        return "file:PATH needs the path of the file holding the secret"
    return "a secret reference is env:NAME, file:PATH, keyring:SERVICE/NAME or prompt (never the secret itself)"


def split_secret(text: str | None) -> tuple[str, str]:
    """A reference's (scheme, target) for a picker; ('', '') when unset, ('', text) when it is no reference."""
    if not text:
        return "", ""
    try:
        ref = SecretRef.parse(text)
    except ValueError:
        return "", text
    return ref.scheme, ref.target


def join_secret(scheme: str, target: str) -> str:
    """The reference a picker's scheme and target make (``env:NAME``; ``prompt``; '' when no scheme)."""
    if not scheme:
        return ""
    if scheme == "prompt":
        return "prompt"
    return f"{scheme}:{target.strip()}"


__all__ = [
    "KINDS",
    "SECRET_SCHEMES",
    "FieldKind",
    "field_kind",
    "join_secret",
    "quick_check",
    "split_secret",
]
