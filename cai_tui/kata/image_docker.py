"""The docker side of the image doers (KATA-2): buildx, the Dockerfile's needs, disk space, images, streamed runs."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from dataclasses import dataclass

from ..events import CancelToken, EventSink, line

GIB = 1024**3
BUILDKIT_ONLY = re.compile(r"[ \t]*(RUN[ \t]+(--\S+[ \t]+)*--mount=|#[ \t]*syntax=|COPY[ \t]+--link|RUN[ \t]+<<)", re.I)
DOCUMENTED_INSTALL = (
    "mkdir -p ~/.docker/cli-plugins/",
    "wget -O ~/.docker/cli-plugins/docker-buildx "
    "https://github.com/docker/buildx/releases/download/{v}/buildx-{v}.linux-arm64",
    "chmod +x ~/.docker/cli-plugins/docker-buildx",
    "docker buildx version",
)


class ImageError(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise ImageError("docker is not installed (KATA-0: docker newer than 19.03)") from None
    except subprocess.TimeoutExpired:
        raise ImageError(
            f"docker {' '.join(args)} did not answer within {timeout:.0f} s: is dockerd running?"
        ) from None


# ------------------------------------------------------------------------------------------- buildx


@dataclass(frozen=True)
class Buildx:
    version: str | None  # "github.com/docker/buildx v0.19.2 …", None when absent
    detail: str  # what docker said


def buildx() -> Buildx:
    r = docker("buildx", "version", timeout=30)
    if r.returncode == 0 and r.stdout.strip():
        return Buildx(r.stdout.strip().splitlines()[0], r.stdout.strip())
    return Buildx(None, (r.stderr or r.stdout).strip().splitlines()[0] if (r.stderr or r.stdout).strip() else "")


def needs_buildkit(dockerfile_text: str) -> list[str]:
    """The lines that only BuildKit builds (``RUN --mount``, a ``# syntax=`` line, heredocs, ``COPY --link``)."""
    return [ln.strip() for ln in dockerfile_text.splitlines() if BUILDKIT_ONLY.match(ln)]


def stages(dockerfile_text: str) -> list[str]:
    """The stage names (``FROM … AS name``), for ``--target``."""
    return [
        m.group(1)
        for m in re.finditer(r"(?im)^[ \t]*FROM(?:[ \t]+--\S+)*[ \t]+\S+[ \t]+AS[ \t]+(\S+)", dockerfile_text)
    ]


def install_commands(version: str) -> list[str]:
    return [c.format(v=version) for c in DOCUMENTED_INSTALL]


# ------------------------------------------------------------------------------------------- disk


def data_root() -> str:
    r = docker("info", "--format", "{{.DockerRootDir}}")
    root = r.stdout.strip()
    if r.returncode != 0 or not root:
        raise ImageError(f"docker info failed: {(r.stderr or r.stdout).strip()[:300]} (is dockerd running?)")
    return root


def free_bytes(path: str) -> int:
    while not os.path.exists(path) and path not in ("", "/"):
        path = os.path.dirname(path)
    st = os.statvfs(path or "/")
    return st.f_bavail * st.f_frsize


def _gib(n: int) -> str:
    return f"{n / GIB:.0f}" if n >= GIB else f"{n / GIB:.2f}"


def check_space(path: str, need: int, what: str) -> str:
    free = free_bytes(path)
    if free < need:
        raise ImageError(
            f"{what}: {path} has {free / GIB:.1f} GiB free, the step needs about {_gib(need)} GiB: free space "
            f"there (docker system prune, or move docker's data-root to a larger disk) and run again"
        )
    return f"{what}: {path} has {free / GIB:.1f} GiB free (needs about {_gib(need)} GiB)"


# ------------------------------------------------------------------------------------------- running


def image_id(ref: str) -> str | None:
    r = docker("image", "inspect", "--format", "{{.Id}}", ref)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


def image_size(ref: str) -> int | None:
    r = docker("image", "inspect", "--format", "{{.Size}}", ref)
    try:
        return int(r.stdout.strip()) if r.returncode == 0 else None
    except ValueError:
        return None


def stream(
    argv: list[str], sink: EventSink, cancel: CancelToken | None, env: dict[str, str] | None = None, source: str = ""
) -> int:
    """Run ``argv``, every output line to ``sink`` as it comes (stderr merged); terminated when ``cancel`` is set."""
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        text=True,
        errors="replace",
        bufsize=1,
    )
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.2):
            if cancel is not None and cancel.cancelled and proc.poll() is None:
                proc.terminate()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert proc.stdout is not None
        for text in proc.stdout:
            sink(line(text.rstrip("\n"), source=source))
        return proc.wait()
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


__all__ = [
    "GIB",
    "Buildx",
    "ImageError",
    "buildx",
    "check_space",
    "data_root",
    "docker",
    "free_bytes",
    "image_id",
    "image_size",
    "install_commands",
    "needs_buildkit",
    "stages",
    "stream",
]
