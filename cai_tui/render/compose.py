"""CAI-5.3 / CAI-5.4: the vLLM inference service, as ``~/docker-compose.yml`` or as a ``docker run`` line.

Every scalar in the compose file is a double-quoted YAML string with ``$`` doubled, so compose neither splits nor
interpolates a path; the command is a list (exec form), one element per argument.
"""

from __future__ import annotations

import json
import posixpath

from ..recipe import CaiRecipe
from . import templates
from .base import Prompter, Rendered, Renderer, RenderError
from .shell import multiline, script


def yq(value: str) -> str:
    """A YAML double-quoted scalar that compose takes literally (``$`` → ``$$``)."""
    return json.dumps(value.replace("$", "$$"), ensure_ascii=False)


def model_dir(recipe: CaiRecipe) -> str:
    """MODEL_MOUNT_POINT without a trailing slash (the served model name is exactly this string)."""
    mount = recipe.answers.service.mount_point
    return mount.rstrip("/") or "/"


def vllm_argv(recipe: CaiRecipe) -> list[str]:
    return [
        "python3",
        "-m",
        "vllm.entrypoints.openai.api_server",
        f"--model={model_dir(recipe)}",
        "--trust-remote-code",
        "--port",
        str(recipe.answers.service.port),
    ]


def env_file_ref(env_file: str, compose_file: str) -> str:
    """``./cai.env`` when both files share a directory (as in the seed), else the env file's own path."""
    if posixpath.dirname(env_file) == posixpath.dirname(compose_file):
        return "./" + posixpath.basename(env_file)
    return env_file


class Compose(Renderer):
    kind = "compose"
    title = "~/docker-compose.yml: CAI stack + vLLM inference (CAI-5.4)"
    flow = "cai"
    default_path = "~/docker-compose.yml"
    mode = 0o644

    def render(self, recipe: CaiRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        s = recipe.answers.service
        mount = model_dir(recipe)
        if ":" in mount:
            volumes = "\n".join(
                [
                    "      - type: bind",
                    f"        source: {yq(mount)}",
                    f"        target: {yq(mount)}",
                    "        bind:",
                    "          propagation: shared",
                ]
            )
        else:
            volumes = f"      - {yq(f'{mount}:{mount}:shared')}"
        command = "[" + ", ".join(yq(a) for a in vllm_argv(recipe)) + "]"
        text = templates.fill(
            templates.load("docker-compose.yml.tmpl"),
            {
                "CAI_COMPOSE_FILE": yq(s.cai_compose_file),
                "ENV_FILE": yq(env_file_ref(s.env_file, s.compose_file)),
                "IMAGE": yq(s.vllm_image),
                "VOLUMES": volumes,
                "COMMAND": command,
                "SERVED_NAME": json.dumps(mount, ensure_ascii=False),
            },
        )
        notes = []
        if s.deploy_with != "compose":
            notes.append("answers.service.deploy_with is docker: the vllm-run line is what the recipe uses")
        return Rendered(text=text, mode=self.mode, path=s.compose_file, notes=tuple(notes))


class VllmRun(Renderer):
    kind = "vllm-run"
    title = "docker run line for vLLM (CAI-5.3)"
    flow = "cai"
    default_path = "~/vllm-run.sh"
    mode = 0o755

    def render(self, recipe: CaiRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        s = recipe.answers.service
        mount = model_dir(recipe)
        if ":" in mount or "," in mount:
            raise RenderError(
                f"answers.service.mount_point {mount!r} contains ':' or ','; docker -v cannot express it, pick another"
            )
        body = multiline(
            ["docker", "run", "--rm"],
            ["--net", "host"],
            ["-v", f"{mount}:{mount}"],
            ["--gpus", "all"],
            [s.vllm_image],
            vllm_argv(recipe),
        )
        text = script(
            [body],
            header=[
                "CAI-5.3: start vLLM on the decrypted model (the CAI stack must be Healthy first).",
                f'Ready when Uvicorn listens on port {s.port}; clients ask for the model "{mount}".',
            ],
        )
        return self.done(text)
