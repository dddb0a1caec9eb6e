"""What is deployed, not what the recipe says: the instance's ``cai.env`` read back and turned into the recipe the
related checks run with.

The containers run with the cai.env on the instance, which may have been edited by hand or written from an older
recipe. Checks run with the recipe's values would test something else and could contradict a right finding (a
wrong TRUSTEE_URL in cai.env, a right one in the recipe). So the troubleshooter reads the deployed file, reports
every variable that differs from the recipe (secrets only as "differs", never their values), and runs the checks on
a copy of the recipe that carries the deployed values. A value the recipe's own validation refuses (a port that is
not a number, a MODEL_KEY_ID that is not a kbs:/// URI) is reported with the validation message and left out.
"""

from __future__ import annotations

import os
import posixpath
import re
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..render.cai_env_vars import CAI_ENV_VARS

if TYPE_CHECKING:
    from ..recipe.model import CaiRecipe
    from ..targets.base import Target

MAX_ENV_BYTES = 256 * 1024
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class Drift:
    var: str
    field: str
    kind: str  # "differs" | "invalid" | "missing"
    message: str  # for people; never a secret value

    def to_dict(self) -> dict[str, str]:
        return {"var": self.var, "field": self.field, "kind": self.kind, "message": self.message}


@dataclass
class Deployed:
    path: str
    target: str
    values: dict[str, str]
    drift: list[Drift] = field(default_factory=list)
    recipe: CaiRecipe | None = None  # the recipe with the deployed values (what the checks run with)
    secrets: list[str] = field(default_factory=list)  # deployed secret values, for the scrubber

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "target": self.target, "drift": [d.to_dict() for d in self.drift]}


def parse_env(text: str) -> dict[str, str]:
    """A compose dotenv file: ``KEY=value``, ``KEY="…"`` (backslash escapes), ``KEY='…'``; comments and blanks skipped."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        m = _LINE.match(raw)
        if m is None:
            continue
        name, value = m.group(1), m.group(2)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)
        out[name] = value
    return out


async def read_env(recipe: CaiRecipe, target: Target) -> tuple[str, str] | None:
    """(path, text) of answers.service.env_file on ``target``; None when it is not there."""
    from ..targets.home import home_of

    path = str(recipe.answers.service.env_file)
    if path.startswith("~"):
        home = await home_of(target)
        if home is None:  # said, not mistaken for "no cai.env there"
            raise OSError(f"cannot learn $HOME on {target.name} to find {path}")
        path = posixpath.join(home, path[1:].lstrip("/"))
    try:
        data = await target.read_file(path, max_bytes=MAX_ENV_BYTES)
    except (FileNotFoundError, PermissionError, OSError):
        return None
    return path, data.decode("utf-8", "replace")


def _set(obj: Any, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        obj = getattr(obj, part)
    setattr(obj, last, value)


def _recipe_secret(ref: Any, field_name: str) -> str | None:
    from ..recipe.secrets import SecretUnavailable, resolve_secret

    if ref is None:
        return ""
    try:
        return resolve_secret(ref, field=field_name, prompt=None)
    except (SecretUnavailable, OSError, ValueError):
        return None


def _why(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            return str(first.get("msg") or exc)
        except (IndexError, TypeError, AttributeError):
            pass
    return str(exc).splitlines()[0]


def compare(recipe: CaiRecipe, values: dict[str, str], secret_dir: str) -> tuple[CaiRecipe, list[Drift], list[str]]:
    """The recipe with ``values`` applied (secrets through 0600 files in ``secret_dir``), the drift, the secrets."""
    from ..recipe.secrets import SecretRef

    copy = recipe.model_copy(deep=True)
    a = copy.answers
    drift: list[Drift] = []
    secrets: list[str] = []
    for var in CAI_ENV_VARS:
        if var.name not in values:
            if not var.optional:
                drift.append(Drift(var.name, var.field, "missing", f"{var.name} is not set in the deployed cai.env"))
            continue
        deployed = values[var.name]
        if var.secret:
            if deployed:
                secrets.append(deployed)
            mine = _recipe_secret(var.value(recipe.answers), var.field)
            if mine is not None and mine == deployed:
                continue
            if mine is not None:
                drift.append(
                    Drift(
                        var.name,
                        var.field,
                        "differs",
                        f"{var.name} differs from answers.{var.field} (secret: not shown)",
                    )
                )
            if not deployed:
                _set(a, var.field, None)
                continue
            fd, path = tempfile.mkstemp(prefix="deployed-", dir=secret_dir)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(deployed)
            os.chmod(path, 0o600)
            _set(a, var.field, SecretRef.parse(f"file:{path}"))
            continue
        current = var.value(recipe.answers)
        wanted = var.from_env(deployed)
        if wanted == current:
            continue
        try:
            _set(a, var.field, wanted)
        except Exception as exc:  # pydantic's ValidationError: the recipe's own rule for this field
            drift.append(Drift(var.name, var.field, "invalid", f"{var.name}={deployed!r} is not valid: {_why(exc)}"))
            continue
        if var.value(a) == current:  # the model reads the deployed text as the recipe's value
            continue
        mine_text = "" if current is None else var.to_env(current) if isinstance(current, list) else str(current)
        drift.append(
            Drift(
                var.name,
                var.field,
                "differs",
                f"{var.name}={deployed!r} but answers.{var.field} is {mine_text!r}",
            )
        )
    return copy, drift, secrets


async def deployed_recipe(recipe: CaiRecipe, target: Target, secret_dir: str) -> Deployed | None:
    """The deployed cai.env compared with ``recipe``, or None when the file cannot be read on ``target``."""
    got = await read_env(recipe, target)
    if got is None:
        return None
    path, text = got
    values = parse_env(text)
    copy, drift, secrets = compare(recipe, values, secret_dir)
    return Deployed(path=path, target=target.name, values=values, drift=drift, recipe=copy, secrets=secrets)
