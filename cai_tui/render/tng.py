"""CAI-6.2: the TNG client configuration, for the TNG version the recipe names, and its ``docker run`` line.

The schema is TNG's own, per version: :mod:`cai_tui.tng` (models per version, and the real binary as the judge where
it is installed). The names here stay for the callers that import them from the renderer.
"""

from __future__ import annotations

import json
from typing import Any

from ..recipe import CaiRecipe
from ..tng.problems import SUPPORTED, TngConfigError, parse_version
from ..tng.schema import validate_config
from .base import Prompter, Rendered, Renderer, RenderError
from .shell import multiline, script

__all__ = ["SUPPORTED", "TngClient", "TngConfigError", "client_config", "parse_version", "validate_config"]


def client_config(recipe: CaiRecipe) -> dict[str, Any]:
    """The seed's client: an HTTP CONNECT proxy whose peers are verified by Trustee's AS."""
    a = recipe.answers
    url = a.trustee.url
    if not url:
        raise RenderError("answers.trustee.url is not set; TNG verifies the instance through <trustee url>/as/")
    v = parse_version(a.tng.version)
    verify: dict[str, Any] = {"as_addr": url + "/as/", "policy_ids": [a.trustee.policy]}
    if v[0] == 2 and v > (2, 5, 0):
        verify["as_type"] = "restful"
    return {
        "add_ingress": [
            {
                "http_proxy": {"proxy_listen": {"host": a.tng.proxy_host, "port": a.tng.proxy_port}},
                "verify": verify,
            }
        ]
    }


class TngClient(Renderer):
    kind = "tng-client"
    title = "TNG client: config for the recipe's TNG version and its docker run line (CAI-6.2)"
    flow = "cai"
    default_path = "~/tng-client.sh"
    mode = 0o755

    def render(self, recipe: CaiRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        t = recipe.answers.tng
        config = client_config(recipe)
        try:
            validate_config(config, t.version)
        except TngConfigError as e:
            raise RenderError(f"the generated TNG {t.version} config is invalid: {e}") from None
        content = json.dumps(config, indent=4, ensure_ascii=False)
        body = multiline(
            ["docker", "run", "--rm"],
            ["--network=host"],
            [f"{t.image}:{t.version}"],
            ["tng", "launch", "--config-content", content],
        )
        proxy = f"http://{t.proxy_host}:{t.proxy_port}"
        text = script(
            [body],
            header=[
                f"CAI-6.2: TNG {t.version} client (schema checked for this version). It stays in the foreground,",
                f"serving an HTTP CONNECT proxy on {t.proxy_host}:{t.proxy_port}. In another terminal (CAI-6.3):",
                f"  export all_proxy={proxy}",
            ],
        )
        return self.done(text)
