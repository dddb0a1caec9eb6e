"""A loaded recipe's values in the field list: read-only, secrets as their references only."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList
from tui_testlib import CAI_RECIPE, KATA_RECIPE, SIZE, svg_text, texts

from cai_tui.tui.app import make_app
from cai_tui.tui.widgets.field_view import FieldView

SECRET_VALUES = {"OSS_ACCESS_KEY_ID": "LTAI5tLeakedKeyId0000", "OSS_ACCESS_KEY_SECRET": "leaked-secret-value-0000"}


def field_value(screen, path: str) -> str:
    for view in screen.query(FieldView):
        if view.spec.path == path:
            values = view.query(".field-value")
            return texts(values.first()) if values else ""
    raise AssertionError(f"no field {path} shown")


async def show_stage(pilot, stage_id: str) -> None:
    stage_list = pilot.app.screen.query_one("#stage-list", OptionList)
    stage_list.highlighted = stage_list.get_option_index(stage_id)
    await pilot.pause()


async def test_values_and_secret_references_appear(monkeypatch: pytest.MonkeyPatch, flows, tmp_path) -> None:
    for name, value in SECRET_VALUES.items():
        monkeypatch.setenv(name, value)
    app = make_app(recipe_path=CAI_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        await show_stage(pilot, "model-upload")
        assert field_value(screen, "oss.bucket_path") == "examplebucket:/qwen-encrypted/"
        assert field_value(screen, "oss.access_key_id").startswith("env:OSS_ACCESS_KEY_ID")
        assert "secret reference" in field_value(screen, "oss.access_key_id")
        assert field_value(screen, "oss.access_key_secret").startswith("env:OSS_ACCESS_KEY_SECRET")
        shot = tmp_path / "upload.svg"
        app.save_screenshot(str(shot))
        assert "env:OSS_ACCESS_KEY_ID" in svg_text(shot)

        await show_stage(pilot, "model-encrypt")
        assert field_value(screen, "model.password").startswith("file:~/cachefs-password")
        assert field_value(screen, "model.encryption_method") == "gocryptfs"
        assert field_value(screen, "model.gocryptfs_engine") == "native  (default)"  # not in the file
        assert field_value(screen, "model.sam.key").endswith("not set")

        seen = []
        for spec in flows["cai"].stages:  # nothing anywhere shows a resolved secret
            await show_stage(pilot, spec.id)
            seen.append(texts(screen))
        everything = "\n".join(seen) + svg_text(shot)
        for value in SECRET_VALUES.values():
            assert value not in everything


async def test_no_recipe_shows_no_values() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        views = list(app.screen.query(FieldView))
        assert views and not any(v.query(".field-value") for v in views)


async def test_recipe_of_the_other_flow_does_not_crash_or_leak_values(flows) -> None:
    app = make_app(recipe_path=KATA_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#flow-list", OptionList).highlighted = 0  # cai, not the recipe's flow
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert "is for flow kata-virtcca; its values are not shown" in texts(screen.query_one("#flow-note"))
        for spec in flows["cai"].stages:
            await show_stage(pilot, spec.id)
            assert not screen.query(".field-value")
        await pilot.press("escape", "down", "enter")
        await pilot.pause()
        await show_stage(pilot, "cni-network")
        assert field_value(app.screen, "cni.subnet") == "10.88.0.0/16"
