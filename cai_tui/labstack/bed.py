"""The labstack test bed: the CAI container stack on the local Docker engine, configured from a running lab.

The bed lays its working directory out like the instance (CAI-5.1 … CAI-5.4)::

    <workdir>/cai-docker/docker-compose.yml   the stand-in for /opt/alibaba/cai-docker/docker-compose.yml
    <workdir>/home/cai.env                    `cai-tui render cai-env` of the lab recipe, secrets resolved (0600)
    <workdir>/home/docker-compose.yml         `cai-tui render compose` (includes the stand-in, adds inference)
    <workdir>/home/docker-compose.lab.yml     what only the lab changes (no GPU; see lab_override())
    <workdir>/recipe.yaml                     the recipe behind them (secrets stay references)
    <workdir>/model                           MODEL_MOUNT_POINT, a shared bind mount while the stack is up

and runs the seed's ``docker compose … up -d --wait`` as compose project ``cai-docker``, so the containers carry the
instance's names (``cai-docker-oss-1`` … ``cai-docker-inference-1``). The fault matrix injects faults through the
lab's switches and through ``env_overrides``/``env_drop`` (wrong or missing cai.env values) and ``service_env`` (lab
switches per service, e.g. ``{"attestation-agent": {"CAI_LAB_ATTESTER": None}}`` for a machine without a TEE).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import events
from ..events import EventSink
from .stack import (
    COMPOSE_HINT,
    SERVICES,
    BedError,
    compose_command,
    docker_client,
    free_port,
    lab_override,
    mounts_under,
    privileged_works,
    project_filter,
    remove_project,
    share_mount,
    unshare_mount,
    write_file,
    write_stand_in,
)

__all__ = [
    "CAI_ENV_VARS",
    "COMPOSE_HINT",
    "CONTAINERS",
    "PROJECT",
    "SERVICES",
    "BedError",
    "ContainerState",
    "StackBed",
    "UpResult",
    "compose_command",
    "compose_env",
    "free_port",
    "mounts_under",
    "privileged_works",
]

PROJECT = "cai-docker"
CONTAINERS = tuple(f"{PROJECT}-{s}-1" for s in SERVICES)
CAI_ENV_VARS = (
    "TRUSTEE_URL",
    "TRUSTEE_POLICY",
    "MODEL_KEY_ID",
    "MODEL_ENCRYPTION_METHOD",
    "MODEL_OSS_BUCKET_PATH",
    "MODEL_OSS_ENDPOINT",
    "MODEL_OSS_ACCESS_KEY_ID",
    "MODEL_OSS_SECRET_ACCESS_KEY",
    "MODEL_OSS_SESSION_TOKEN",
    "MODEL_SHARING_PEER",
    "MODEL_SERVICE_PORT",
    "MODEL_MOUNT_POINT",
)


@dataclass(frozen=True)
class UpResult:
    rc: int
    lines: list[str]
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class ContainerState:
    state: str  # running, exited, created, …
    health: str | None  # healthy, unhealthy, starting, or None without a healthcheck
    exit_code: int


def compose_env() -> dict[str, str]:
    """The environment for compose: without cai.env's variables (the shell's would win over the env file) and
    without COMPOSE_* settings of the caller."""
    drop = set(CAI_ENV_VARS)
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("COMPOSE_")}


def run_compose(argv: list[str], cwd: Path, timeout: float, on_event: EventSink | None = None) -> UpResult:
    """Run one compose command line, streaming its output lines; rc 124 when it ran past ``timeout``."""
    t0 = time.monotonic()
    lines: list[str] = []
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=compose_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            if on_event is not None:
                on_event(events.line(line, source="compose"))
        rc = proc.wait()
    finally:
        timer.cancel()
    if rc < 0 and time.monotonic() - t0 >= timeout:
        rc = 124
    return UpResult(rc, lines, time.monotonic() - t0)


# --- the bed ---------------------------------------------------------------------------------------------------------


class StackBed:
    """The labstack for one lab; ``up()``/``down()`` or ``with StackBed(…) as bed:`` (``down()`` on exit)."""

    def __init__(
        self,
        workdir: Path | str,
        lab: Any,
        image: str,
        *,
        port: int | None = None,
        env_overrides: Mapping[str, str] | None = None,
        env_drop: Iterable[str] = (),
        service_env: Mapping[str, Mapping[str, str | None]] | None = None,
        mem_limit: Mapping[str, str] | None = None,
        privileged: bool | None = None,
    ) -> None:
        """``lab``: a started :class:`cai_tui.lab.orchestrator.Lab`; ``image``: the tag from ``build_image()``;
        ``port``: MODEL_SERVICE_PORT (default: a free one); ``env_overrides``: cai.env values to replace (or add);
        ``env_drop``: cai.env variables to remove; ``service_env``: environment per service in the lab override
        (``None`` removes a variable the stand-in compose sets); ``mem_limit``: a memory limit per service (compose's
        ``mem_limit`` syntax, swap included: the kernel's OOM killer ends what outgrows it); ``privileged``: keep
        cachefs privileged (default: when privileged containers work here, else it gets CAP_SYS_ADMIN + /dev/fuse
        instead)."""
        self.workdir = Path(workdir).resolve()
        self.lab = lab
        self.image = image
        self.port = port if port is not None else free_port()
        self.env_overrides: dict[str, str] = dict(env_overrides or {})
        self.env_drop: set[str] = set(env_drop)
        self.service_env: dict[str, dict[str, str | None]] = {k: dict(v) for k, v in (service_env or {}).items()}
        self.mem_limit: dict[str, str] = dict(mem_limit or {})
        self.privileged = privileged
        self.cai_compose_file = self.workdir / "cai-docker" / "docker-compose.yml"
        self.home = self.workdir / "home"
        self.env_file = self.home / "cai.env"
        self.compose_file = self.home / "docker-compose.yml"
        self.override_file = self.home / "docker-compose.lab.yml"
        self.recipe_file = self.workdir / "recipe.yaml"
        self.mount_point = self.workdir / "model"
        self._compose: list[str] | None = None
        self._mounted = False
        self.recipe: Any = None
        self.write()

    # --- files -------------------------------------------------------------------------------------------------------

    def write(self) -> None:
        """(Re)write every file from the lab recipe and the current overrides (call again after changing them)."""
        from .. import render
        from ..recipe import CaiRecipe, load_recipe, save_recipe

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mount_point.mkdir(parents=True, exist_ok=True)
        write_stand_in(self.cai_compose_file, self.image)

        loaded = load_recipe(self.lab.recipe_path)  # a fresh copy; assignments are validated
        if not isinstance(loaded.recipe, CaiRecipe):
            raise BedError(f"{self.lab.recipe_path}: the lab recipe must be of the cai flow")
        svc = loaded.recipe.answers.service
        svc.cai_compose_file = str(self.cai_compose_file)
        svc.vllm_image = self.image
        svc.env_file = str(self.env_file)
        svc.compose_file = str(self.compose_file)
        svc.mount_point = str(self.mount_point)
        svc.port = self.port
        svc.compose_overrides = [str(self.override_file)]
        save_recipe(loaded, self.recipe_file, backup=False)
        self.recipe = loaded.recipe

        compose = render.get("compose").render(self.recipe)
        write_file(self.compose_file, compose.text)
        cai_env = render.get("cai-env").render(self.recipe, resolve=True)
        write_file(self.env_file, self.apply_env(cai_env.text), 0o600)
        os.chmod(self.env_file, 0o600)
        write_file(self.override_file, self.lab_override())

    def apply_env(self, text: str) -> str:
        """cai.env with ``env_overrides`` (values replaced, or appended when absent) and ``env_drop`` applied."""
        from ..render.cai_env import env_quote

        lines = text.splitlines()
        out = []
        seen = set()
        for line in lines:
            m = re.match(r"^([A-Z_][A-Z0-9_]*)=", line)
            name = m.group(1) if m else None
            if name in self.env_drop:
                continue
            if name is not None and name in self.env_overrides:
                line = f"{name}={env_quote(self.env_overrides[name], field=name)}"
                seen.add(name)
            out.append(line)
        for name, value in self.env_overrides.items():
            if name not in seen and name not in self.env_drop:
                out.append(f"{name}={env_quote(value, field=name)}")
        return "\n".join(out) + "\n"

    def lab_override(self) -> str:
        """The lab's compose override (see :func:`.stack.lab_override`) with this bed's ``service_env``,
        ``mem_limit`` and ``privileged``."""
        return lab_override(
            self.image, service_env=self.service_env, mem_limit=self.mem_limit, privileged=self.privileged
        )

    # --- compose -----------------------------------------------------------------------------------------------------

    def compose_argv(self, *args: str) -> list[str]:
        """The compose command line for this bed (project, files, env file), followed by ``args``."""
        if self._compose is None:
            self._compose = compose_command()
        return [
            *self._compose,
            "--ansi",
            "never",
            "--progress",
            "plain",
            "-p",
            PROJECT,
            "-f",
            str(self.compose_file),
            "-f",
            str(self.override_file),
            "--env-file",
            str(self.env_file),
            *args,
        ]

    @staticmethod
    def compose_env() -> dict[str, str]:
        """The environment for compose (see :func:`compose_env`)."""
        return compose_env()

    def compose(self, *args: str, timeout: float = 120, on_event: EventSink | None = None) -> UpResult:
        """Run one compose command, streaming its output lines; rc 124 when it ran past ``timeout``."""
        return run_compose(self.compose_argv(*args), self.home, timeout, on_event)

    def share_mount_point(self) -> None:
        """MODEL_MOUNT_POINT as a shared bind mount (docker's ``:shared`` propagation needs a shared mount)."""
        share_mount(self.mount_point)
        self._mounted = True

    def unshare_mount_point(self) -> None:
        """Lazily unmount whatever is mounted at or below MODEL_MOUNT_POINT (a FUSE mount left over, the bind)."""
        self._mounted = False
        unshare_mount(self.mount_point)

    def up(self, timeout: float = 90, on_event: EventSink | None = None) -> UpResult:
        """``docker compose … up -d --wait``: every service running and healthy, or rc != 0 with compose's lines."""
        self.remove_project()  # a stack left by an earlier run would be reused, not recreated
        self.share_mount_point()
        wait = max(1, int(timeout))
        return self.compose("up", "-d", "--wait", "--wait-timeout", str(wait), timeout=wait + 30, on_event=on_event)

    def down(self) -> None:
        """Stop and remove the project's containers and volumes, unmount MODEL_MOUNT_POINT; idempotent."""
        try:
            if self.compose_file.exists() and self.override_file.exists() and self.env_file.exists():
                self.compose("down", "-v", "--remove-orphans", "-t", "2", timeout=120)
        finally:
            self.remove_project()
            self.unshare_mount_point()

    def __enter__(self) -> StackBed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # --- state -------------------------------------------------------------------------------------------------------

    @staticmethod
    def _client() -> Any:
        return docker_client()

    def remove_project(self) -> None:
        """Remove every container and volume labelled with the project (what ``down`` may have missed)."""
        remove_project(PROJECT)

    def containers(self) -> dict[str, ContainerState]:
        """The project's containers: name → (state, health, exit code)."""
        client = self._client()
        out = {}
        for c in client.containers.list(all=True, filters=project_filter(PROJECT)):
            st = c.attrs.get("State", {})
            health = (st.get("Health") or {}).get("Status")
            out[c.name] = ContainerState(str(st.get("Status", "")), health, int(st.get("ExitCode", 0)))
        return out

    def volumes(self) -> list[str]:
        client = self._client()
        return [v.name for v in client.volumes.list(filters=project_filter(PROJECT))]

    def logs(self, service: str) -> str:
        """stdout and stderr of ``cai-docker-<service>-1`` (as ``docker logs`` shows them), or "" without one."""
        import docker.errors

        try:
            c = self._client().containers.get(f"{PROJECT}-{service}-1")
        except docker.errors.NotFound:
            return ""
        return bytes(c.logs(stdout=True, stderr=True)).decode("utf-8", "replace")

    @property
    def model_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
