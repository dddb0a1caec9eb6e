"""CAI-5.1: ``~/cai.env``, the CAI stack's configuration, with the seed's comments.

The file is read by ``docker compose --env-file`` / ``include: env_file:`` (compose's dotenv format): values are
double-quoted as in the seed, with ``\\``, ``"`` and ``$`` escaped so nothing is interpolated.
"""

from __future__ import annotations

import re

from ..recipe import CaiRecipe
from . import templates
from .base import Prompter, Rendered, Renderer, RenderError, SecretSlots, need
from .cai_env_vars import CAI_ENV_VARS

_BARE = re.compile(r"^[A-Za-z0-9_./:@+-]+$")


def env_quote(value: str, *, field: str) -> str:
    """A compose dotenv value in double quotes, nothing expanded."""
    if "\n" in value or "\r" in value or "\x00" in value:
        raise RenderError(f"{field}: the value contains a line break; an env file holds one line per variable")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def env_bare(value: str, *, field: str) -> str:
    """Bare like the seed's ``MODEL_MOUNT_POINT=/tmp/model`` when safe, quoted otherwise."""
    return value if _BARE.match(value) else env_quote(value, field=field)


class CaiEnv(Renderer):
    kind = "cai-env"
    title = "~/cai.env: the CAI stack's configuration (CAI-5.1)"
    flow = "cai"
    default_path = "~/cai.env"
    mode = 0o600

    def render(self, recipe: CaiRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        a = recipe.answers
        secret = SecretSlots(resolve, prompt)
        need(a.trustee.url, "trustee.url", "find it with the trustee-url step (kubectl get AlbConfig alb …)")
        need(a.oss.access_key_id, "oss.access_key_id", "e.g. env:OSS_ACCESS_KEY_ID")
        need(a.oss.access_key_secret, "oss.access_key_secret", "e.g. env:OSS_ACCESS_KEY_SECRET")
        values: dict[str, str] = {}
        for var in CAI_ENV_VARS:
            value = var.value(a)
            if var.secret:
                text = "" if value is None else var.to_env(secret(value, field=var.field))  # unset: STS token only
            else:
                text = var.to_env(value)
            if var.name == "MODEL_SHARING_PEER":  # the seed keeps the line, commented out, when nobody shares
                values["MODEL_SHARING_PEER_LINE"] = (
                    f"MODEL_SHARING_PEER={env_quote(text, field=var.name)}"
                    if text
                    else '# MODEL_SHARING_PEER="172.30.xxx.xxx 172.30.xxx.xxx"'
                )
            elif var.bare:
                values[var.name] = env_bare(text, field=var.name)
            elif var.optional and value is None:
                values[var.name] = ""
            else:
                values[var.name] = env_quote(text, field=var.name)
        notes: list[str] = []
        tag = a.trustee.model_key_id.rstrip("/").rsplit("/", 1)[-1]
        if "/aliyun/" in a.trustee.model_key_id and tag != a.kms.secret_name:
            notes.append(
                f"MODEL_KEY_ID names KMS secret {tag!r} but answers.kms.secret_name is {a.kms.secret_name!r}; "
                "with the KMS backend the last segment of the KBS URI is the secret name"
            )
        text = templates.fill(templates.load("cai.env.tmpl"), values)
        return Rendered(
            text=text, mode=self.mode, path=a.service.env_file, secrets_resolved=secret.resolved, notes=tuple(notes)
        )
