"""A loaded recipe's values in the stage form, secrets as their references only; no values without a recipe of the
flow."""

from __future__ import annotations

import pytest
from form_testlib import editor, message, open_flow
from textual.widgets import Input, OptionList
from tui_testlib import CAI_RECIPE, KATA_RECIPE, SIZE, svg_text, texts

from cai_tui.tui.app import make_app
from cai_tui.tui.screens.flow import FlowScreen
from cai_tui.tui.widgets.field_editor import FieldEditor
from cai_tui.tui.widgets.field_view import FieldView

SECRET_VALUES = {"OSS_ACCESS_KEY_ID": "LTAI5tLeakedKeyId0000", "OSS_ACCESS_KEY_SECRET": "leaked-secret-value-0000"}


def field_value(screen, path: str) -> str:
    """What the field's editor holds, then what is said under it (a secret's line names the reference)."""
    ed = editor(screen, path)
    return " ".join(part for part in (ed.text, message(ed)) if part)


def everything(screen) -> str:
    """Every text on the screen, the editors' boxes included."""
    return texts(screen) + "\n" + "\n".join(box.value for box in screen.query(Input))


async def show_stage(pilot, stage_id: str) -> None:
    stage_list = pilot.app.screen.query_one("#stage-list", OptionList)
    stage_list.highlighted = stage_list.get_option_index(stage_id)
    await pilot.pause()


async def test_values_and_secret_references_appear(monkeypatch: pytest.MonkeyPatch, flows, tmp_path) -> None:
    for name, value in SECRET_VALUES.items():
        monkeypatch.setenv(name, value)
    app = make_app(recipe_path=CAI_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_flow(pilot, "cai")
        await show_stage(pilot, "model-upload")
        assert field_value(screen, "oss.bucket_path") == "examplebucket:/qwen-encrypted/"
        assert field_value(screen, "oss.access_key_id").startswith("env:OSS_ACCESS_KEY_ID")
        assert "a reference; the value is read only when used" in field_value(screen, "oss.access_key_id")
        assert field_value(screen, "oss.access_key_secret").startswith("env:OSS_ACCESS_KEY_SECRET")
        key = editor(screen, "oss.access_key_id")
        screen.query_one("#stage-detail").scroll_to_widget(key, animate=False, top=True)
        await pilot.pause()
        shot = tmp_path / "upload.svg"
        app.save_screenshot(str(shot))
        assert "env:OSS_ACCESS_KEY_ID" in svg_text(shot)

        await show_stage(pilot, "model-encrypt")
        assert field_value(screen, "model.password").startswith("file:~/cachefs-password")
        assert field_value(screen, "model.encryption_method") == "gocryptfs"
        engine = editor(screen, "model.gocryptfs_engine")  # not in the file: the model's default, marked so
        assert engine.text == "native" and engine.is_default and "(default)" in texts(engine)
        assert field_value(screen, "model.sam.key") == "" and not editor(screen, "model.sam.key").is_default

        seen = []
        for spec in flows["cai"].stages:  # nothing anywhere shows a resolved secret
            await show_stage(pilot, spec.id)
            seen.append(everything(screen))
        shown = "\n".join(seen) + svg_text(shot)
        for value in SECRET_VALUES.values():
            assert value not in shown


async def test_no_recipe_shows_no_values() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.push_screen(FlowScreen("cai"))
        await pilot.pause()
        views = list(app.screen.query(FieldView))
        assert views and not any(v.query(".field-value") for v in views)
        assert not app.screen.query(FieldEditor)


async def test_recipe_of_the_other_flow_does_not_crash_or_leak_values(flows) -> None:
    app = make_app(recipe_path=KATA_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.push_screen(FlowScreen("cai"))  # cai, not the recipe's flow
        await pilot.pause()
        screen = app.screen
        assert "is for flow kata-virtcca; its values are not shown" in texts(screen.query_one("#flow-note"))
        for spec in flows["cai"].stages:
            await show_stage(pilot, spec.id)
            assert not screen.query(".field-value") and not screen.query(FieldEditor)
        await pilot.press("escape")
        await pilot.pause()
        await open_flow(pilot, "kata-virtcca")
        await show_stage(pilot, "cni-network")
        assert field_value(app.screen, "cni.subnet") == "10.88.0.0/16"
