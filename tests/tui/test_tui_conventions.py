"""The wizard's conventions: keys remappable by binding id (keymap.toml), the command palette offering the current
screen's commands, and the mouse."""

from __future__ import annotations

from pathlib import Path

from textual.command import CommandPalette
from textual.widgets import OptionList
from tui_testlib import CAI_RECIPE

from cai_tui.tui.app import keymap_file, load_keymap, make_app
from cai_tui.tui.screens.flow import FlowScreen
from cai_tui.tui.screens.run_stage import RunStageScreen

SIZE = (80, 24)


async def _flow(app, pilot) -> FlowScreen:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.press("enter")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, FlowScreen)
    screen.stage_list.focus()
    await pilot.pause()
    return screen


async def test_a_binding_id_remapped_in_keymap_toml_takes_its_new_key(wizard_home: Path) -> None:
    path = keymap_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('[keys]\nrun_stage = "f5"\n', encoding="utf-8")
    app = make_app(recipe_path=CAI_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        flow = await _flow(app, pilot)
        await pilot.press("r")  # the old key does nothing now
        await pilot.pause()
        assert app.screen is flow
        await pilot.press("f5")
        await pilot.pause()
        assert isinstance(app.screen, RunStageScreen) and app.screen.stage.id == flow.stages[0].id


async def test_a_broken_keymap_is_named_and_the_default_keys_apply(wizard_home: Path) -> None:
    path = keymap_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[keys\nrun_stage = f5\n", encoding="utf-8")
    keys, problems = load_keymap()
    assert keys == {} and len(problems) == 1 and str(path) in problems[0] and "default keys apply" in problems[0]
    path.write_text("[keys]\nrun_stage = 5\n", encoding="utf-8")
    assert load_keymap()[1] and "binding ids" in load_keymap()[1][0]
    app = make_app(recipe_path=CAI_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert any(str(path) in n.message for n in app._notifications)
        await _flow(app, pilot)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, RunStageScreen)


async def test_the_palette_offers_the_screens_commands_and_runs_them() -> None:
    app = make_app(recipe_path=CAI_RECIPE)
    async with app.run_test(size=(120, 40)) as pilot:
        flow = await _flow(app, pilot)
        titles = [c.title for c in app.get_system_commands(flow)]
        for wanted in ("Run stage", "Checks", "Troubleshoot", "Save", "Next stage", "中文"):
            assert wanted in titles, (wanted, titles)
        await pilot.press("ctrl+l")  # the palette follows the language
        await pilot.pause()
        assert "执行阶段" in [c.title for c in app.get_system_commands(flow)]
        await pilot.press("ctrl+l")
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Run stage")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, RunStageScreen)


async def test_the_mouse_opens_a_flow_and_picks_a_stage() -> None:
    app = make_app(recipe_path=CAI_RECIPE)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        flows = app.screen.query_one("#flow-list", OptionList)
        assert await pilot.click(flows, offset=(4, 1))  # the first flow's title line
        await pilot.pause()
        flow = app.screen
        assert isinstance(flow, FlowScreen) and flow.flow == "cai"
        assert await pilot.click(flow.stage_list, offset=(6, 4))  # the second stage's title
        await pilot.pause()
        assert flow.current_stage is not None and flow.current_stage.id == flow.stages[1].id
