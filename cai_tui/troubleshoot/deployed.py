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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..recipe.model import CaiRecipe
    from ..targets.base import Target

MAX_ENV_BYTES = 256 * 1024
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class Var:
    name: str
    field: str  # recipe answers path
    secret: bool = False
    get: Callable[[Any], Any] | None = None  # answers → the recipe's value (non-secret), when not the plain field


def _trustee_url(a: Any) -> str | None:
    return None if a.trustee.url is None else str(a.trustee.url).rstrip("/")


VARS: tuple[Var, ...] = (
    Var("TRUSTEE_URL", "trustee.url", get=_trustee_url),
    Var("TRUSTEE_POLICY", "trustee.policy"),
    Var("MODEL_KEY_ID", "trustee.model_key_id"),
    Var("MODEL_ENCRYPTION_METHOD", "model.encryption_method"),
    Var("MODEL_OSS_BUCKET_PATH", "oss.bucket_path"),
    Var("MODEL_OSS_ENDPOINT", "oss.endpoint"),
    Var("MODEL_OSS_ACCESS_KEY_ID", "oss.access_key_id", secret=True),
    Var("MODEL_OSS_SECRET_ACCESS_KEY", "oss.access_key_secret", secret=True),
    Var("MODEL_OSS_SESSION_TOKEN", "oss.session_token", secret=True),
    Var("MODEL_SERVICE_PORT", "service.port"),
    Var("MODEL_MOUNT_POINT", "service.mount_point"),
)


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


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


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
    for var in VARS:
        if var.name not in values:
            if var.name != "MODEL_OSS_SESSION_TOKEN":
                drift.append(Drift(var.name, var.field, "missing", f"{var.name} is not set in the deployed cai.env"))
            continue
        deployed = values[var.name]
        if var.secret:
            if deployed:
                secrets.append(deployed)
            mine = _recipe_secret(_get(recipe.answers, var.field), var.field)
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
        current = var.get(recipe.answers) if var.get else _get(recipe.answers, var.field)
        mine_text = "" if current is None else str(current)
        wanted = deployed.rstrip("/") if var.name == "TRUSTEE_URL" else deployed
        if mine_text == wanted:
            continue
        try:
            _set(a, var.field, int(deployed) if var.name == "MODEL_SERVICE_PORT" and deployed.isdigit() else deployed)
        except Exception as exc:  # pydantic's ValidationError: the recipe's own rule for this field
            drift.append(Drift(var.name, var.field, "invalid", f"{var.name}={deployed!r} is not valid: {_why(exc)}"))
            continue
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
