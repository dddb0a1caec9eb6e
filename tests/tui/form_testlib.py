"""Helpers for the form tests: find a stage's field editor, show a stage, type into a field as a person does."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input, OptionList, Select

from cai_tui.tui.screens.flow import FlowScreen
from cai_tui.tui.widgets.field_editor import FieldEditor, SecretPicker

SMALL = (80, 24)


def copy_recipe(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / source.name
    shutil.copyfile(source, target)
    return target


def editor(screen: Screen, path: str) -> FieldEditor:
    for found in screen.query(FieldEditor):
        if found.path == path:
            return found
    raise AssertionError(f"no editor for {path} on this stage")


def message(ed: FieldEditor) -> str:
    line = ed.query_one(".field-message")
    return str(line.content) if line.display else ""  # type: ignore[attr-defined]


def box(ed: FieldEditor) -> Input:
    """The text box of a field (the name box of a secret picker)."""
    if ed.query(SecretPicker):
        return ed.query_one(SecretPicker).target_input
    return ed.query_one(".field-input", Input)


def choice(ed: FieldEditor) -> Select[str]:
    if ed.query(SecretPicker):
        return ed.query_one(SecretPicker).scheme_select
    return ed.query_one(".field-select", Select)


async def open_flow(pilot: Pilot, flow: str) -> FlowScreen:
    """The start screen's flow list, as a person picks it (the open recipe's flow opens with it)."""
    flow_list = pilot.app.screen.query_one("#flow-list", OptionList)
    flow_list.highlighted = flow_list.get_option_index(flow)
    flow_list.focus()
    await pilot.press("enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, FlowScreen) and screen.flow == flow
    return screen


async def show_stage(pilot: Pilot, stage_id: str) -> None:
    stage_list = pilot.app.screen.query_one("#stage-list", OptionList)
    stage_list.highlighted = stage_list.get_option_index(stage_id)
    await pilot.pause()


async def type_in(pilot: Pilot, ed: FieldEditor, text: str, *, then: str | None = None) -> None:
    """Focus the field's box (its text is selected, so typing replaces it), type ``text``, then press ``then``."""
    target = box(ed)
    target.focus()
    await pilot.pause()
    target.select_all()
    await pilot.press("backspace", *text) if text else await pilot.press("backspace")
    if then:
        await pilot.press(then)
    await pilot.pause()
