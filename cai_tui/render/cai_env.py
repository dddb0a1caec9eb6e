"""CAI-5.1: ``~/cai.env``, the CAI stack's configuration, with the seed's comments.

The file is read by ``docker compose --env-file`` / ``include: env_file:`` (compose's dotenv format): values are
double-quoted as in the seed, with ``\\``, ``"`` and ``$`` escaped so nothing is interpolated.
"""

from __future__ import annotations

import re

from ..recipe import CaiRecipe
from . import templates
from .base import Prompter, Rendered, Renderer, RenderError, SecretSlots, need

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


def trustee_url_with_slash(url: str) -> str:
    """The seed writes TRUSTEE_URL with a trailing slash (``…/xxxx/``)."""
    return url.rstrip("/") + "/"


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
        url = need(a.trustee.url, "trustee.url", "find it with the trustee-url step (kubectl get AlbConfig alb …)")
        ak_id = need(a.oss.access_key_id, "oss.access_key_id", "e.g. env:OSS_ACCESS_KEY_ID")
        ak_secret = need(a.oss.access_key_secret, "oss.access_key_secret", "e.g. env:OSS_ACCESS_KEY_SECRET")
        token = ""
        if a.oss.session_token is not None:  # STS only
            token = env_quote(secret(a.oss.session_token, field="oss.session_token"), field="MODEL_OSS_SESSION_TOKEN")
        peers = " ".join(a.service.sharing_peers)
        peer_line = (
            f"MODEL_SHARING_PEER={env_quote(peers, field='MODEL_SHARING_PEER')}"
            if peers
            else '# MODEL_SHARING_PEER="172.30.xxx.xxx 172.30.xxx.xxx"'
        )
        values = {
            "TRUSTEE_URL": env_quote(trustee_url_with_slash(url), field="TRUSTEE_URL"),
            "TRUSTEE_POLICY": env_quote(a.trustee.policy, field="TRUSTEE_POLICY"),
            "MODEL_KEY_ID": env_quote(a.trustee.model_key_id, field="MODEL_KEY_ID"),
            "MODEL_ENCRYPTION_METHOD": env_quote(a.model.encryption_method, field="MODEL_ENCRYPTION_METHOD"),
            "MODEL_OSS_BUCKET_PATH": env_quote(a.oss.bucket_path, field="MODEL_OSS_BUCKET_PATH"),
            "MODEL_OSS_ENDPOINT": env_quote(a.oss.endpoint, field="MODEL_OSS_ENDPOINT"),
            "MODEL_OSS_ACCESS_KEY_ID": env_quote(
                secret(ak_id, field="oss.access_key_id"), field="MODEL_OSS_ACCESS_KEY_ID"
            ),
            "MODEL_OSS_SECRET_ACCESS_KEY": env_quote(
                secret(ak_secret, field="oss.access_key_secret"), field="MODEL_OSS_SECRET_ACCESS_KEY"
            ),
            "MODEL_OSS_SESSION_TOKEN": token,
            "MODEL_SHARING_PEER_LINE": peer_line,
            "MODEL_SERVICE_PORT": str(a.service.port),
            "MODEL_MOUNT_POINT": env_bare(a.service.mount_point, field="MODEL_MOUNT_POINT"),
        }
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
