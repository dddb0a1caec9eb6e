"""The checks screen against a real lab (loopback Trustee/OSS/KMS, no instance): a stage's checks run on open through
the engine session, a lab fault turns one to fail with its fix and FAQ entry, clearing it and rerunning turns it to
pass; a waiver needs a reason and lands in the recipe file with its comments; the doctor lists every check of the flow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.message import Message
from textual.notifications import Notify
from textual.widgets import Input
from tui_testlib import texts

from cai_tui.checks.registry import all_checks
from cai_tui.recipe import Draft, LoadedRecipe, load_recipe, loads_recipe
from cai_tui.tui.app import make_app
from cai_tui.tui.check_rows import NOT_RUN
from cai_tui.tui.screens.checks import ChecksScreen
from cai_tui.tui.screens.faq_entry import FaqEntryScreen
from cai_tui.tui.screens.flow import FlowScreen
from cai_tui.tui.screens.waiver import WaiverScreen

SMALL = (80, 24)
STAGE = "trustee-deploy"
NONCE = "trustee.auth_nonce"
FAULT = "kbs-version-mismatch"  # the Trustee demands another KBS protocol version: the handshake check fails


class Notes:
    """Every notification the app posts (run_test's message hook)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: Message) -> None:
        if isinstance(message, Notify):
            self.messages.append(message.notification.message)

    def saying(self, words: str) -> list[str]:
        return [m for m in self.messages if words in m]


async def open_checks(pilot: Any, stage_id: str | None) -> ChecksScreen:
    app = pilot.app
    stage = app.state.flows["cai"].stage(stage_id) if stage_id is not None else None
    screen = ChecksScreen(stage)
    await app.push_screen(screen)
    await settle(pilot)
    return screen


async def settle(pilot: Any) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def draft_of(app: Any) -> Draft:
    draft = app.state.draft
    assert draft is not None
    return draft


def loaded_of(app: Any) -> LoadedRecipe:
    loaded = app.state.loaded
    assert loaded is not None
    return loaded


def checks_screen(app: Any) -> ChecksScreen:
    screen = app.screen
    assert isinstance(screen, ChecksScreen)
    return screen


def cell(screen: ChecksScreen, check_id: str, column: str) -> str:
    return str(screen.table.get_cell(check_id, column))


async def test_a_fault_fails_the_check_with_its_fix_and_clearing_it_passes_on_rerun(lab: Any) -> None:
    lab.faults.set(FAULT, True)
    notes = Notes()
    app = make_app(recipe_path=lab.recipe_path, lab=lab)
    async with app.run_test(size=SMALL, message_hook=notes) as pilot:
        await pilot.pause()
        # from the stage's place in the flow, key c
        stage = app.state.flows["cai"].stage(STAGE)
        flow_screen = FlowScreen("cai")
        await app.push_screen(flow_screen)
        await pilot.pause()
        flow_screen.stage_list.highlighted = stage.order - 1
        await pilot.press("c")
        await settle(pilot)
        screen = checks_screen(app)
        assert screen.stage is stage
        # the stage's checks: its steps' verify lists (every step applies to the lab recipe)
        assert list(screen.rows) == stage.checks
        row = screen.rows[NONCE]
        assert row.state == "fail"
        assert row.result is not None and row.result.fix is not None
        assert row.result.fix.faq_id == "kbs-protocol-mismatch"
        assert "version mismatch" in row.result.summary
        assert "fail" in cell(screen, NONCE, "status") and "version mismatch" in cell(screen, NONCE, "summary")
        assert screen.rows["trustee.url"].state == "pass"
        assert app.state.stage_status(STAGE) == "failed" and screen.last_verdict == "failed"

        screen.select(NONCE)
        await pilot.pause()
        detail = texts(screen.detail)
        assert "FAQ kbs-protocol-mismatch" in detail
        assert row.result.fix.text in detail
        assert any(e.observed in detail for e in row.result.evidence)

        # f: the FAQ entry, following the language
        await pilot.press("f")
        await pilot.pause()
        faq = app.screen
        assert isinstance(faq, FaqEntryScreen) and faq.entry.id == "kbs-protocol-mismatch"
        assert faq.entry.title.en in texts(faq)
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert faq.entry.title.zh in texts(faq)
        await pilot.press("ctrl+l", "escape")
        await pilot.pause()
        assert app.screen is screen

        # the fault cleared, r reruns the selected check only
        lab.faults.set(FAULT, False)
        before = screen.rows["trustee.gateway_health"].result
        await pilot.press("r")
        await settle(pilot)
        assert screen.rows[NONCE].state == "pass", screen.rows[NONCE].result
        assert "pass" in cell(screen, NONCE, "status")
        assert screen.rows["trustee.gateway_health"].result is before  # not rerun
        # a: every check again; the stage passes (a skip is allowed)
        await pilot.press("a")
        await settle(pilot)
        states = {cid: r.state for cid, r in screen.rows.items()}
        assert set(states.values()) <= {"pass", "warn", "skip"}, states
        assert app.state.stage_status(STAGE) == "passed"
        assert not notes.saying("did not run")


async def test_a_waiver_needs_a_reason_and_is_saved_in_the_recipe_with_its_comments(lab: Any) -> None:
    lab.faults.set(FAULT, True)
    path = Path(lab.recipe_path)
    original = path.read_text("utf-8")
    comments = [line.strip() for line in original.splitlines() if line.strip().startswith("#")]
    assert comments and "\nwaivers:" not in original
    notes = Notes()
    app = make_app(recipe_path=path, lab=lab)
    async with app.run_test(size=SMALL, message_hook=notes) as pilot:
        await pilot.pause()
        screen = await open_checks(pilot, STAGE)
        assert screen.rows[NONCE].state == "fail"

        # a passing check is not waived
        screen.select("trustee.url")
        await pilot.press("w")
        await pilot.pause()
        assert app.screen is screen
        assert notes.saying("only a failing check can be waived")

        screen.select(NONCE)
        await pilot.press("w")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, WaiverScreen) and modal.check_id == NONCE
        assert modal.query_one("#waiver-scope", Input).value == NONCE
        # no reason: refused with a message, nothing written
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is modal
        assert "needs a reason" in modal.error
        assert path.read_text("utf-8") == original
        # a scope that does not cover the check: refused by the core, the modal stays
        modal.query_one("#waiver-scope", Input).value = "oss.*"
        modal.query_one("#waiver-reason", Input).value = "the lab Trustee is newer than the document"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is modal and "does not cover" in modal.error
        assert path.read_text("utf-8") == original

        modal.query_one("#waiver-scope", Input).value = NONCE
        modal.query_one("#waiver-reason", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        row = screen.rows[NONCE]
        assert row.shown == "waived" and row.waiver == "the lab Trustee is newer than the document"
        assert cell(screen, NONCE, "summary") == "waived: the lab Trustee is newer than the document"
        assert "waived" in cell(screen, NONCE, "status")
        assert notes.saying(f"saved to {path}")

        # the file: the waiver is there, every comment kept, the previous file as .bak
        reloaded = load_recipe(path)
        assert [(w.check, w.reason) for w in reloaded.recipe.waivers] == [
            (NONCE, "the lab Trustee is newer than the document")
        ]
        saved = path.read_text("utf-8")
        assert all(c in saved for c in comments)
        assert saved.startswith(original.rstrip("\n"))  # only added: the rest is byte-identical
        assert path.with_name(path.name + ".bak").read_text("utf-8") == original
        assert not draft_of(app).dirty

        # the gateway check fails too under this fault, so the stage is still failed; a glob waives it as well,
        # while the draft holds another change the user has not saved: only the waiver goes into the file
        assert app.state.stage_status(STAGE) == "failed"
        assert draft_of(app).set("trustee.helm.namespace", "not-saved-yet") is None
        screen.select("trustee.gateway_health")
        await pilot.press("w")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, WaiverScreen)
        modal.query_one("#waiver-scope", Input).value = "trustee.gateway_*"
        modal.query_one("#waiver-reason", Input).value = "the gateway's backend check follows the same fault"
        await pilot.press("enter")
        await pilot.pause()
        assert screen.rows["trustee.gateway_health"].shown == "waived"
        assert app.state.stage_status(STAGE) == "waived" and screen.last_verdict == "waived"
        on_disk = load_recipe(path)
        assert [w.check for w in on_disk.recipe.waivers] == [NONCE, "trustee.gateway_*"]
        assert draft_of(app).get("trustee.helm.namespace").text == "not-saved-yet"
        assert Draft(on_disk).get("trustee.helm.namespace").text != "not-saved-yet"
        assert all(c in path.read_text("utf-8") for c in comments)
        assert notes.saying("your other changes are not saved yet")
        assert draft_of(app).dirty and draft_of(app).get("trustee.helm.namespace").text == "not-saved-yet"
        assert [w.check for w in loaded_of(app).recipe.waivers] == [NONCE, "trustee.gateway_*"]

        # a rerun keeps the waiver: the failure is still there, still waived
        screen.select(NONCE)
        await pilot.press("r")
        await settle(pilot)
        assert screen.rows[NONCE].state == "fail" and screen.rows[NONCE].shown == "waived"


async def test_the_doctor_lists_and_runs_every_check_of_the_flow(lab: Any) -> None:
    app = make_app(recipe_path=lab.recipe_path, lab=lab)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        screen = await open_checks(pilot, None)
        expected = {s.id for s in all_checks().values() if "cai" in s.flows}
        assert set(screen.rows) == expected and len(screen.rows) == len(expected)
        assert screen.table.row_count == len(expected)
        assert all(r.finished for r in screen.rows.values())
        # the stages come in flow order: the model source's checks before the Trustee's
        ids = list(screen.rows)
        assert ids.index("model.local_dir") < ids.index(NONCE)
        assert screen.rows[NONCE].state == "pass"
        assert app.state.status == {}  # the doctor judges no stage
        # both languages
        assert str(screen.table.columns["status"].label) == "Status"  # type: ignore[index]
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert str(screen.table.columns["status"].label) == "状态"  # type: ignore[index]
        assert "通过" in cell(screen, NONCE, "status")


async def test_a_waiver_for_a_recipe_without_a_file_waits_for_ctrl_s(lab: Any) -> None:
    lab.faults.set(FAULT, True)
    notes = Notes()
    app = make_app(lab=lab)
    # the lab's recipe as a new, never saved one (what choosing a flow on the start screen gives)
    app.state.loaded = loads_recipe(Path(lab.recipe_path).read_text("utf-8"), name="<new cai recipe>")
    async with app.run_test(size=SMALL, message_hook=notes) as pilot:
        await pilot.pause()
        screen = await open_checks(pilot, STAGE)
        assert screen.rows[NONCE].state == "fail"
        screen.select(NONCE)
        await pilot.press("w")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, WaiverScreen)
        modal.query_one("#waiver-reason", Input).value = "trying the wizard on the lab"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen and screen.rows[NONCE].shown == "waived"
        assert notes.saying("it will be saved with Ctrl+S")
        assert app.state.recipe_path is None and draft_of(app).dirty
        assert [w.check for w in loaded_of(app).recipe.waivers] == [NONCE]
        assert "\nwaivers:" not in Path(lab.recipe_path).read_text("utf-8")


async def test_without_a_recipe_the_checks_are_listed_and_not_run(flows: Any) -> None:
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert app.state.loaded is None
        screen = await open_checks(pilot, STAGE)
        assert screen.stage is not None and screen.stage.id == STAGE
        assert list(screen.rows) == flows["cai"].stage(STAGE).checks
        assert {r.state for r in screen.rows.values()} == {NOT_RUN}
        assert screen.problem == "no_recipe"
        assert "No recipe is open" in texts(screen)
        await pilot.press("a", "r", "w")
        await pilot.pause()
        assert {r.state for r in screen.rows.values()} == {NOT_RUN} and app.screen is screen
        assert app.state.status == {}
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ChecksScreen)

        # the doctor without a recipe: nothing to list, and it says why
        doctor = await open_checks(pilot, None)
        assert doctor.rows == {} and doctor.problem == "no_recipe"
        assert doctor.table.row_count == 0
        assert "No recipe is open" in texts(doctor)


def test_the_stage_verdict_follows_the_rows() -> None:
    from cai_tui.checks.base import Result
    from cai_tui.recipe.model import Waiver
    from cai_tui.tui.check_rows import CheckRow, stage_verdict

    def row(cid: str, status: str | None, *, required: bool = True, waivers: list[Waiver] | None = None) -> CheckRow:
        r = CheckRow(cid, cid, required=required)
        if status is not None:
            r.set_result(Result(status, status), waivers or [])  # type: ignore[arg-type]
        return r

    waived = [Waiver(check="b.*", reason="not here")]
    assert stage_verdict([row("a.x", "pass"), row("b.y", "skip"), row("c.z", "warn")]) == "passed"
    assert stage_verdict([row("a.x", "pass"), row("b.y", "fail")]) == "failed"
    assert stage_verdict([row("a.x", "pass"), row("b.y", "unknown")]) == "failed"
    assert stage_verdict([row("a.x", "pass"), row("b.y", "fail", waivers=waived)]) == "waived"
    assert stage_verdict([row("a.x", "fail"), row("b.y", "fail", waivers=waived)]) == "failed"
    assert stage_verdict([row("a.x", "pass"), row("b.y", "fail", required=False)]) == "passed"  # optional
    assert stage_verdict([row("a.x", "pass"), row("b.y", None)]) is None  # not finished
    assert stage_verdict([row("a.x", "skip"), row("b.y", "skip")]) is None  # nothing proven
    assert stage_verdict([]) is None
    assert row("b.y", "pass", waivers=waived).shown == "pass"  # a waiver never hides a pass
