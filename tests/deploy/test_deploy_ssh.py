"""Deploying over SSH against a real OpenSSH sshd on 127.0.0.1 (as root that is this machine, so the Docker engine
is reachable through it): SFTP writes with modes, backups, streamed compose output, host keys enforced."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploylib import PLANTED, compose_binary, deploy_recipe, run_cli_timed, stack_file, unique
from tests.targets.sshd_lab import Sshd, make_sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if os.geteuid() != 0:
        pytest.fail("the SSH deploy tests log in as this user and need its docker access: run them as root")
    server = make_sshd(tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.stop()


def ssh_setup(home: Path, sshd: Sshd, *, known: bool = True) -> str:
    """~/.ssh/config naming the test key and known_hosts (empty when not ``known``); returns the target URI."""
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "known_hosts").write_text(sshd.known_hosts_line() if known else "")
    (ssh / "config").write_text(
        f"Host 127.0.0.1\n  IdentityFile {sshd.client_key}\n  UserKnownHostsFile {ssh / 'known_hosts'}\n"
    )
    return f"ssh://{sshd.user}@127.0.0.1:{sshd.port}"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_compose_flow_over_ssh_modes_backup_streaming(
    lab: Any, home: Path, sshd: Sshd, image: str, projects: list[str], tmp_path: Path
) -> None:
    uri = ssh_setup(home, sshd)
    stack = stack_file(tmp_path / unique("caistack"), image)
    project = unique("caissh")
    projects.append(project)
    instance = tmp_path / "instance"
    instance.mkdir()
    compose_file = instance / "docker-compose.yml"
    compose_file.write_text("services: {}  # the user's own\n")
    compose_file.chmod(0o640)
    model = tmp_path / "model"
    model.mkdir()
    recipe = deploy_recipe(
        lab,
        tmp_path / "recipe",
        deploy_with="compose",
        cai_compose_file=str(stack),
        env_file=str(instance / "cai.env"),
        compose_file=str(compose_file),
        vllm_image=image,
        mount_point=str(model),
    )
    run = run_cli_timed(
        *("deploy", "--recipe", str(recipe), "--target", f"instance={uri}", "--yes", "--project", project),
        *("--compose-cmd", str(compose_binary()), "--timeout", "60"),
        env={"HOME": str(home)},
    )
    # the stack comes up; inference cannot start here (no NVIDIA GPU, and no vLLM in a busybox image): exit 1
    assert run.rc == 1, run.stdout + run.stderr
    out = run.stdout
    assert PLANTED not in out + run.stderr
    prefix = f"[{uri}] "
    started = [t for t, line in run.lines if line.startswith(prefix) and line.endswith(f"{project}-oss-1  Started")]
    healthy = [t for t, line in run.lines if line.startswith(prefix) and line.endswith(f"{project}-oss-1  Healthy")]
    assert started and healthy, out
    assert healthy[0] - started[0] >= 1.5 and run.ended_s - started[0] >= 1.5, "compose output was not streamed"
    assert f"✓ {project}-oss-1" in out and f"✓ {project}-cachefs-1" in out
    assert f"✗ {project}-inference-1" in out and "result: deployed, but failed" in out
    assert f"cai-tui troubleshoot --recipe {recipe}" in out

    assert mode(instance / "cai.env") == 0o600 and f'"{PLANTED}"' in (instance / "cai.env").read_text()
    assert mode(compose_file) == 0o644 and "include:" in compose_file.read_text()
    backup = instance / "docker-compose.yml.bak"
    assert backup.read_text() == "services: {}  # the user's own\n" and mode(backup) == 0o640
    assert not (instance / "cai.env.bak").exists()  # there was none to keep
    assert f"the previous file is kept as {backup}" in out


def test_docker_flow_over_ssh_healthy_json(
    lab: Any, home: Path, sshd: Sshd, image: str, projects: list[str], tmp_path: Path
) -> None:
    uri = ssh_setup(home, sshd)
    stack = stack_file(tmp_path / unique("caistack"), image, oss_delay_s=0.5)
    project = unique("caissh")
    projects.append(project)
    deep = tmp_path / "not" / "there" / "yet"
    recipe = deploy_recipe(
        lab, tmp_path / "recipe", deploy_with="docker", cai_compose_file=str(stack), env_file=str(deep / "cai.env")
    )
    binary = str(compose_binary())
    run = run_cli_timed(
        *("deploy", "--recipe", str(recipe), "--target", f"instance={uri}", "--yes", "--json", "--project", project),
        *("--compose-cmd", binary, "--timeout", "60"),
        env={"HOME": str(home)},
    )
    assert run.rc == 0, run.stdout + run.stderr
    assert PLANTED not in run.stdout + run.stderr
    doc = json.loads(run.stdout)
    assert doc["target"] == uri and doc["result"] == "healthy"
    assert [(f["path"], f["mode"], f["mode_verified"]) for f in doc["files"]] == [
        (str(deep / "cai.env"), "0600", True),
        (str(deep / "vllm-run.sh"), "0755", True),
    ]
    assert doc["commands"] == [
        {
            "step": "CAI-5.2",
            "argv": [
                binary,
                "-p",
                project,
                "-f",
                str(stack),
                "--env-file",
                str(deep / "cai.env"),
                "up",
                "-d",
                "--wait",
            ],
            "rc": 0,
            "duration_s": doc["commands"][0]["duration_s"],
        }
    ]
    assert sorted((c["service"], c["verdict"]) for c in doc["containers"]) == [
        ("cachefs", "healthy"),
        ("oss", "healthy"),
    ]
    assert mode(deep / "cai.env") == 0o600 and mode(deep / "vllm-run.sh") == 0o755
    assert f"[{uri}] " in run.stderr  # compose's lines, prefixed with the target


def test_unknown_host_key_is_refused_and_nothing_written(lab: Any, home: Path, sshd: Sshd, tmp_path: Path) -> None:
    uri = ssh_setup(home, sshd, known=False)
    instance = tmp_path / "instance"
    recipe = deploy_recipe(lab, tmp_path / "recipe", env_file=str(instance / "cai.env"))
    run = run_cli_timed(
        "deploy", "--recipe", str(recipe), "--target", f"instance={uri}", "--yes", env={"HOME": str(home)}
    )
    assert run.rc == 3, run.stdout + run.stderr
    assert "is not known" in run.stderr and "Traceback" not in run.stderr
    assert not instance.exists()
    assert (home / ".ssh/known_hosts").read_text() == ""  # nothing accepted behind the user's back
