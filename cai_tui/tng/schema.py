"""The models' judgement of a TNG configuration: each problem at its JSON path, in TNG's words, with the fix."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from . import models_v1, models_v2
from .problems import Problem, TngConfigError, check_supported, json_path, serde_expected


def model_for(version: str) -> type[BaseModel]:
    v = check_supported(version)
    return models_v1.models(v) if v[0] == 1 else models_v2.models(v)


def _inner_model(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _field_names(field: Any, name: str) -> list[str]:
    va = field.validation_alias
    if va is not None and hasattr(va, "choices"):
        return [str(c) for c in va.choices]
    return [field.alias or name]


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the object at ``loc`` (the parent of an unknown key)."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if part in _field_names(f, n)), None)
        if field is None:
            return None
        model = _inner_model(field.annotation)
        if model is None:
            return None
    return model


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """pydantic puts union/discriminator tags and function names into ``loc``; a JSON path has keys and indexes only."""
    out = []
    for part in loc:
        if isinstance(part, str) and (part.startswith("function-") or part in {"stdout", "falcon", "oltp"}):
            continue
        if isinstance(part, str) and part in {"self_generated", "file", "peer_shared", "list[str]", "literal['all']"}:
            continue
        out.append(part)
    return tuple(out)


def _problem(root: type[BaseModel], err: Any) -> Problem:
    loc = _clean_loc(tuple(err["loc"]))
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "tng_rule":
        where = loc + tuple(ctx.get("sub", []))
        return Problem(json_path(where), str(ctx["message"]), str(ctx["fix"]))
    if kind == "extra_forbidden":
        owner = _model_at(root, loc[:-1])
        names = [_field_names(f, n)[0] for n, f in owner.model_fields.items()] if owner else []
        fix = "remove it" + (f" (or correct the spelling: {', '.join(names)})" if names else "")
        return Problem(json_path(loc), f"unknown field `{loc[-1]}`, {serde_expected(names)}", fix)
    if kind == "missing":
        return Problem(json_path(loc), f"missing field `{loc[-1]}`", f"add `{loc[-1]}`")
    if kind in ("union_tag_invalid", "literal_error"):
        return Problem(json_path(loc), str(err["msg"]), "use one of the values named")
    return Problem(json_path(loc), str(err["msg"]), "give the value the type named")


def problems(config: Any, version: str) -> list[Problem]:
    """What the models of TNG ``version`` find wrong with ``config`` (empty when they accept it)."""
    root = model_for(version)
    if not isinstance(config, dict):
        return [Problem("", "invalid type: expected a JSON object at the top", "write the configuration as {…}")]
    try:
        root.model_validate(config)
    except ValidationError as e:
        found: list[Problem] = []
        for err in e.errors():
            p = _problem(root, err)
            if p not in found:
                found.append(p)
        return found
    return []


def validate_config(config: dict[str, Any], version: str) -> None:
    """Raise :class:`TngConfigError` with TNG's messages when ``version`` of TNG would refuse ``config``."""
    found = problems(config, version)
    if found:
        raise TngConfigError([p.line() for p in found], found)
