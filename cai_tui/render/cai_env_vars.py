"""The cai.env variables and the recipe fields they come from: the one table, in both directions.

:mod:`cai_tui.render.cai_env` writes ``~/cai.env`` from it (recipe → env, :meth:`EnvVar.to_env`);
:mod:`cai_tui.troubleshoot.deployed` reads a deployed cai.env back into a recipe with it (env → recipe,
:meth:`EnvVar.from_env`). ``from_env(to_env(v)) == v`` for every variable (tests/render/test_cai_env_vars.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..recipe.types import strip_trailing_slash


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _same(text: str) -> Any:
    return text


def _trustee_to_env(url: Any) -> str:
    """The seed writes TRUSTEE_URL with a trailing slash (``…/xxxx/``); the model holds it without."""
    return strip_trailing_slash(str(url)) + "/"


def _port_from_env(text: str) -> Any:
    return int(text) if text.isdigit() else text  # not a number: the recipe's own rule says why


def _peers_to_env(peers: Any) -> str:
    return " ".join(peers or ())


def _peers_from_env(text: str) -> list[str]:
    return text.split()


@dataclass(frozen=True)
class EnvVar:
    name: str  # the cai.env variable
    field: str  # its recipe answers path
    secret: bool = False  # the value is a secret reference in the recipe; never shown
    optional: bool = False  # absent from a cai.env when the recipe leaves it unset (not a drift)
    bare: bool = False  # written bare like the seed's MODEL_MOUNT_POINT=/tmp/model (when safe)
    to_text: Callable[[Any], str] = dataclasses.field(default=_text, repr=False)
    from_text: Callable[[str], Any] = dataclasses.field(default=_same, repr=False)

    def value(self, answers: Any) -> Any:
        """The recipe's value of this variable's field."""
        obj = answers
        for part in self.field.split("."):
            obj = getattr(obj, part)
        return obj

    def to_env(self, value: Any) -> str:
        """The field's (non-secret or resolved) value as the variable's text, before quoting."""
        return self.to_text(value)

    def from_env(self, text: str) -> Any:
        """The variable's text (unquoted) as a value for the field (the recipe's validation has the last word)."""
        return self.from_text(text)


CAI_ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar("TRUSTEE_URL", "trustee.url", to_text=_trustee_to_env, from_text=strip_trailing_slash),
    EnvVar("TRUSTEE_POLICY", "trustee.policy"),
    EnvVar("MODEL_KEY_ID", "trustee.model_key_id"),
    EnvVar("MODEL_ENCRYPTION_METHOD", "model.encryption_method"),
    EnvVar("MODEL_OSS_BUCKET_PATH", "oss.bucket_path"),
    EnvVar("MODEL_OSS_ENDPOINT", "oss.endpoint"),
    EnvVar("MODEL_OSS_ACCESS_KEY_ID", "oss.access_key_id", secret=True),
    EnvVar("MODEL_OSS_SECRET_ACCESS_KEY", "oss.access_key_secret", secret=True),
    EnvVar("MODEL_OSS_SESSION_TOKEN", "oss.session_token", secret=True, optional=True),
    EnvVar(
        "MODEL_SHARING_PEER", "service.sharing_peers", optional=True, to_text=_peers_to_env, from_text=_peers_from_env
    ),
    EnvVar("MODEL_SERVICE_PORT", "service.port", bare=True, from_text=_port_from_env),
    EnvVar("MODEL_MOUNT_POINT", "service.mount_point", bare=True),
)
BY_NAME: dict[str, EnvVar] = {v.name: v for v in CAI_ENV_VARS}
