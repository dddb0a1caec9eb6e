"""The lab's fault switches in the wizard: switching one in the UI switches it on the running lab (its servers then
answer with the fault), switching it back clears it; without a lab the screen says how to start one."""

from __future__ import annotations

from typing import Any

import httpx
from textual.widgets import DataTable, Static
from tui_testlib import SIZE

from cai_tui.lab.faults import FAULTS
from cai_tui.tui.app import make_app
from cai_tui.tui.screens.lab_faults import LabFaultsScreen


def _state_cell(screen: LabFaultsScreen, name: str) -> str:
    table = screen.query_one("#lf-table", DataTable)
    return str(table.get_cell(name, "on"))


async def _move_to(pilot: Any, screen: LabFaultsScreen, name: str) -> None:
    table = screen.query_one("#lf-table", DataTable)
    table.focus()
    target = list(FAULTS).index(name)
    while table.cursor_row != target:
        await pilot.press("down" if table.cursor_row < target else "up")
    assert screen.highlighted == name


async def test_switching_a_fault_in_the_ui_switches_it_on_the_running_lab(lab: Any) -> None:
    app = make_app(lab=lab, lab_info=lab.ready_info())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.push_screen(LabFaultsScreen())
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LabFaultsScreen)
        table = screen.query_one("#lf-table", DataTable)
        assert [str(k.value) for k in table.rows] == list(FAULTS)
        assert lab.faults.active() == {}

        # Enter switches kbs-policy-deny on: the lab's switch and its Trustee's answers change
        await _move_to(pilot, screen, "kbs-policy-deny")
        about = str(screen.query_one("#lf-about", Static).content)
        assert "PolicyDeny" in about and "confidential-data-hub" in about
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert lab.faults.is_on("kbs-policy-deny") and set(lab.faults.active()) == {"kbs-policy-deny"}
        assert "on" in _state_cell(screen, "kbs-policy-deny")
        assert "kbs-policy-deny" in str(screen.query_one("#lf-note", Static).content)
        assert lab.health()["components"]["trustee"]["faults"] == ["kbs-policy-deny"]

        # space on a switch with a listener to close: the Trustee port really refuses, then answers again
        await _move_to(pilot, screen, "trustee-down")
        await pilot.press("space")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert set(lab.faults.active()) == {"kbs-policy-deny", "trustee-down"}
        assert lab.health()["components"]["trustee"]["up"] is False
        await pilot.press("space")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not lab.faults.is_on("trustee-down")
        assert lab.health()["components"]["trustee"]["up"] is True

        # back off: the lab is clean again and says so
        await _move_to(pilot, screen, "kbs-policy-deny")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert lab.faults.active() == {}
        assert "off" in _state_cell(screen, "kbs-policy-deny")
        assert "Every fault is off" in str(screen.query_one("#lf-note", Static).content)

        # in Chinese, the same switches with their words
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert "关" in _state_cell(screen, "kbs-policy-deny")
        assert "资源策略拒绝" in str(screen.query_one("#lf-about", Static).content)


async def test_a_switched_fault_reaches_the_lab_s_servers(lab: Any) -> None:
    """The OSS answers AccessDenied once the UI switched oss-access-denied on (the servers read the same switches)."""
    app = make_app(lab=lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.push_screen(LabFaultsScreen())
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LabFaultsScreen)
        await _move_to(pilot, screen, "oss-access-denied")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
    with httpx.Client(trust_env=False, timeout=5) as c:
        r = c.get(lab.oss_endpoint + "/")
    assert r.status_code == 403 and "AccessDenied" in r.text


async def test_without_a_lab_the_screen_says_to_start_one() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.push_screen(LabFaultsScreen())
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LabFaultsScreen)
        assert "cai-tui --lab" in str(screen.query_one("#lf-note", Static).content)
        assert not screen.query_one("#lf-table", DataTable).display
        assert screen.check_action("toggle_fault", ()) is None
        await pilot.press("space")  # nothing to switch, nothing breaks
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, LabFaultsScreen)
