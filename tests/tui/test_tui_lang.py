"""English/Chinese: the binding and --lang re-render every text and keep the selection."""

from __future__ import annotations

from textual.widgets import OptionList
from tui_testlib import CAI_RECIPE, SIZE, footer_text, texts

from cai_tui.tui.app import make_app
from cai_tui.tui.screens.flow import FlowScreen
from cai_tui.tui.screens.start import StartScreen


async def test_switch_turns_titles_chinese_and_back_keeping_the_selection(flows) -> None:
    stages = flows["cai"].stages
    app = make_app(recipe_path=CAI_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter", "n", "n", "n")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FlowScreen)
        stage_list = screen.query_one("#stage-list", OptionList)
        detail = screen.query_one("#stage-detail")
        selected = stages[3]
        assert stage_list.highlighted == 3

        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.lang == "zh"
        assert stage_list.highlighted == 3
        shown = texts(detail)
        assert selected.title.zh in shown and selected.title.en not in shown
        assert f"第 {selected.order} 阶段" in shown and "对应步骤：" in shown
        for field in selected.fields:
            assert field.label.zh in shown
        prompts = [str(o.prompt) for o in stage_list.options]
        assert all(s.title.zh in p for s, p in zip(stages, prompts, strict=True))
        assert not any(s.title.en in p for s, p in zip(stages, prompts, strict=True) if s.title.en != s.title.zh)
        assert stage_list.border_title == "阶段"
        footer = footer_text(app)
        assert "返回" in footer and "下一阶段" in footer and "English" in footer and "Back" not in footer
        assert "阿里云" in screen.sub_title

        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.lang == "en"
        assert stage_list.highlighted == 3
        shown = texts(detail)
        assert selected.title.en in shown and selected.title.zh not in shown
        assert "Back" in footer_text(app) and "中文" in footer_text(app)


async def test_the_screen_below_follows_the_switch(flows) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()
        await pilot.press("ctrl+l")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        flow_list = app.screen.query_one("#flow-list", OptionList)
        assert flow_list.highlighted == 1
        assert "openEuler kata-virtcca 机密容器" in str(flow_list.options[1].prompt)
        assert "个阶段" in str(flow_list.options[0].prompt)
        assert "尚未保存为文件" in texts(app.screen)  # choosing the flow started a recipe from its example
        assert "退出" in footer_text(app)


async def test_lang_option_starts_in_chinese(flows) -> None:
    app = make_app(lang="zh")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "选择要执行的部署流程" in texts(app.screen)
        await pilot.press("enter")
        await pilot.pause()
        first = flows["cai"].stages[0]
        shown = texts(app.screen.query_one("#stage-detail"))
        assert first.title.zh in shown and first.help.zh.split("，")[0] in shown
        assert "English" in footer_text(app)
