"""``cai-tui troubleshoot`` against real failing containers on the local Docker engine.

One project holds: cachefs (gocryptfs refuses the password, exit 12), confidential-data-hub (crash loop with a
restart policy: Trustee unreachable), tng (running, its healthcheck fails: Attestation Agent unreachable), oss
(healthy), attestation-agent (exits with output no FAQ entry knows) and inference (created, never started: it
depends on cachefs being healthy).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cai_tui.cli.main import main
from tests.targets.docker_lab import ensure_engine, ensure_image
from tests.troubleshoot import stack


@dataclass
class Stack:
    project: str
    image: str


@pytest.fixture(scope="module")
def failing_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ensure_engine()
    image = ensure_image(tmp_path_factory.mktemp("image"))
    p = stack.new_project()
    try:
        stack.run(
            p, "oss", image, "echo 'oss mounted'; sleep 3600", ["--health-cmd", "true", "--health-interval", "1s"]
        )
        stack.run(p, "cachefs", image, stack.CACHEFS)
        stack.run(p, "confidential-data-hub", image, stack.CDH, ["--restart", "on-failure"])
        stack.run(
            p,
            "tng",
            image,
            "echo 'tng: starting'; sleep 3600",
            ["--health-cmd", stack.TNG_HEALTH, "--health-interval", "1s", "--health-retries", "1"],
        )
        stack.run(p, "attestation-agent", image, stack.UNKNOWN)
        stack.create(p, "inference", image, "cachefs:service_healthy:true")
        stack.wait_for(f"{p}-oss-1", lambda a: a["State"].get("Health", {}).get("Status") == "healthy", "healthy")
        stack.wait_for(f"{p}-tng-1", lambda a: a["State"].get("Health", {}).get("Status") == "unhealthy", "unhealthy")
        stack.wait_for(f"{p}-confidential-data-hub-1", lambda a: a["RestartCount"] >= 3, "restarted 3 times")
        stack.wait_for(f"{p}-cachefs-1", lambda a: a["State"]["Status"] == "exited", "exited")
        stack.wait_for(f"{p}-attestation-agent-1", lambda a: a["State"]["Status"] == "exited", "exited")
        yield Stack(p, image)
    finally:
        stack.remove_project(p)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["troubleshoot", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def as_doc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    rc, out, err = cli(capsys, "--json", *args)
    assert rc in (0, 1), err
    return rc, json.loads(out)


def by_service(doc: dict, service: str) -> list[dict]:
    return sorted((f for f in doc["findings"] if f["service"] == service), key=lambda f: f["rank"])


def test_json_document_ranks_each_failing_container(failing_stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    p = failing_stack.project
    rc, doc = as_doc(capsys, "--project", p)
    assert rc == 1
    assert doc["schema"] == "cai-tui/troubleshoot/v1"
    assert doc["project"] == p and "local Docker engine" in doc["engine"]
    cont = {c["service"]: c for c in doc["containers"]}
    assert set(cont) == {"oss", "cachefs", "confidential-data-hub", "tng", "attestation-agent", "inference"}
    for c in cont.values():
        assert {"service", "container", "state", "health", "exit_code", "restart_count"} <= set(c)
    assert cont["oss"]["condition"] == "ok" and cont["oss"]["health"] == "healthy"
    assert cont["cachefs"] == {**cont["cachefs"], "state": "exited", "exit_code": 12, "condition": "failing"}
    assert cont["tng"]["state"] == "running" and cont["tng"]["health"] == "unhealthy"
    assert cont["confidential-data-hub"]["restart_count"] >= 3
    # inference never started: it waits on cachefs and has no finding of its own
    assert cont["inference"]["condition"] == "waiting" and cont["inference"]["waiting_on"] == ["cachefs"]
    assert by_service(doc, "inference") == [] and by_service(doc, "oss") == []

    for f in doc["findings"]:
        assert {"service", "container", "state", "faq_id", "cause", "fix", "evidence", "confidence", "rank"} <= set(f)
        assert set(f["evidence"]) == {"line", "source", "time"}
    for svc in ("cachefs", "confidential-data-hub", "tng", "attestation-agent"):
        assert [f["rank"] for f in by_service(doc, svc)] == list(range(1, len(by_service(doc, svc)) + 1)), svc

    top = by_service(doc, "cachefs")[0]
    assert (top["faq_id"], top["confidence"]) == ("model-password-wrong", "high")
    assert top["evidence"]["line"] == "Password incorrect."
    assert top["evidence"]["source"] == f"docker logs {p}-cachefs-1"
    assert stack.DOCKER_TIME_RE.match(top["evidence"]["time"]), top["evidence"]
    assert "gocryptfs" in top["cause"] and "KMS" in top["fix"]
    assert any(f["faq_id"] == "cai-cachefs-failed" for f in by_service(doc, "cachefs")[1:])

    cdh = by_service(doc, "confidential-data-hub")[0]
    assert cdh["faq_id"] == "trustee-unreachable", cdh
    assert "RCAR handshake failed" in cdh["evidence"]["line"] and stack.DOCKER_TIME_RE.match(cdh["evidence"]["time"])

    tng = by_service(doc, "tng")[0]
    assert tng["faq_id"] == "tng-aa-unreachable", tng
    assert tng["evidence"]["source"] == "health log" and "Attestation Agent ttrpc" in tng["evidence"]["line"]
    assert tng["evidence"]["time"]  # the probe's start time

    unknown = by_service(doc, "attestation-agent")[0]
    assert (unknown["faq_id"], unknown["confidence"]) == ("unknown", "low")
    assert unknown["evidence"]["line"] == "fatal: widget exploded (code 7)"
    assert "frobnicating the quux" in [ln["line"] for ln in unknown["lines"]]
    assert doc["confirm"].startswith("skipped: no --recipe")


def test_human_report(failing_stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    p = failing_stack.project
    rc, out, _ = cli(capsys, "--project", p)
    assert rc == 1
    assert f"project {p}" in out
    assert "[model-password-wrong]" in out and "evidence: Password incorrect." in out
    assert f"docker logs {p}-cachefs-1 @ 20" in out
    assert "fix: Store the exact encryption password" in out
    assert "also possible:" in out and "[cai-cachefs-failed]" in out
    assert "waiting on cachefs" in out
    assert "most telling lines:" in out and "fatal: widget exploded (code 7)" in out
    assert "related doctor checks not run: no --recipe" in out
    assert "4 failing container(s); 1 waiting on a dependency" in out


def test_chinese(failing_stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    _, doc = as_doc(capsys, "--project", failing_stack.project, "--lang", "zh", "--service", "cachefs")
    top = by_service(doc, "cachefs")[0]
    assert "gocryptfs拒绝了该密码" in top["cause"] and "KMS" in top["fix"]
    assert top["evidence"]["line"] == "Password incorrect."


def test_service_selection_and_exit_codes(failing_stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    p = failing_stack.project
    rc, doc = as_doc(capsys, "--project", p, "--service", "oss")
    assert rc == 0 and doc["findings"] == [] and [c["service"] for c in doc["containers"]] == ["oss"]
    rc, out, _ = cli(capsys, "--project", p, "--service", "oss")
    assert rc == 0 and "no failing container" in out
    rc, doc = as_doc(capsys, "--project", p, "--service", "tng", "--service", "cachefs")
    assert rc == 1 and {f["service"] for f in doc["findings"]} == {"tng", "cachefs"}
    rc, out, err = cli(capsys, "--project", p, "--service", "ossfs")
    assert rc == 2 and out == ""
    assert "--service ossfs" in err and "attestation-agent, cachefs" in err and "Traceback" not in err


def test_unknown_project_names_the_projects_found(failing_stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capsys, "--project", "no-such-project-here")
    assert rc == 2 and out == ""
    assert "--project no-such-project-here" in err and failing_stack.project in err
    assert len(err.strip().splitlines()) == 1


def test_tail_limits_the_lines_read(failing_stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    # the unknown container printed two lines; with --tail 1 only the last one is read
    _, doc = as_doc(capsys, "--project", failing_stack.project, "--service", "attestation-agent", "--tail", "1")
    lines = [ln["line"] for ln in by_service(doc, "attestation-agent")[0]["lines"]]
    assert "fatal: widget exploded (code 7)" in lines and "frobnicating the quux" not in lines


def test_engine_unreachable_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker-here.sock")
    rc, out, err = cli(capsys, "--timeout", "2")
    assert rc == 3 and out == ""
    assert "cannot ask the local Docker engine" in err and "Traceback" not in err


def test_input_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nflow: cai\nanswers: [\n")
    rc, out, err = cli(capsys, "--recipe", str(bad))
    assert rc == 2 and out == "" and str(bad) in err
    for args, needle in (
        (["--lang", "fr"], "--lang fr"),
        (["--tail", "0"], "--tail 0"),
        (["--timeout", "0"], "--timeout"),
        (["--target", "moon=ssh://x@y"], "unknown role 'moon'"),
        (["--target", "instance=sysroot:" + str(tmp_path / "absent")], "not a directory"),
        (["--target", f"instance=sysroot:{tmp_path}"], "no Docker engine to ask"),
    ):
        rc, out, err = cli(capsys, *args)
        assert rc == 2, (args, err)
        assert needle in err and "Traceback" not in err, (args, err)


async def test_function_api(failing_stack: Stack) -> None:
    """What the lab stack's fault matrix uses: no CLI, a report object with the ranking and the JSON."""
    from cai_tui.troubleshoot import TroubleshootOptions, troubleshoot

    report = await troubleshoot(TroubleshootOptions(project=failing_stack.project, services=["cachefs", "inference"]))
    top = report.top("cachefs")
    assert top is not None and top.faq_id == "model-password-wrong" and top.rank == 1
    assert report.top(f"{failing_stack.project}-cachefs-1") == top
    assert report.exit_code == 1 and [c.service for c in report.failing] == ["cachefs"]
    assert json.loads(report.to_json())["findings"][0]["faq_id"] == "model-password-wrong"


def test_engine_start_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The engine cannot start cachefs (its FUSE device is missing): created, never started, State.Error says why."""
    ensure_engine()
    image = ensure_image(tmp_path)
    p = stack.new_project()
    try:
        r = stack.docker(
            "run", "-d", "--name", f"{p}-cachefs-1", *stack.labels(p, "cachefs"), "--device", "/dev/fuse-cai-missing",
            image, "sleep", "3600", check=False,
        )  # fmt: skip
        assert r.returncode != 0 and "/dev/fuse-cai-missing" in r.stderr
        stack.create(p, "inference", image, "cachefs:service_healthy:true")
        rc, doc = as_doc(capsys, "--project", p)
        assert rc == 1
        cont = {c["service"]: c for c in doc["containers"]}
        assert cont["cachefs"]["condition"] == "failing" and "/dev/fuse-cai-missing" in cont["cachefs"]["error"]
        assert cont["inference"]["waiting_on"] == ["cachefs"]
        top = by_service(doc, "cachefs")[0]
        assert top["faq_id"] == "fuse-unavailable" and top["evidence"]["source"].endswith("(State.Error)")
    finally:
        stack.remove_project(p)


def test_oom_killed_container(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """inference outgrows its memory limit: the kernel kills it (exit 137) and only docker inspect says so."""
    ensure_engine()
    image = ensure_image(tmp_path)
    p = stack.new_project()
    try:
        name = stack.run(
            p, "inference", image,
            "echo 'INFO Loading weights took 2.1 seconds'; x=$(head -c 80000000 /dev/zero | base64); echo done",
            ["--memory", "16m", "--memory-swap", "16m"],
        )  # fmt: skip
        attrs = stack.wait_for(name, lambda a: a["State"]["Status"] == "exited", "exited")
        assert attrs["State"]["OOMKilled"] is True and attrs["State"]["ExitCode"] == 137, attrs["State"]
        rc, doc = as_doc(capsys, "--project", p)
        assert rc == 1
        (cont,) = doc["containers"]
        assert cont["oom_killed"] is True and cont["exit_code"] == 137
        top = by_service(doc, "inference")[0]
        assert (top["faq_id"], top["confidence"]) == ("container-oom-killed", "high")
        assert top["evidence"]["line"] == "State.OOMKilled=true, exit code 137"
        assert top["evidence"]["source"] == f"docker inspect {name} (State.OOMKilled)"
        rc, out, _ = cli(capsys, "--project", p)
        assert "[container-oom-killed]" in out and "State.OOMKilled=true" in out
    finally:
        stack.remove_project(p)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Any]:
    import os

    from tests.targets.sshd_lab import make_sshd

    if os.geteuid() != 0:
        pytest.fail("the SSH troubleshoot test logs in as this user and needs its docker access: run it as root")
    server = make_sshd(tmp_path / "sshd")
    server.start()
    yield server
    server.stop()


def test_over_ssh_reads_the_same_stack_through_the_docker_cli(
    failing_stack: Stack, sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ssh:// instance: the docker CLI runs through our SSH target (host key checked against the known_hosts we
    name, which the docker SDK's ssh transport would ignore); the findings equal those read from the local socket."""
    import asyncio

    from cai_tui.targets.ssh import SshTarget
    from cai_tui.troubleshoot import TroubleshootOptions, troubleshoot

    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    uri = f"ssh://{sshd.user}@127.0.0.1:{sshd.port}"

    async def over_ssh() -> Any:
        target = SshTarget(
            uri, known_hosts=known, identity_file=sshd.client_key, use_agent=False, look_for_keys=False, ssh_config=None
        )
        try:
            return await troubleshoot(
                TroubleshootOptions(targets={"instance": target}, project=failing_stack.project, confirm=False)
            )
        finally:
            await target.close()

    remote = asyncio.run(over_ssh())
    _, local = as_doc(capsys, "--project", failing_stack.project)
    doc = json.loads(remote.to_json())
    assert "over SSH" in doc["engine"] and uri.split("@")[0] in doc["engine"]

    # Between the two reads the healthcheck probes again (a health-log line's time moves) and the crash-looping CDH
    # may restart (its newest log line is newer, its state "running" or "restarting"); the rest must be equal.
    def key(f: dict) -> tuple:
        ev, looping = f["evidence"], f["service"] == "confidential-data-hub"
        line = "state: (crash loop)" if looping and ev["line"].startswith("state: ") else ev["line"]
        steady = ev["source"].startswith("docker logs") and not looping
        return (f["service"], f["rank"], f["faq_id"], line, ev["time"] if steady else None)

    assert sorted(map(key, doc["findings"])) == sorted(map(key, local["findings"]))
    assert {c["container"]: c["condition"] for c in doc["containers"]} == {
        c["container"]: c["condition"] for c in local["containers"]
    }

    async def unknown_host() -> Any:
        target = SshTarget(
            uri,
            known_hosts=tmp_path / "empty",
            identity_file=sshd.client_key,
            use_agent=False,
            look_for_keys=False,
            ssh_config=None,
        )
        try:
            return await troubleshoot(TroubleshootOptions(targets={"instance": target}, confirm=False))
        finally:
            await target.close()

    from cai_tui.troubleshoot import EngineError

    (tmp_path / "empty").write_text("")
    with pytest.raises(EngineError, match="host key"):
        asyncio.run(unknown_host())
