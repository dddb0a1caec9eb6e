"""Deploying on this machine with the real Docker engine and the real Compose v2: files and modes, ~ expanded,
compose output streamed while compose still waits, the containers watched to healthy or failed, no secret shown."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from cai_tui.deploy.execute import DeployOptions, execute, prepare
from cai_tui.deploy.report import SCHEMA, document
from cai_tui.deploy.watch import engine_for
from cai_tui.events import Event
from cai_tui.recipe import CaiRecipe, load_recipe
from cai_tui.targets.local import LocalTarget
from tests.deploy.deploylib import PLANTED, deploy_recipe, run_cli_timed, stack_file, unique
from tests.helpers import REPO


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_deploy_streams_writes_and_waits_until_healthy(
    lab: Any, home: Path, compose_plugin: Path, image: str, projects: list[str], tmp_path: Path
) -> None:
    stack_dir = tmp_path / unique("caistack")
    stack = stack_file(stack_dir, image)
    projects.append(stack_dir.name)  # no --project: compose names it after the stack file's directory
    recipe_path = deploy_recipe(
        lab, tmp_path / "recipe", deploy_with="docker", cai_compose_file=str(stack), env_file="~/deploy/cai.env"
    )
    rec = load_recipe(recipe_path).recipe
    assert isinstance(rec, CaiRecipe)
    target = LocalTarget()
    engine = engine_for(target)
    options = DeployOptions(timeout=60)
    try:
        report = await prepare(target, rec, options, engine, recipe_source=str(recipe_path))
        assert report.result == "planned", report.message
        assert report.plan is not None
        files = [(f.kind, f.remote_path, f.mode, f.exists) for f in report.plan.files]
        assert files == [
            ("cai-env", f"{home}/deploy/cai.env", 0o600, False),
            ("vllm-run", f"{home}/deploy/vllm-run.sh", 0o755, False),
        ]
        env_path = f"{home}/deploy/cai.env"
        assert report.plan.commands[0].argv == (
            *("docker", "compose", "-f", str(stack), "--env-file", env_path, "up", "-d", "--wait"),
        )
        assert report.plan.files[0].secrets[1].startswith("MODEL_OSS_SECRET_ACCESS_KEY ← file:")
        assert not (home / "deploy").exists(), "prepare must not write"

        t0 = time.monotonic()
        lines: list[tuple[float, str]] = []
        events: list[tuple[float, str]] = []

        def on_event(e: Event) -> None:
            if e.kind == "line":
                assert e.source == target.name
            (lines if e.kind == "line" else events).append((time.monotonic() - t0, e.text))

        report = await execute(target, rec, report, options, engine, on_event=on_event)
    finally:
        await engine.close()
    assert report.result == "healthy", (report.message, lines)
    assert report.exit_code == 0 and report.commands[0].rc == 0

    env_file, script = home / "deploy/cai.env", home / "deploy/vllm-run.sh"
    assert mode(env_file) == 0o600 and mode(script) == 0o755
    assert f'MODEL_OSS_SECRET_ACCESS_KEY="{PLANTED}"' in env_file.read_text()  # resolved when written
    assert "docker run --rm" in script.read_text()
    assert [o.mode_verified for o in report.files] == [True, True]

    # streamed: compose printed "Started" for oss and the callback had it while compose still waited for health
    compose_done = next(t for t, e in events if e.startswith("watching project"))
    started = [t for t, line in lines if "-oss-1" in line and line.strip().endswith("Started")]
    healthy = [t for t, line in lines if "-oss-1" in line and line.strip().endswith("Healthy")]
    assert started and healthy, lines
    assert healthy[0] - started[0] >= 1.5 and compose_done - started[0] >= 1.5, (started, healthy, compose_done)

    by_service = {c.service: c for c in report.containers}
    assert set(by_service) == {"oss", "cachefs"}
    assert {c.project for c in report.containers} == {stack_dir.name} and report.projects == [stack_dir.name]
    assert all(c.verdict == "healthy" and c.status == "running" for c in report.containers)
    oss_after = by_service["oss"].healthy_after_s
    assert oss_after is not None and 1.5 <= oss_after < 30

    doc = document(report)
    text = json.dumps(doc)
    assert doc["schema"] == SCHEMA and doc["result"] == "healthy" and PLANTED not in text
    assert doc["files"][0]["mode"] == "0600" and doc["files"][0]["written"] is True
    assert doc["commands"][0]["rc"] == 0 and doc["next"][0].startswith("CAI-5.3: start vLLM")
    # a second deploy of the same files leaves them (and no needless backup) alone
    engine = engine_for(target)
    try:
        again = await prepare(target, rec, options, engine, recipe_source=str(recipe_path))
        assert [f.exists for f in again.plan.files] == [True, True]  # type: ignore[union-attr]
        again = await execute(target, rec, again, options, engine)
    finally:
        await engine.close()
    assert again.result == "healthy" and [o.unchanged for o in again.files] == [True, True]
    assert not (home / "deploy/cai.env.bak").exists()


def test_cli_failed_container_exit_1_backup_kept_and_no_secret_shown(
    lab: Any, home: Path, compose_plugin: Path, image: str, projects: list[str], tmp_path: Path
) -> None:
    stack = stack_file(tmp_path / unique("caistack"), image, cachefs_fails=True)
    project = unique("caitest")
    projects.append(project)
    instance = tmp_path / "instance"
    instance.mkdir()
    env_file = instance / "cai.env"
    env_file.write_text("TRUSTEE_URL=old\n")
    env_file.chmod(0o640)
    recipe = deploy_recipe(
        lab, tmp_path / "recipe", deploy_with="docker", cai_compose_file=str(stack), env_file=str(env_file)
    )
    run = run_cli_timed(
        *("deploy", "--recipe", str(recipe), "--target", "instance=local", "--yes", "--json"),
        *("--project", project, "--timeout", "60"),
        env={"HOME": str(home)},
    )
    assert run.rc == 1, run.stderr
    assert PLANTED not in run.stdout and PLANTED not in run.stderr
    doc = json.loads(run.stdout)
    assert doc["schema"] == "cai-tui/deploy/v1" and doc["result"] == "failed" and doc["exit_code"] == 1
    containers = {c["service"]: c for c in doc["containers"]}
    assert containers["oss"]["verdict"] == "healthy"
    cachefs = containers["cachefs"]
    assert cachefs["name"] == f"{project}-cachefs-1" and cachefs["state"] == "exited"
    assert cachefs["exit_code"] == 1 and cachefs["verdict"] == "failed"
    assert "cachefs: cannot decrypt with key ***" in cachefs["logs"]  # its log held the secret: redacted
    assert doc["commands"][0]["argv"][:4] == ["docker", "compose", "-p", project] and doc["commands"][0]["rc"] != 0
    assert f"cai-tui troubleshoot --recipe {recipe}" in doc["next"][0]
    assert "cachefs exited (1)" in doc["message"]
    # the human report went to stderr (stdout is the JSON), compose's lines prefixed with the target
    assert "[local] " in run.stderr and f"cai-tui troubleshoot --recipe {recipe}" in run.stderr
    assert f"✗ {project}-cachefs-1" in run.stderr
    # the user's file was kept, with its mode; the new one is 0600 and holds the resolved secret
    files = {f["kind"]: f for f in doc["files"]}
    assert files["cai-env"]["backup"] == f"{env_file}.bak" and files["cai-env"]["backup_mode"] == "0640"
    backup = instance / "cai.env.bak"
    assert backup.read_text() == "TRUSTEE_URL=old\n" and mode(backup) == 0o640
    assert mode(env_file) == 0o600 and PLANTED in env_file.read_text()
    assert mode(instance / "vllm-run.sh") == 0o755


def test_cli_dry_run_and_refusals_write_nothing(
    lab: Any, home: Path, compose_plugin: Path, image: str, tmp_path: Path
) -> None:
    recipe = deploy_recipe(
        lab,
        tmp_path / "recipe",
        deploy_with="compose",
        env_file="~/inst/cai.env",
        compose_file="~/inst/docker-compose.yml",
    )
    env = {"HOME": str(home)}
    base = ("deploy", "--recipe", str(recipe))

    dry = run_cli_timed(*base, "--target", "instance=local", "--dry-run", "--json", env=env)
    assert dry.rc == 0, dry.stderr
    doc = json.loads(dry.stdout)
    assert doc["result"] == "planned" and doc["dry_run"] is True
    assert [(f["kind"], f["path"], f["mode"], f["written"]) for f in doc["files"]] == [
        ("cai-env", f"{home}/inst/cai.env", "0600", False),
        ("compose", f"{home}/inst/docker-compose.yml", "0644", False),
    ]
    assert any(s.startswith("MODEL_OSS_SECRET_ACCESS_KEY ← file:") for s in doc["files"][0]["secrets"])
    assert [c["argv"] for c in doc["commands"]] == [
        ["docker", "compose", "-f", f"{home}/inst/docker-compose.yml", "up", "-d", "--wait"]
    ]
    assert doc["commands"][0]["rc"] is None and doc["containers"] == []
    assert "0600" in dry.stderr and "dry run: nothing written" in dry.stderr  # the plan, for a person

    no_tty = run_cli_timed(*base, "--target", "instance=local", env=env)
    assert no_tty.rc == 2 and "--yes" in no_tty.stderr and "not a terminal" in no_tty.stderr

    for spec, words in (
        ("client=local", "unknown role 'client'"),
        ("instance=docker://cai-docker-oss-1", "give local or ssh://"),
        ("instance=ssh://", "not an SSH target"),
    ):
        bad = run_cli_timed(*base, "--target", spec, "--yes", env=env)
        assert bad.rc == 2 and words in bad.stderr, (spec, bad.stderr)
        assert "Traceback" not in bad.stderr
    no_target = run_cli_timed(*base, "--yes", env=env)  # the lab recipe names no instance
    assert no_target.rc == 2 and "targets.instance" in no_target.stderr
    kata = run_cli_timed(
        "deploy",
        "--recipe",
        str(REPO / "recipes/kata-virtcca-qwen1.5-1.8b.yaml"),
        "--yes",
        "--target",
        "local",
        env=env,
    )
    assert kata.rc == 2 and "cai flow" in kata.stderr
    assert run_cli_timed("deploy", "--recipe", str(tmp_path / "nope.yaml"), env=env).rc == 2

    # Compose missing (a HOME without the plugin: docker 20.10 says "unknown command"): exit 3, the FAQ id, no write
    bare = tmp_path / "bare-home"
    bare.mkdir()
    missing = run_cli_timed(*base, "--target", "instance=local", "--yes", "--json", env={"HOME": str(bare)})
    assert missing.rc == 3, missing.stderr
    doc = json.loads(missing.stdout)
    assert doc["result"] == "unreachable" and doc["faq_id"] == "compose-too-old"
    assert "--compose-cmd docker-compose" in doc["message"] and "compose-too-old" in missing.stderr
    assert not (bare / "inst").exists()

    # a secret that cannot be read: exit 2 naming the field, nothing written
    (tmp_path / "recipe" / "oss-secret").unlink()
    no_secret = run_cli_timed(*base, "--target", "instance=local", "--yes", env=env)
    assert no_secret.rc == 2 and "oss.access_key_secret" in no_secret.stderr, no_secret.stderr
    assert not (home / "inst").exists()
    for run in (dry, no_tty, missing, no_secret):
        assert PLANTED not in run.stdout + run.stderr


async def test_timeout_reports_the_waiting_container(
    lab: Any, home: Path, compose_plugin: Path, image: str, projects: list[str], tmp_path: Path
) -> None:
    stack = stack_file(tmp_path / unique("caistack"), image, oss_delay_s=60)
    project = unique("caitimeout")
    projects.append(project)
    recipe_path = deploy_recipe(
        lab,
        tmp_path / "recipe",
        deploy_with="docker",
        cai_compose_file=str(stack),
        env_file=str(tmp_path / "i/cai.env"),
    )
    rec = load_recipe(recipe_path).recipe
    assert isinstance(rec, CaiRecipe)
    target = LocalTarget()
    engine = engine_for(target)
    options = DeployOptions(timeout=4, project=project)
    try:
        report = await prepare(target, rec, options, engine)
        started = time.monotonic()
        report = await execute(target, rec, report, options, engine)
        took = time.monotonic() - started
    finally:
        await engine.close()
    assert report.result == "timed_out" and report.exit_code == 1, report.message
    assert report.commands[0].rc == 124 and took < 15
    verdicts = {c.service: (c.state, c.verdict) for c in report.containers}
    assert verdicts == {"oss": ("running, starting", "timed_out"), "cachefs": ("created (not started)", "timed_out")}, (
        verdicts
    )


def test_terminal_asks_and_a_no_writes_nothing(
    lab: Any, home: Path, compose_plugin: Path, image: str, tmp_path: Path
) -> None:
    import os
    import pty
    import select
    import subprocess
    import sys

    from tests.conftest import loopback_env

    recipe = deploy_recipe(lab, tmp_path / "recipe", deploy_with="docker", env_file=str(tmp_path / "i/cai.env"))
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cai_tui.cli.main", "deploy", "--recipe", str(recipe), "--target", "instance=local"],
        stdin=child,
        stdout=subprocess.PIPE,
        stderr=child,
        env={**loopback_env(), "HOME": str(home)},
    )
    os.close(child)
    seen = b""
    deadline = time.monotonic() + 30
    while b"Deploy to local?" not in seen:
        ready, _, _ = select.select([main], [], [], max(0.0, deadline - time.monotonic()))
        try:
            chunk = os.read(main, 4096) if ready else b""
        except OSError:  # EIO: the process closed the terminal without asking
            chunk = b""
        if not chunk:
            proc.kill()
            pytest.fail(f"no confirmation question on the terminal; it showed: {seen.decode(errors='replace')}")
        seen += chunk
    os.write(main, b"n\n")
    rc = proc.wait(timeout=30)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    os.close(main)
    assert rc == 2 and "commands:" in out and "0600" in out  # the plan was shown before the question
    assert not (tmp_path / "i").exists()
