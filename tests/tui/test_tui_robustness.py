"""Odd stage specs: no fields, very long texts, manual checks, artifacts, an empty flow."""

from __future__ import annotations

from form_testlib import editor
from textual.widgets import OptionList
from tui_testlib import CAI_RECIPE, SIZE, stage, svg_text, texts

from cai_tui.stages import FlowStages
from cai_tui.tui.app import make_app
from cai_tui.tui.screens.flow import FlowScreen

LONG_WORD = "x" * 3000
LONG = ("A very long paragraph of guidance that keeps going. " * 200) + LONG_WORD


def odd_flows() -> dict[str, FlowStages]:
    bare = stage(
        {
            "id": "bare",
            "title": {"en": "Nothing to fill in", "zh": "无需填写"},
            "help": {"en": "Only a manual step.", "zh": "只有手动步骤。"},
            "steps": [
                {
                    "covers": "CAI-0",
                    "guidance": {"en": "Read the document.", "zh": "阅读文档。"},
                    "input": "none",
                    "do": [{"artifact": "cai-env"}],
                    "verify": {"manual": {"en": "only a person can tell", "zh": "只能人工确认"}},
                }
            ],
            "flow": "cai",
            "order": 1,
        }
    )
    long = stage(
        {
            "id": "long",
            "title": {"en": "T" * 400, "zh": "长" * 400},
            "help": {"en": LONG, "zh": "很长的说明。" * 500},
            "fields": [
                {
                    "path": "oss.bucket_path",
                    "label": {"en": "L" * 300, "zh": "标" * 300},
                    "help": {"en": LONG, "zh": LONG},
                }
            ],
            "steps": [
                {
                    "covers": "CAI-1.1",
                    "guidance": {"en": LONG, "zh": LONG},
                    "input": ["oss.bucket_path"],
                    "do": [{"command": " && ".join([f"echo {LONG_WORD}"] * 20), "where": "instance"}],
                    "verify": ["oss.bucket"],
                }
            ],
            "flow": "cai",
            "order": 2,
        }
    )
    return {
        "cai": FlowStages("cai", [bare, long]),
        "kata-virtcca": FlowStages("kata-virtcca", []),
        "new-flow": FlowStages("new-flow", []),  # no title in i18n yet: shown by its id
    }


async def test_odd_specs_render_in_both_languages(tmp_path) -> None:
    app = make_app(recipe_path=CAI_RECIPE, flows=odd_flows())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FlowScreen)
        detail = screen.query_one("#stage-detail")
        shown = texts(detail)
        assert "This stage asks for no input." in shown
        assert "Input: none" in shown
        assert "generates cai-env" in shown
        assert "Verify: manual — only a person can tell" in shown
        await pilot.press("n")
        await pilot.pause()
        assert "T" * 400 in texts(detail)
        bucket = editor(screen, "oss.bucket_path")  # the recipe's value in its editor beside a 300-char label
        assert bucket.text == "examplebucket:/qwen-encrypted/" and "L" * 300 in texts(bucket)
        detail.focus()
        await pilot.press("end")
        await pilot.pause()
        assert detail.scroll_y > 0
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert "长" * 400 in texts(detail)
        app.save_screenshot(str(tmp_path / "long.svg"))
        assert "第 2 阶段，共 2 个" in texts(detail)
        assert "标" * 300 in texts(editor(screen, "oss.bucket_path"))
        assert "长长长" in svg_text(tmp_path / "long.svg")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.query_one("#flow-list", OptionList).highlighted == 0


async def test_a_flow_without_stages_opens_empty() -> None:
    app = make_app(flows=odd_flows())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FlowScreen) and screen.flow == "kata-virtcca"
        assert screen.query_one("#stage-list", OptionList).option_count == 0
        assert screen.check_action("next", ()) is None and screen.check_action("prev", ()) is None
        await pilot.press("n", "p")
        await pilot.pause()
        assert texts(screen.query_one("#stage-detail")) == ""
        await pilot.press("escape", "down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, FlowScreen) and app.screen.flow == "new-flow"
        assert app.screen.sub_title == "new-flow"
