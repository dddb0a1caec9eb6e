"""The start screen: both flows, the loaded recipe, the lab banner."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import OptionList
from tui_testlib import CAI_RECIPE, KATA_RECIPE, SIZE, footer_text, option_ids, texts

from cai_tui.tui.app import make_app
from cai_tui.tui.screens.flow import FlowScreen
from cai_tui.tui.screens.start import StartScreen


async def test_lists_both_flows_with_titles_and_stage_counts(flows) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        flow_list = app.screen.query_one("#flow-list", OptionList)
        assert option_ids(flow_list) == list(flows) == ["cai", "kata-virtcca"]
        prompts = [str(o.prompt) for o in flow_list.options]
        assert "Alibaba Cloud heterogeneous confidential instance" in prompts[0]
        assert f"{len(flows['cai'].stages)} stages" in prompts[0]
        assert "openEuler kata-virtcca" in prompts[1]
        assert f"{len(flows['kata-virtcca'].stages)} stages" in prompts[1]
        assert "No recipe loaded" in texts(app.screen)
        assert flow_list.highlighted == 0
        assert "Quit" in footer_text(app) and "中文" in footer_text(app)


async def test_recipe_preselects_its_flow_and_shows_its_name() -> None:
    app = make_app(recipe_path=KATA_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        flow_list = app.screen.query_one("#flow-list", OptionList)
        assert flow_list.highlighted == 1
        shown = texts(app.screen)
        assert "Recipe qwen1.5-1.8b-virtcca (flow kata-virtcca)" in shown
        assert "◀ your recipe" in str(flow_list.options[1].prompt)
        assert "◀ your recipe" not in str(flow_list.options[0].prompt)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, FlowScreen) and app.screen.flow == "kata-virtcca"


async def test_lab_banner_says_where_the_lab_runs() -> None:
    lab = {
        "trustee_url": "http://127.0.0.1:18081",
        "oss_endpoint": "http://127.0.0.1:18082",
        "kms_endpoint": "https://127.0.0.1:18083",
        "recipe": "/tmp/lab/lab-demo.yaml",
    }
    app = make_app(recipe_path=CAI_RECIPE, lab_info=lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        banner = texts(app.screen.query_one("#lab-banner"))
        assert "Lab running" in banner
        for value in lab.values():
            assert value in banner


async def test_no_banner_without_a_lab() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert not app.screen.query("#lab-banner")


async def test_a_broken_recipe_is_reported_not_raised(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nflow: cai\nname: x\nanswers:\n  oss:\n    bucket_pat: nope\n", encoding="utf-8")
    app = make_app(recipe_path=bad)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        shown = texts(app.screen)
        assert "The recipe could not be loaded" in shown
        assert f"{bad}:" in shown  # problems name the file (and line)
        assert app.state.loaded is None
