"""What a deployment writes where (with modes) and which commands it runs, worked out before anything happens.

The plan is shown before any write, like ``cai-tui render --write``. It never holds a secret value: cai.env is
rendered here with placeholders (``<from file:…>``) and rendered again, resolved, only when it is written
(:func:`render_files`).

The flows (procedure map CAI-5.x):
* ``deploy_with: docker`` — CAI-5.2 ``docker compose -f <cai_compose_file> --env-file <env_file> up -d --wait``; the
  vLLM ``docker run`` line (CAI-5.3) is written as ``vllm-run.sh`` beside cai.env for the user to start (it runs in
  the foreground, as in the seed).
* ``deploy_with: compose`` — CAI-5.4 ``docker compose -f <compose_file> up -d --wait``: the generated file
  ``include:``s the CAI stack with ``env_file: ./cai.env``, so this one command starts the stack and inference. CAI-5.2
  is not run first: it would start a second copy of the stack (project ``cai-docker`` beside the compose file's
  project) on the same host network ports and mount point.

Both flows pass ``service.compose_overrides`` (extra compose files, e.g. the lab's docker-compose.lab.yml) with ``-f``
after the main file, so they merge over it as compose merges repeated ``-f`` files.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..recipe import CaiRecipe, KataRecipe
from ..render import registry
from ..render.base import Prompter

DEFAULT_COMPOSE = ("docker", "compose")
COMPOSE_FOR_WAIT = "2.1.1"  # `up --wait`
COMPOSE_FOR_INCLUDE = "2.20"  # top-level `include:` (CAI-5.4)
VLLM_SCRIPT = "vllm-run.sh"
UP = ("up", "-d", "--wait")
_SECRET_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=.*?<from ([^>]+)>")
_PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class DeployInputError(Exception):
    """The recipe or the options cannot be deployed (exit 2); the message names the field and the fix."""


@dataclass
class PlannedFile:
    kind: str  # the renderer: cai-env, compose, vllm-run
    path: str  # as the recipe gives it (may start with ~)
    remote_path: str  # ~ expanded with the target's $HOME (equal to path while that is unknown)
    mode: int
    secrets: tuple[str, ...] = ()  # "VAR ← reference" for each secret the file will hold
    exists: bool | None = None  # on the target, when asked

    @property
    def backup_path(self) -> str:
        return self.remote_path + ".bak"


@dataclass(frozen=True)
class PlannedCommand:
    step: str  # CAI-5.2 / CAI-5.4
    base: tuple[str, ...]  # the compose command with its -p/-f/--env-file options
    action: tuple[str, ...] = UP

    @property
    def argv(self) -> tuple[str, ...]:
        return (*self.base, *self.action)

    def with_action(self, *action: str) -> tuple[str, ...]:
        """The same project, another sub-command (``ps -a -q``, ``config --services``)."""
        return (*self.base, *action)

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


@dataclass
class DeployPlan:
    deploy_with: str  # docker | compose
    compose_cmd: tuple[str, ...]
    project: str | None  # -p NAME when asked for, else compose picks (the first file's directory name)
    files: list[PlannedFile]
    commands: list[PlannedCommand]
    home: str | None = None
    next_steps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def needs_home(self) -> bool:
        return any(f.path.startswith("~") for f in self.files) or any(
            a.startswith("~") for c in self.commands for a in c.base
        )


def parse_compose_cmd(text: str | None) -> tuple[str, ...]:
    """``--compose-cmd`` → argv prefix (``docker-compose``, ``/usr/local/bin/docker-compose``, ``docker compose``)."""
    if text is None:
        return DEFAULT_COMPOSE
    try:
        words = tuple(shlex.split(text))
    except ValueError as e:
        raise DeployInputError(f"--compose-cmd {text!r}: {e}") from None
    if not words:
        raise DeployInputError("--compose-cmd is empty; e.g. --compose-cmd docker-compose")
    return words


def check_project(name: str | None) -> str | None:
    if name is not None and not _PROJECT.match(name):
        raise DeployInputError(
            f"--project {name!r}: a compose project name is lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit (e.g. cai-docker)"
        )
    return name


def expand_home(path: str, home: str | None) -> str:
    """``~`` and ``~/…`` with the target's home; unchanged while the home is unknown."""
    if not path.startswith("~"):
        return path
    if path != "~" and not path.startswith("~/"):
        raise DeployInputError(f"{path}: ~user paths are not supported here; write the full path (e.g. /home/user/…)")
    if home is None:
        return path
    return home.rstrip("/") + path[1:] if path != "~" else home


def _secret_lines(text: str) -> tuple[str, ...]:
    out = []
    for line in text.splitlines():
        m = _SECRET_LINE.match(line)
        if m:
            out.append(f"{m[1]} ← {m[2]}")
    return tuple(out)


def _render_preview(kind: str, recipe: CaiRecipe) -> tuple[str, int, str | None]:
    from ..recipe import SecretUnavailable
    from ..render import RenderError

    try:
        out = registry.get(kind).render(recipe, resolve=False)
    except (RenderError, SecretUnavailable) as e:
        raise DeployInputError(f"{kind}: {e}") from None
    return out.text, out.mode, out.path


def build_plan(
    recipe: CaiRecipe | KataRecipe,
    *,
    home: str | None = None,
    compose_cmd: Sequence[str] = DEFAULT_COMPOSE,
    project: str | None = None,
) -> DeployPlan:
    """The files and commands for ``recipe``; ``home`` expands ``~`` (None: left as is, to be asked of the target)."""
    if not isinstance(recipe, CaiRecipe):
        raise DeployInputError(
            f"deploy handles the cai flow (the CAI stack on a gn8v-tee instance); this recipe's flow is {recipe.flow}"
        )
    s = recipe.answers.service
    compose = tuple(compose_cmd)
    check_project(project)
    p_opt = ("-p", project) if project else ()
    overrides = tuple(a for path in s.compose_overrides for a in ("-f", expand_home(path, home)))
    files: list[PlannedFile] = []

    text, mode, path = _render_preview("cai-env", recipe)
    env_path = path or s.env_file
    files.append(PlannedFile("cai-env", env_path, expand_home(env_path, home), mode, _secret_lines(text)))
    commands: list[PlannedCommand] = []
    next_steps: list[str] = []
    notes: list[str] = []
    if s.deploy_with == "compose":
        text, mode, path = _render_preview("compose", recipe)
        compose_path = path or s.compose_file
        remote = expand_home(compose_path, home)
        files.append(PlannedFile("compose", compose_path, remote, mode, _secret_lines(text)))
        commands.append(PlannedCommand("CAI-5.4", (*compose, *p_opt, "-f", remote, *overrides)))
        notes.append(
            "the compose flow starts the CAI stack through the file's include: (no separate CAI-5.2: that would "
            "start a second copy of the stack)"
        )
    else:
        text, mode, _ = _render_preview("vllm-run", recipe)
        script = posixpath.join(posixpath.dirname(env_path) or "~", VLLM_SCRIPT)
        script_remote = expand_home(script, home)
        files.append(PlannedFile("vllm-run", script, script_remote, mode, _secret_lines(text)))
        commands.append(
            PlannedCommand(
                "CAI-5.2",
                (
                    *compose,
                    *p_opt,
                    "-f",
                    expand_home(s.cai_compose_file, home),
                    *overrides,
                    "--env-file",
                    files[0].remote_path,
                ),
            )
        )
        next_steps.append(
            f"CAI-5.3: start vLLM once the stack is healthy: bash {shlex.quote(script_remote)} (it runs in the "
            "foreground and is ready when Uvicorn listens)"
        )
    return DeployPlan(
        deploy_with=s.deploy_with,
        compose_cmd=compose,
        project=project,
        files=files,
        commands=commands,
        home=home,
        next_steps=next_steps,
        notes=notes,
    )


def render_files(recipe: CaiRecipe, plan: DeployPlan, prompt: Prompter | None = None) -> dict[str, bytes]:
    """kind → the bytes to write, secrets resolved now (they join the redaction set as they are read)."""
    from ..recipe import SecretUnavailable
    from ..render import RenderError

    out: dict[str, bytes] = {}
    for f in plan.files:
        try:
            rendered = registry.get(f.kind).render(recipe, resolve=True, prompt=prompt)
        except (RenderError, SecretUnavailable) as e:
            raise DeployInputError(f"{f.kind}: {e}") from None
        out[f.kind] = rendered.text.encode("utf-8")
    return out
