"""The start screen: the flows (a new recipe from the flow's example), open a recipe, the recent ones, troubleshoot,
the doctor, the lab; it paints before the stage specs are read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import OptionList
from tui_testlib import CAI_RECIPE, KATA_RECIPE, ROOT, SIZE, footer_text, option_ids, texts

from cai_tui.recipe import load_recipe
from cai_tui.stages import StageSpecError, load_flow
from cai_tui.tui.app import make_app
from cai_tui.tui.recent import load_recent, remember
from cai_tui.tui.screens.flow import FlowScreen
from cai_tui.tui.screens.recipe_files import ConfirmScreen, OpenRecipeScreen
from cai_tui.tui.screens.start import StartScreen
from cai_tui.tui.state import FlowsOnDemand, WizardState

SMALL = (80, 24)


def notes(app: Any) -> list[str]:
    """The notifications the app has shown (newest last)."""
    return [n.message for n in app._notifications]


async def settled(pilot: Any) -> None:
    """Wait for the start screen's worker that reads the stage specs, and for its update."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_lists_both_flows_with_titles_and_stage_counts(flows) -> None:
    app = make_app()
    assert isinstance(app.state.flows, FlowsOnDemand) and not app.state.flows.ready  # nothing read before the paint
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        assert isinstance(app.screen, StartScreen)
        assert app.state.flows.ready
        flow_list = app.screen.query_one("#flow-list", OptionList)
        assert option_ids(flow_list) == list(flows) == ["cai", "kata-virtcca"]
        prompts = [str(o.prompt) for o in flow_list.options]
        assert "Alibaba Cloud heterogeneous confidential instance" in prompts[0]
        assert f"{len(flows['cai'].stages)} stages" in prompts[0]
        assert "openEuler kata-virtcca" in prompts[1]
        assert f"{len(flows['kata-virtcca'].stages)} stages" in prompts[1]
        assert "No recipe open" in texts(app.screen)
        assert app.state.loaded is None
        assert flow_list.highlighted == 0
        footer = footer_text(app)
        assert "Quit" in footer and "中文" in footer and "Open recipe" in footer and "Troubleshoot" in footer


def test_the_flows_are_known_without_reading_a_spec(flows) -> None:
    lazy = FlowsOnDemand()
    assert list(lazy) == list(flows) and len(lazy) == len(flows) and "cai" in lazy and "nope" not in lazy
    assert not lazy.ready
    assert lazy["cai"].stages == flows["cai"].stages and lazy.ready
    with pytest.raises(KeyError):
        lazy["nope"]


def test_cold_start_imports_neither_the_models_nor_the_specs() -> None:
    """What `cai-tui` imports before the first paint: no pydantic, no YAML, no recipe models, no stage loader, no FAQ
    and no engine plan (cli/doctor_cmd's engine.session import is light: its own imports are where they are used)."""
    code = (
        "import sys, cai_tui.cli.main, cai_tui.cli.wizard_cmd, cai_tui.tui.app\n"
        "from cai_tui.tui.state import WizardState\n"
        "WizardState.create()\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('pydantic', 'ruamel')"
        " or m.startswith(('cai_tui.recipe', 'cai_tui.stages', 'cai_tui.engine.plan', 'cai_tui.faq'))]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout


async def test_a_broken_spec_is_shown_on_the_start_screen_and_opening_its_flow_says_why(tmp_path: Path) -> None:
    bad = tmp_path / "cai"
    bad.mkdir()
    (bad / "01-model-source.yaml").write_text("id: model-source\ntitle: [unclosed\n", encoding="utf-8")

    def read() -> dict:
        return {"cai": load_flow("cai", root=tmp_path)}

    app = make_app(flows=FlowsOnDemand(("cai",), read))  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        screen = app.screen
        assert isinstance(screen, StartScreen)
        assert screen.specs_problem is not None and "01-model-source.yaml" in screen.specs_problem
        problem = screen.query_one("#specs-problem")
        assert problem.display and "The stage specs could not be read" in texts(problem)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen  # not opened, not crashed
        assert any("malformed YAML" in n for n in notes(app))
    with pytest.raises(StageSpecError):
        read()


async def test_recipe_preselects_its_flow_and_shows_its_name() -> None:
    app = make_app(recipe_path=KATA_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        flow_list = app.screen.query_one("#flow-list", OptionList)
        assert flow_list.highlighted == 1
        shown = texts(app.screen)
        assert "Recipe qwen1.5-1.8b-virtcca (flow kata-virtcca)" in shown
        assert "◀ your recipe" in str(flow_list.options[1].prompt)
        assert "◀ your recipe" not in str(flow_list.options[0].prompt)
        loaded = app.state.loaded
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, FlowScreen) and app.screen.flow == "kata-virtcca"
        assert app.state.loaded is loaded  # its own flow opens the recipe as it is


async def test_choosing_a_flow_without_a_recipe_starts_one_from_its_example() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, FlowScreen) and app.screen.flow == "kata-virtcca"
        loaded = app.state.loaded
        assert loaded is not None and loaded.recipe.flow == "kata-virtcca" and loaded.path is None
        assert app.state.draft is not None and not app.state.draft.dirty
        await pilot.press("escape")
        await pilot.pause()
        shown = texts(app.screen)
        assert "not saved to a file yet: Ctrl+S saves it" in shown
        assert "◀ your recipe" in str(app.screen.query_one("#flow-list", OptionList).options[1].prompt)
        # another flow, nothing unsaved: replaced without a question
        await pilot.press("up", "enter")
        await pilot.pause()
        assert isinstance(app.screen, FlowScreen) and app.screen.flow == "cai"
        assert app.state.recipe_flow == "cai"


async def test_unsaved_changes_are_not_replaced_without_asking() -> None:
    app = make_app(recipe_path=CAI_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        draft = app.state.draft
        assert draft is not None and draft.set("oss.bucket_path", "otherbucket:/models/") is None and draft.dirty
        app.screen.refresh_texts()  # type: ignore[attr-defined]
        assert "unsaved changes" in texts(app.screen)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "has unsaved changes" in texts(app.screen)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        assert app.state.draft is draft and app.state.recipe_flow == "cai"  # kept
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, FlowScreen) and app.screen.flow == "kata-virtcca"
        assert app.state.recipe_flow == "kata-virtcca" and app.state.recipe_path is None


async def test_open_a_recipe_from_the_menu_and_find_it_in_the_recent_list_of_the_next_app(
    tmp_path: Path, wizard_home: Path
) -> None:
    recipe = tmp_path / "mine.yaml"
    recipe.write_bytes(CAI_RECIPE.read_bytes())
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        recent = app.screen.query_one("#recent-list", OptionList)
        assert "none yet" in texts(recent) and recent.get_option_at_index(0).disabled
        menu = app.screen.query_one("#start-menu", OptionList)
        menu.focus()
        menu.highlighted = option_ids(menu).index("open_recipe")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, OpenRecipeScreen)
        await pilot.press(*str(recipe), "enter")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        assert app.state.recipe_path == recipe and app.state.recipe_flow == "cai"
        assert "Recipe qwen2.5-3b-beijing (flow cai) from " + str(recipe) in texts(app.screen)
        assert any(n.startswith("Opened the recipe qwen2.5-3b-beijing") for n in notes(app))
        assert [e.path for e in app.screen.recent] == [recipe]  # type: ignore[attr-defined]
    saved = json.loads((wizard_home / "config" / "recent.json").read_text("utf-8"))
    assert saved["recipes"][0] == {"path": str(recipe), "flow": "cai", "name": "qwen2.5-3b-beijing"}

    again = make_app()
    async with again.run_test(size=SIZE) as pilot:
        await settled(pilot)
        recent = again.screen.query_one("#recent-list", OptionList)
        assert option_ids(recent) == ["recent-0"]
        assert "qwen2.5-3b-beijing · cai" in str(recent.options[0].prompt)
        assert again.state.loaded is None
        recent.focus()
        recent.highlighted = 0
        await pilot.press("enter")
        await pilot.pause()
        assert again.state.recipe_path == recipe
        assert again.screen.query_one("#flow-list", OptionList).has_focus


async def test_a_recent_recipe_that_broke_says_why_and_changes_nothing(tmp_path: Path) -> None:
    recipe = tmp_path / "broke.yaml"
    recipe.write_bytes(CAI_RECIPE.read_bytes())
    assert remember(recipe, "cai", "qwen") == []
    recipe.write_text("schema_version: 1\nflow: cai\nname: x\nanswers:\n  oss:\n    bucket_pat: nope\n", "utf-8")
    app = make_app(recipe_path=KATA_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        recent = app.screen.query_one("#recent-list", OptionList)
        recent.focus()
        recent.highlighted = 0
        await pilot.press("enter")
        await pilot.pause()
        assert app.state.recipe_path == KATA_RECIPE  # still the one that was open
        assert any(f"{recipe}:" in n and "bucket_pat" in n for n in notes(app))


async def test_troubleshoot_and_doctor_need_a_recipe_then_open_their_screens() -> None:
    from cai_tui.tui.screens.checks import ChecksScreen
    from cai_tui.tui.screens.troubleshoot import TroubleshootScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("t")
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        assert "Troubleshooting needs a recipe: choose a flow or open a recipe (o) first." in notes(app)
        assert "The doctor needs a recipe: choose a flow or open a recipe (o) first." in notes(app)

    app = make_app(recipe_path=KATA_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await app.screen.run_action("troubleshoot")  # the binding's action, as the palette runs it
        await pilot.pause()
        assert isinstance(app.screen, TroubleshootScreen) and app.screen.flow == "kata-virtcca"
        app.pop_screen()
        await pilot.pause()
        menu = app.screen.query_one("#start-menu", OptionList)
        menu.focus()
        menu.highlighted = option_ids(menu).index("doctor")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ChecksScreen) and app.screen.stage is None


async def test_try_the_lab_explains_how_to_start_it() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        assert any("cai-tui --lab" in n for n in notes(app))


@pytest.mark.slow
async def test_try_the_lab_offers_its_fault_switches_while_it_runs(lab: Any) -> None:
    from cai_tui.tui.screens.lab_faults import LabFaultsScreen

    app = make_app(recipe_path=lab.recipe_path, lab_info=lab.ready_info(), lab=lab)
    async with app.run_test(size=SMALL) as pilot:
        await settled(pilot)
        assert "Lab running" in texts(app.screen.query_one("#lab-banner"))
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, LabFaultsScreen)


async def test_the_palette_lists_the_start_screen_commands() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        names = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("Open recipe", "Save as", "Replay command", "Troubleshoot", "Doctor", "Lab", "Quit"):
            assert wanted in names, wanted


async def test_lab_banner_says_where_the_lab_runs() -> None:
    lab = {
        "trustee_url": "http://127.0.0.1:18081",
        "oss_endpoint": "http://127.0.0.1:18082",
        "kms_endpoint": "https://127.0.0.1:18083",
        "recipe": "/tmp/lab/lab-demo.yaml",
    }
    app = make_app(recipe_path=CAI_RECIPE, lab_info=lab)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        banner = texts(app.screen.query_one("#lab-banner"))
        assert "Lab running" in banner
        for value in lab.values():
            assert value in banner


async def test_no_banner_without_a_lab() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        assert not app.screen.query("#lab-banner")


async def test_a_broken_recipe_is_reported_not_raised(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nflow: cai\nname: x\nanswers:\n  oss:\n    bucket_pat: nope\n", encoding="utf-8")
    app = make_app(recipe_path=bad)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        shown = texts(app.screen)
        assert "The recipe could not be loaded" in shown
        assert f"{bad}:" in shown  # problems name the file (and line)
        assert app.state.loaded is None


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_everything_fits_at_80x24_in_both_languages_with_the_lab_banner(lang: str) -> None:
    lab = {"trustee_url": "http://127.0.0.1:18081", "oss_endpoint": "http://127.0.0.1:18082"}
    lab |= {"kms_endpoint": "https://127.0.0.1:18083", "recipe": str(CAI_RECIPE)}
    app = make_app(lang=lang, recipe_path=CAI_RECIPE, lab_info=lab)
    async with app.run_test(size=SMALL) as pilot:
        await settled(pilot)
        screen = app.screen
        for selector in ("#lab-banner", "#recipe-line", "#choose", "#flow-list", "#start-menu", "#recent-list"):
            region = screen.query_one(selector).region
            assert region.height > 0 and region.bottom <= SMALL[1] - 1, selector  # above the footer
        menu = screen.query_one("#start-menu", OptionList)
        assert menu.region.height >= 4  # the border and at least two entries, the rest scrolls
        if lang == "zh":
            assert "打开配方…" in texts(menu) and screen.query_one("#recent-list").border_title == "最近的配方"
        else:
            assert "Open a recipe…" in texts(menu)
        menu.focus()
        await pilot.press("end")
        await pilot.pause()
        assert menu.highlighted == menu.option_count - 1  # the last entry (the lab) is reachable


def test_state_create_reads_no_spec_until_asked() -> None:
    state = WizardState.create()
    assert isinstance(state.flows, FlowsOnDemand) and not state.flows.ready
    assert load_recipe(CAI_RECIPE).recipe.flow == "cai"
    assert load_recent()[0] == []  # CAI_TUI_HOME is this test's own


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--lab"],
        ["--recipe", "x.yaml"],
        ["--recipe=x.yaml", "--lang", "zh"],
        ["--lang=zh", "--lab", "--recipe", "r"],
        ["--lab", "--bare"],
    ],
)
def test_the_wizards_options_read_without_typer_are_what_typer_reads(argv: list[str]) -> None:
    """`cai-tui [--lab] [--recipe F] [--lang L]` skips typer (its parsing imports pydantic); same values as typer's."""
    from typer.main import get_command

    from cai_tui.cli.main import app as cli
    from cai_tui.cli.wizard_args import wizard_args

    params = get_command(cli).make_context("cai-tui", list(argv)).params
    keys = ("lab", "bare", "recipe", "lang")
    assert wizard_args(argv) == {k: params[k] for k in keys}


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["-h"],
        ["--version"],
        ["stages"],
        ["--lab", "--lab"],
        ["--recipe"],
        ["--recipe", "--lab"],
        ["--lang="],
        ["--lab=1"],
        ["--recipes", "x"],
        ["--lab", "replay", "x.yaml"],
    ],
)
def test_anything_else_is_left_to_typer(argv: list[str]) -> None:
    from cai_tui.cli.wizard_args import wizard_args

    assert wizard_args(argv) is None
