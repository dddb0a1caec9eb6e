"""Snapshots of every screen of the wizard, in English and Chinese, at 80×24 and 120×40 (pytest-textual-snapshot: the
whole rendered screen compared with the accepted one in __snapshots__/; `pytest --snapshot-update` accepts a change
after a person has looked at the report it writes).

Deterministic by construction: the shipped example recipes by a relative path, a fresh CAI_TUI_HOME (no recent
recipes), no check or container read that would touch the network (the checks and troubleshooting screens are shown
as they are without a recipe; the run screen on a stage whose items need no target).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from cai_tui.lab.orchestrator import Lab
from cai_tui.tui.app import make_app
from cai_tui.tui.screens.checks import ChecksScreen
from cai_tui.tui.screens.lab_faults import LabFaultsScreen
from cai_tui.tui.screens.recipe_files import ReplayCommandScreen
from cai_tui.tui.screens.run_stage import RunStageScreen
from cai_tui.tui.screens.troubleshoot import TroubleshootScreen
from tests.conftest import PROXY_VARS

ROOT = Path(__file__).resolve().parents[2]
CAI = "recipes/cai-qwen2.5-3b-beijing.yaml"
KATA = "recipes/kata-virtcca-qwen1.5-1.8b.yaml"
SIZES = {"80x24": (80, 24), "120x40": (120, 40)}
LANGS = ("en", "zh")

pytestmark = pytest.mark.parametrize("size", list(SIZES))


@pytest.fixture(autouse=True)
def in_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recipes by a relative path, so the recipe line reads the same on every machine."""
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    saved = {v: __import__("os").environ.pop(v, None) for v in PROXY_VARS}
    try:
        with Lab(state_dir=tmp_path_factory.mktemp("snap-lab"), instance=False) as running:
            yield running
    finally:
        for var, value in saved.items():
            if value is not None:
                __import__("os").environ[var] = value


async def settle(pilot: Pilot[Any]) -> None:
    """Workers done (the start screen reads the stage specs after its first paint), then a repaint."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def then(*steps: Callable[[Pilot[Any]], Awaitable[None]]) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for step in steps:
            await step(pilot)
            await settle(pilot)

    return run


def push(factory: Callable[[Any], Any]) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def step(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(factory(pilot.app))

    return step


def keys(*names: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def step(pilot: Pilot[Any]) -> None:
        await pilot.press(*names)

    return step


@pytest.mark.parametrize("lang", LANGS)
def test_start_screen(snap_compare: Any, size: str, lang: str) -> None:
    app = make_app(lang=lang, recipe_path=CAI)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=then())


@pytest.mark.parametrize("lang", LANGS)
def test_start_screen_without_a_recipe(snap_compare: Any, size: str, lang: str) -> None:
    app = make_app(lang=lang)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=then())


@pytest.mark.parametrize("lang", LANGS)
def test_stage_screen_with_its_form(snap_compare: Any, size: str, lang: str) -> None:
    """The CAI flow's encryption stage: side bar, guidance, the form's editors (a select, a secret reference, paths)."""
    app = make_app(lang=lang, recipe_path=CAI)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=then(keys("enter"), keys("n")))


@pytest.mark.parametrize("lang", LANGS)
def test_kata_stage_screen(snap_compare: Any, size: str, lang: str) -> None:
    app = make_app(lang=lang, recipe_path=KATA)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=then(keys("enter"), keys("n", "n")))


@pytest.mark.parametrize("lang", LANGS)
def test_run_stage_plan(snap_compare: Any, size: str, lang: str) -> None:
    """The plan of the encryption stage before anything runs: filled-in actions, greyed items that do not apply."""
    app = make_app(lang=lang, recipe_path=CAI)
    stage = push(lambda a: RunStageScreen(a.state.flows["cai"].stage("model-encrypt")))
    assert snap_compare(app, terminal_size=SIZES[size], run_before=then(stage))


@pytest.mark.parametrize("lang", LANGS)
def test_checks_screen(snap_compare: Any, size: str, lang: str) -> None:
    """A stage's checks as listed before a recipe is open (nothing runs)."""
    app = make_app(lang=lang)
    checks = push(lambda a: ChecksScreen(a.state.flows["cai"].stage("trustee-deploy")))
    assert snap_compare(app, terminal_size=SIZES[size], run_before=then(checks))


@pytest.mark.parametrize("lang", LANGS)
def test_troubleshooting_screen(snap_compare: Any, size: str, lang: str) -> None:
    app = make_app(lang=lang)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=then(push(lambda a: TroubleshootScreen("cai"))))


@pytest.mark.parametrize("lang", LANGS)
def test_lab_fault_switches(snap_compare: Any, size: str, lang: str, lab: Lab) -> None:
    app = make_app(lang=lang, lab=lab)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=then(push(lambda a: LabFaultsScreen())))


@pytest.mark.parametrize("lang", LANGS)
def test_replay_command_dialog(snap_compare: Any, size: str, lang: str) -> None:
    app = make_app(lang=lang, recipe_path=CAI)
    assert snap_compare(
        app, terminal_size=SIZES[size], run_before=then(push(lambda a: ReplayCommandScreen("model-encrypt")))
    )


def test_light_theme_and_no_color(snap_compare: Any, size: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl+T switches to the light theme; NO_COLOR (read when the app starts) renders without colour."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(recipe_path=CAI)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=then(keys("ctrl+t"), keys("enter")))
