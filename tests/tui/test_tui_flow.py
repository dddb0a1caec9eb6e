"""The flow screen: every stage in order, the highlighted stage's detail, Next/Previous/Back."""

from __future__ import annotations

import os
import shlex

import pytest
from textual.widgets import OptionList
from tui_testlib import ROOT, SIZE, footer_text, option_ids, texts

from cai_tui.tui.app import make_app
from cai_tui.tui.screens.flow import FlowScreen
from cai_tui.tui.screens.start import StartScreen
from cai_tui.tui.text import reflow


async def open_flow(pilot, index: int) -> FlowScreen:
    flow_list = pilot.app.screen.query_one("#flow-list", OptionList)
    flow_list.highlighted = index
    await pilot.press("enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, FlowScreen)
    return screen


@pytest.mark.parametrize("index", [0, 1])
async def test_each_flow_lists_all_its_stages_and_shows_each(flows, index: int) -> None:
    flow = list(flows)[index]
    stages = flows[flow].stages
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = await open_flow(pilot, index)
        assert screen.flow == flow
        stage_list = screen.query_one("#stage-list", OptionList)
        assert option_ids(stage_list) == [s.id for s in stages]
        assert [s.order for s in stages] == sorted(s.order for s in stages)
        for i, spec in enumerate(stages):
            assert spec.title.en in str(stage_list.options[i].prompt)
            stage_list.highlighted = i
            await pilot.pause()
            detail = texts(screen.query_one("#stage-detail"))
            assert f"Stage {spec.order} of {len(stages)}" in detail
            assert spec.title.en in detail
            assert reflow(spec.help.en) in detail
            assert "Covers: " + " · ".join(spec.covers) in detail
            for step in spec.steps:
                assert step.covers in detail
                assert reflow(step.guidance.en) in detail
            for field in spec.fields:
                assert field.label.en in detail and field.path in detail


async def test_detail_shows_what_is_done_and_how_it_is_verified(flows) -> None:
    encrypt = flows["cai"].stage("model-encrypt")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = FlowScreen("cai")  # without a recipe (choosing the flow on the start screen would start one)
        await app.push_screen(screen)
        await pilot.pause()
        screen.query_one("#stage-list", OptionList).highlighted = encrypt.order - 1
        await pilot.pause()
        detail = texts(screen.query_one("#stage-detail"))
        assert "action model.encrypt" in detail
        assert "run on workstation" in detail
        assert "$ cat ~/cachefs-password | gocryptfs -init {model.cipher_dir}" in detail
        assert "Verify: gocryptfs.version" in detail
        assert "Input: Plaintext model directory, Model key (reference), Ciphertext directory" in detail


async def test_next_previous_and_back(flows) -> None:
    stages = flows["cai"].stages
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = await open_flow(pilot, 0)
        stage_list = screen.query_one("#stage-list", OptionList)
        detail = screen.query_one("#stage-detail")
        assert stage_list.highlighted == 0
        assert screen.check_action("prev", ()) is None  # dimmed on the first stage
        await pilot.press("n", "n")
        await pilot.pause()
        assert stage_list.highlighted == 2
        assert stages[2].title.en in texts(detail)
        await pilot.press("p")
        await pilot.pause()
        assert stage_list.highlighted == 1
        assert stages[1].title.en in texts(detail)
        for _ in stages:
            await pilot.press("n")
        await pilot.pause()
        assert stage_list.highlighted == len(stages) - 1  # stops at the last stage, no wrap
        assert screen.check_action("next", ()) is None
        footer = footer_text(app)
        assert all(word in footer for word in ("Back", "Next stage", "Previous stage", "Quit", "中文")), footer
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        assert app.screen.query_one("#flow-list", OptionList).highlighted == 0


async def test_quit_exits_cleanly() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_encrypt_stage_shows_the_planned_command_for_the_lab_recipe() -> None:
    """A registered action shows the exact `cai-tui model …` argv its plan derives from the loaded recipe."""
    app = make_app(recipe_path=ROOT / "recipes" / "lab-demo.yaml")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter", "n")
        await pilot.pause()
        shown = texts(app.screen)
    lab = os.path.expanduser("~/.local/state/cai-tui/lab")
    argv = ["cai-tui", "model", "encrypt", f"{lab}/demo-model", f"{lab}/demo-cipher"]
    argv += ["--password-file", f"{lab}/model-password", "--engine", "native"]
    assert "Encrypt the model" in shown
    assert "runs: " + shlex.join(argv) in shown
    assert "action model.encrypt" in shown
    assert "action model.choose_encryption" in shown
    recipe = str(ROOT / "recipes" / "lab-demo.yaml")
    assert "runs: " + shlex.join(["cai-tui", "recipe", "validate", recipe]) in shown  # CAI-1.2
    assert "runs: " + shlex.join(["cai-tui", "tools", "key-file", "--recipe", recipe]) in shown  # CAI-1.4
    # CAI-1.2, CAI-1.4 and CAI-1.5's model.encrypt; model.install_gocryptfs has nothing to run for the native engine,
    # and CAI-1.6 (Sam) does not apply to this gocryptfs recipe, so it offers nothing
    assert shown.count("runs: ") == 3
    assert "not for this recipe: this step is for sam (model.encryption_method is gocryptfs)" in shown


async def test_no_planned_commands_without_a_recipe() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await app.push_screen(FlowScreen("cai"))  # without a recipe (the start screen would start one)
        await pilot.press("n")
        await pilot.pause()
        shown = texts(app.screen)
    assert "Encrypt the model" in shown and "action model.encrypt" in shown
    assert "runs: " not in shown
