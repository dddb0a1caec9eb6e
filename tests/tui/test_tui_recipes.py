"""Recipe files from the wizard: Open…, Save as… (Ctrl+S on a new recipe), the replay command, the recent list."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static
from tui_testlib import CAI_RECIPE, KATA_RECIPE, SIZE, texts

from cai_tui.recipe import load_recipe
from cai_tui.tui.app import make_app
from cai_tui.tui.recent import RECENT_MAX, load_recent, recent_file, remember
from cai_tui.tui.screens.flow import FlowScreen
from cai_tui.tui.screens.recipe_files import OpenRecipeScreen, ReplayCommandScreen, SaveAsScreen
from cai_tui.tui.screens.start import StartScreen

SMALL = (80, 24)


def notes(app: Any) -> list[str]:
    return [n.message for n in app._notifications]


def error_of(screen: Any) -> str:
    return str(screen.query_one(".dialog-error", Static).content)


async def type_path(pilot: Any, selector: str, text: str) -> None:
    field = pilot.app.screen.query_one(selector, Input)
    field.value = ""
    await pilot.press(*text)  # typed, as a person would
    assert field.value == text


# --- Open… ------------------------------------------------------------------------------------------------------------


async def test_open_a_valid_recipe(tmp_path: Path) -> None:
    recipe = tmp_path / "kata.yaml"
    recipe.write_bytes(KATA_RECIPE.read_bytes())
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, OpenRecipeScreen)
        await type_path(pilot, "#open-path", str(recipe))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        assert app.state.recipe_path == recipe and app.state.recipe_flow == "kata-virtcca"
        assert load_recent()[0][0].path == recipe


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "file not found"),
        ("", "empty file; start from an example"),
        ("flow: cai\nname: [oops\n", "malformed YAML"),
        ("schema_version: 1\nflow: cai\nname: x\nanswers:\n  oss:\n    bucket_pat: nope\n", "bucket_pat"),
        ("dir", "is a directory"),
    ],
    ids=["missing", "empty", "bad-yaml", "bad-answer", "directory"],
)
async def test_open_refuses_what_is_not_a_recipe_with_the_loaders_message(
    tmp_path: Path, content: str | None, says: str
) -> None:
    path = tmp_path / "recipe.yaml"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    app = make_app(recipe_path=CAI_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        await pilot.pause()
        await type_path(pilot, "#open-path", str(path))
        await pilot.press("enter")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, OpenRecipeScreen)  # stays open with what was typed
        assert error_of(dialog).startswith(f"{path}") and says in error_of(dialog)
        assert dialog.query_one("#open-path", Input).value == str(path)
        assert app.state.recipe_path == CAI_RECIPE and app.state.recipe_problems == []  # nothing changed
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen) and load_recent()[0] == []


async def test_open_asks_before_discarding_unsaved_changes(tmp_path: Path) -> None:
    app = make_app(recipe_path=CAI_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        draft = app.state.draft
        assert draft is not None and draft.set("oss.bucket_path", "otherbucket:/models/") is None
        await pilot.press("o")
        await pilot.pause()
        await type_path(pilot, "#open-path", str(KATA_RECIPE))
        await pilot.press("enter")
        await pilot.pause()
        assert "unsaved changes" in error_of(app.screen) and app.state.draft is draft
        await pilot.press("enter")  # again: discard them
        await pilot.pause()
        assert isinstance(app.screen, StartScreen) and app.state.recipe_path == KATA_RECIPE


# --- Save as… ------------------------------------------------------------------------------------------------------------


async def test_ctrl_s_on_a_new_recipe_saves_it_where_asked_and_the_file_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter")  # the cai flow: a new recipe from its example
        await pilot.pause()
        assert isinstance(app.screen, FlowScreen) and app.state.recipe_path is None
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, SaveAsScreen)
        assert dialog.query_one("#saveas-path", Input).value == str(tmp_path / "cai-recipe.yaml")
        await pilot.press("enter")
        await pilot.pause()
        target = tmp_path / "cai-recipe.yaml"
        assert isinstance(app.screen, FlowScreen)
        assert app.state.recipe_path == target
        assert f"Recipe saved to {target}" in notes(app)
        assert load_recipe(target).recipe.flow == "cai"
        assert oct(target.stat().st_mode & 0o777) == "0o600"
        assert [e.path for e in load_recent()[0]] == [target]
        # the recipe has a file now: Ctrl+S saves in place, no dialog
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, FlowScreen)


async def test_save_as_refuses_an_existing_file_until_confirmed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "cai-recipe.yaml"
    target.write_text("# someone else's notes\n", encoding="utf-8")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and "already exists. Save again to replace it" in error_of(dialog)
        assert target.read_text("utf-8") == "# someone else's notes\n" and app.state.recipe_path is None
        await pilot.press("end", "x", "backspace")  # editing the path withdraws the confirmation
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and "already exists" in error_of(dialog)
        await pilot.press("enter")  # the second Save for the same path replaces it
        await pilot.pause()
        assert isinstance(app.screen, FlowScreen)
        assert load_recipe(target).recipe.flow == "cai"
        assert (tmp_path / "cai-recipe.yaml.bak").read_text("utf-8") == "# someone else's notes\n"


@pytest.mark.parametrize("case", ["missing-folder", "folder", "empty"])
async def test_save_as_refuses_a_missing_folder_a_folder_and_nothing(tmp_path: Path, case: str) -> None:
    typed = {"missing-folder": str(tmp_path / "nope" / "r.yaml"), "folder": str(tmp_path), "empty": ""}[case]
    says = {
        "missing-folder": f"The folder {tmp_path / 'nope'} does not exist",
        "folder": f"{tmp_path} is a folder; add a file name",
        "empty": "Give a file path.",
    }[case]
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        app.state.new_recipe("kata-virtcca")
        app.push_screen(SaveAsScreen())
        await pilot.pause()
        await type_path(pilot, "#saveas-path", typed)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SaveAsScreen) and says in error_of(app.screen)
        assert app.state.recipe_path is None and not (tmp_path / "nope").exists()
        assert list(tmp_path.iterdir()) == []


async def test_save_as_speaks_chinese_and_fits_80x24(tmp_path: Path) -> None:
    app = make_app(lang="zh")
    async with app.run_test(size=SMALL) as pilot:
        app.state.new_recipe("cai")
        app.push_screen(SaveAsScreen())
        await pilot.pause()
        dialog = app.screen
        assert dialog.query_one("#saveas-box").border_title == "配方另存为"
        box = dialog.query_one("#saveas-box").region
        assert box.bottom <= SMALL[1] and box.right <= SMALL[0]
        await type_path(pilot, "#saveas-path", str(tmp_path))
        await pilot.press("enter")
        await pilot.pause()
        assert "是文件夹" in error_of(dialog)
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert dialog.query_one("#saveas-box").border_title == "Save the recipe as"
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)


# --- the replay command --------------------------------------------------------------------------------------------------


def run_cli(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    assert argv[:2] == ["cai-tui", "replay"]
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "cai_tui.cli.main", *argv[1:]], capture_output=True, text=True, cwd=cwd, env=env
    )


@pytest.mark.parametrize("stage", [None, "model-encrypt"])
async def test_the_replay_command_is_what_cai_tui_replay_accepts(tmp_path: Path, stage: str | None) -> None:
    recipe = tmp_path / "my recipe.yaml"  # a space: the command must quote it
    recipe.write_bytes(CAI_RECIPE.read_bytes())
    app = make_app(recipe_path=recipe)
    async with app.run_test(size=SMALL) as pilot:
        app.push_screen(ReplayCommandScreen(stage))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ReplayCommandScreen)
        assert screen.command == app.state.replay_command(stage)
        shown = texts(screen)
        assert screen.command in shown and screen.plan_command in shown and "--plan" in shown
        assert "same work as the wizard" in shown
        await pilot.press("c")
        await pilot.pause()
        assert app.clipboard == screen.command
        await pilot.press("p")
        await pilot.pause()
        assert app.clipboard == screen.plan_command
        plan_command = screen.plan_command
    done = run_cli(plan_command, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    items = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    stages = {item["stage"] for item in items}
    assert stages == ({stage} if stage else stages) and items
    if stage is None:
        assert "model-encrypt" in stages and len(stages) > 5


async def test_the_replay_command_of_an_unsaved_recipe_says_to_save_first() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("h")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)  # no recipe: nothing to replay
        assert any("replay command needs a recipe" in n for n in notes(app))
        app.state.new_recipe("cai")
        await pilot.press("h")
        await pilot.pause()
        assert isinstance(app.screen, ReplayCommandScreen)
        assert "save it first (Ctrl+S)" in texts(app.screen)


# --- the recent list -------------------------------------------------------------------------------------------------------


def make_recipes(folder: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        p = folder / f"r{i}.yaml"
        p.write_bytes(CAI_RECIPE.read_bytes())
        paths.append(p)
    return paths


def test_recent_newest_first_no_duplicates_at_most_ten(tmp_path: Path) -> None:
    paths = make_recipes(tmp_path, RECENT_MAX + 3)
    for p in paths:
        assert remember(p, "cai", p.stem) == []
    assert remember(paths[5], "cai", "again") == []
    entries, warnings = load_recent()
    assert warnings == []
    newest_first = [p for p in reversed(paths) if p != paths[5]]
    assert [e.path for e in entries] == [paths[5], *newest_first[: RECENT_MAX - 1]]
    assert len(entries) == RECENT_MAX and entries[0].name == "again"
    assert oct(recent_file().stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in recent_file().parent.iterdir()] == ["recent.json"]  # no temp file left behind


def test_recent_drops_files_that_are_gone(tmp_path: Path) -> None:
    a, b = make_recipes(tmp_path, 2)
    remember(a, "cai", "a")
    remember(b, "cai", "b")
    b.unlink()
    assert [e.path for e in load_recent()[0]] == [a]


def test_recent_relative_paths_are_remembered_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (a,) = make_recipes(tmp_path, 1)
    monkeypatch.chdir(tmp_path)
    remember("r0.yaml", "cai", "a")
    assert load_recent()[0][0].path == a


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"recipes": 3}', '["a"]', '{"recipes": [{"flow": "cai"}]}', "\udcff"],
    ids=["bad-json", "not-a-list", "top-list", "no-path", "not-utf8"],
)
def test_a_corrupt_recent_file_is_ignored_with_a_warning_and_replaced(tmp_path: Path, content: str) -> None:
    file = recent_file()
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(content.encode("utf-8", "surrogateescape"))
    entries, warnings = load_recent()
    assert entries == [] and len(warnings) == 1 and str(file) in warnings[0]
    (p,) = make_recipes(tmp_path, 1)
    assert remember(p, "cai", "x") == warnings  # the warning once more, then the file is good again
    entries, warnings = load_recent()
    assert warnings == [] and [e.path for e in entries] == [p]


async def test_a_corrupt_recent_file_is_a_warning_on_the_start_screen_not_a_crash() -> None:
    file = recent_file()
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("{not json", encoding="utf-8")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        assert any(str(file) in n and "ignored" in n for n in notes(app))


def test_an_unwritable_recent_list_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("CAI_TUI_HOME", str(blocker))  # config dir under a plain file: mkdir fails
    (p,) = make_recipes(tmp_path, 1)
    warnings = remember(p, "cai", "x")
    assert len(warnings) == 1 and "could not be saved" in warnings[0]
