"""The whole CAI flow from the wizard's screens alone, on a bare lab with its Docker instance — what a newcomer does on
``cai-tui --lab --bare``: open the flow, mistype a field and correct it, run every stage (r, a, y), meet a failing
container (a lab fault switched on from the UI), see the troubleshooting screen name the fix, clear the fault, run the
stage again, save the recipe; then ``cai-tui replay`` of the same recipe finds nothing left to do (the wizard did the
same work through the same engine).

Real components only: the lab's Trustee/OSS/KMS, the labstack CAI stack on the local Docker engine with Compose v2,
real gocryptfs, the child ``cai-tui`` commands the engine runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from form_testlib import editor, message, show_stage, type_in
from textual.widgets import DataTable

from cai_tui.lab.orchestrator import Lab
from cai_tui.tui import state as st
from cai_tui.tui.app import CaiTuiApp, make_app
from cai_tui.tui.screens.flow import FlowScreen
from cai_tui.tui.screens.lab_faults import LabFaultsScreen
from cai_tui.tui.screens.run_dialogs import ConfirmScreen
from cai_tui.tui.screens.run_stage import RunStageScreen
from cai_tui.tui.screens.troubleshoot import TroubleshootScreen
from tests.conftest import APPLIED_FROM_NOTHING, loopback_env

SIZE = (120, 40)
CLI = Path(sys.executable).parent / "cai-tui"
FAULT = "kbs-policy-deny"


async def run_stage(app: CaiTuiApp, pilot: Any, flow: FlowScreen, stage_id: str) -> RunStageScreen:
    """On the flow screen: highlight the stage, r, a, y; wait until the engine is done."""
    await show_stage(pilot, stage_id)
    assert flow.current_stage is not None and flow.current_stage.id == stage_id
    flow.stage_list.focus()
    await pilot.press("r")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, RunStageScreen) and screen.stage.id == stage_id
    await screen.workers.wait_for_complete()  # the plan's file diffs
    await pilot.pause()
    assert not screen.plan_error, screen.plan_error
    await pilot.press("a")
    await pilot.pause()
    assert isinstance(app.screen, ConfirmScreen)
    await pilot.press("y")
    await pilot.pause()
    for _ in range(3):  # the run's worker, then the result's own follow-ups
        await screen.workers.wait_for_complete()
        await pilot.pause(0.1)
    assert screen.report is not None, f"{stage_id}: no report ({screen.input_problems})"
    return screen


async def back_to(app: CaiTuiApp, pilot: Any, flow: FlowScreen) -> None:
    while app.screen is not flow:
        await pilot.press("escape")
        await pilot.pause()


async def flip_fault(app: CaiTuiApp, pilot: Any, flow: FlowScreen) -> None:
    """l on the stage screen, the fault's row, Enter (the switch flips on the running lab), back."""
    flow.stage_list.focus()
    await pilot.press("l")
    await pilot.pause()
    faults = app.screen
    assert isinstance(faults, LabFaultsScreen)
    faults.query_one(DataTable).move_cursor(row=faults.names.index(FAULT))
    await pilot.pause()
    await pilot.press("enter")
    await faults.workers.wait_for_complete()
    await pilot.pause()
    await back_to(app, pilot, flow)


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_a_newcomer_completes_the_cai_flow_from_the_screens_alone(bare_lab: Lab, tmp_path: Path) -> None:
    lab = bare_lab
    recipe = lab.recipe_path
    original = recipe.read_bytes()
    app = make_app(recipe_path=recipe, lab=lab, lab_info=lab.ready_info())
    applied: set[tuple[str, str]] = set()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()  # the start screen reads the stage specs after its first paint
        await pilot.press("enter")  # the highlighted flow is the recipe's: cai
        await pilot.pause()
        flow = app.screen
        assert isinstance(flow, FlowScreen) and flow.flow == "cai"
        stages = [s.id for s in flow.stages]
        assert len(stages) == 14 and app.state.draft is not None

        # invalid input: refused under the field, the draft unchanged; corrected: applied
        await show_stage(pilot, "cai-env")
        port = editor(app.screen, "service.port")
        before = app.state.draft.get("service.port").text
        await type_in(pilot, port, "70000", then="enter")
        assert message(port) and app.state.draft.get("service.port").text == before
        await type_in(pilot, port, str(before), then="enter")
        assert message(port) == "" and app.state.draft.get("service.port").text == before

        # every stage up to the stack, in order, from the screens
        for stage_id in stages[: stages.index("cai-stack")]:
            screen = await run_stage(app, pilot, flow, stage_id)
            report = screen.report
            assert report is not None and report.status == "ok", f"{stage_id}: {report and report.message}"
            assert app.state.stage_status(stage_id) in (st.PASSED, st.WAIVED), stage_id
            applied |= {(r.item.stage, r.item.name) for r in report.results if r.status == "applied"}
            await back_to(app, pilot, flow)

        # a fault switched on from the UI: the stack fails, the troubleshooting screen names the fix
        await flip_fault(app, pilot, flow)
        assert lab.faults.is_on(FAULT)

        screen = await run_stage(app, pilot, flow, "cai-stack")
        report = screen.report
        assert report is not None and report.status == "failed"
        failed = next(r for r in report.results if r.status == "failed")
        assert failed.item.name == "cai.start_stack" and failed.faq_id == FAULT, (failed.faq_id, failed.detail)
        assert app.state.stage_status("cai-stack") == st.FAILED
        await pilot.press("t")
        await pilot.pause()
        trouble = app.screen
        assert isinstance(trouble, TroubleshootScreen)
        for _ in range(3):
            await trouble.workers.wait_for_complete()
            await pilot.pause(0.1)
        assert trouble.reading is not None, trouble.problem and trouble.problem.text("en")
        failing = [c for c in trouble.reading.report.containers if c.condition == "failing"]
        assert failing and trouble.selected == failing[0].container
        top = trouble.reading.report.top(failing[0].service)
        assert top is not None and top.faq_id == FAULT and top.evidence.line
        await back_to(app, pilot, flow)

        # the fix: the fault cleared from the UI, the stage run again, then the rest of the flow
        await flip_fault(app, pilot, flow)
        assert not lab.faults.is_on(FAULT)
        for stage_id in stages[stages.index("cai-stack") :]:
            screen = await run_stage(app, pilot, flow, stage_id)
            report = screen.report
            assert report is not None and report.status == "ok", f"{stage_id}: {report and report.message}"
            applied |= {(r.item.stage, r.item.name) for r in report.results if r.status == "applied"}
            await back_to(app, pilot, flow)
        assert {app.state.stage_status(s) for s in stages} <= {st.PASSED, st.WAIVED}

        # save: nothing was changed for good, so the file is byte-identical; reloaded and saved again, still
        flow.stage_list.focus()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert recipe.read_bytes() == original
        assert app.state.open_recipe(recipe) == []
        app.state.save()
        assert recipe.read_bytes() == original

    # the same work as replay: what the wizard applied is what a replay from nothing applies …
    assert applied >= APPLIED_FROM_NOTHING, applied
    # … and a headless replay of the same recipe now has nothing left to do
    out = tmp_path / "after.json"
    r = subprocess.run(
        [str(CLI), "replay", str(recipe), "--yes", "--json", str(out)],
        capture_output=True,
        text=True,
        env=loopback_env(),
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    doc = json.loads(out.read_text())
    assert r.returncode == 0, (doc["message"], r.stderr[-2000:])
    assert doc["changes"] == 0 and {i["status"] for i in doc["items"]} <= {"skipped", "waived"}
