"""Compose-labelled busybox containers that fail the way the CAI stack's services do (real Docker, real exits, real
healthchecks, a real crash loop), each in its own project so tests running at the same time do not see each other."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Sequence

from tests.targets.docker_lab import docker

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
DEPENDS_LABEL = "com.docker.compose.depends_on"
DOCKER_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z$")

# what the real programs print (formats from the FAQ's sources: gocryptfs, confidential-data-hub, tng)
CACHEFS = "echo 'Using config file at /run/cachefs/cipher/gocryptfs.conf'; echo 'Password incorrect.' >&2; exit 12"
CDH = (
    "echo '[INFO] confidential-data-hub starting'; "
    "echo 'Error: RCAR handshake failed: error sending request for url (http://127.0.0.1:9/api/kbs/v0/auth): "
    "tcp connect error: Connection refused (os error 111)' >&2; exit 1"
)
TNG_HEALTH = (
    "echo 'Failed to connect to Attestation Agent ttrpc endpoint "
    "unix:///run/confidential-containers/attestation-agent/attestation-agent.sock'; exit 1"
)
UNKNOWN = "echo 'frobnicating the quux' >&2; echo 'fatal: widget exploded (code 7)' >&2; exit 3"


def new_project(prefix: str = "cts") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def labels(project: str, service: str, depends: str | None = None) -> list[str]:
    out = ["--label", f"{PROJECT_LABEL}={project}", "--label", f"{SERVICE_LABEL}={service}"]
    if depends:
        out += ["--label", f"{DEPENDS_LABEL}={depends}"]
    return out


def run(project: str, service: str, image: str, script: str, extra: Sequence[str] = ()) -> str:
    name = f"{project}-{service}-1"
    docker("run", "-d", "--name", name, *labels(project, service), *extra, image, "sh", "-c", script)
    return name


def create(project: str, service: str, image: str, depends: str) -> str:
    name = f"{project}-{service}-1"
    docker("create", "--name", name, *labels(project, service, depends), image, "sleep", "3600")
    return name


def inspect(name: str) -> dict:
    return json.loads(docker("inspect", name).stdout)[0]


def wait_for(name: str, ok, what: str, timeout: float = 30) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        attrs = inspect(name)
        if ok(attrs):
            return attrs
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: not {what} within {timeout} s: {attrs.get('State')}")
        time.sleep(0.2)


def remove_project(project: str) -> None:
    ids = docker("ps", "-aq", "--filter", f"label={PROJECT_LABEL}={project}", check=False).stdout.split()
    if ids:
        docker("rm", "-f", *ids, check=False)
