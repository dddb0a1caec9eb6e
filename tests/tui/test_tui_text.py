"""Reflowing the specs' hard-wrapped block scalars."""

from __future__ import annotations

from cai_tui.tui.text import command_lines, reflow


def test_reflow_joins_lines_and_keeps_paragraphs() -> None:
    assert reflow("one line\ncontinues here\n\nnext paragraph\n") == "one line continues here\n\nnext paragraph"


def test_reflow_keeps_list_items() -> None:
    assert reflow("steps:\n- first\n- second\n") == "steps:\n- first\n- second"


def test_reflow_chinese_needs_no_space() -> None:
    assert (
        reflow("模型在上云之前，\n解密密钥之后\n下发。\nQwen 模型\nGPU")
        == "模型在上云之前，解密密钥之后下发。Qwen 模型 GPU"
    )


def test_command_lines_one_command_per_line() -> None:
    assert command_lines("a && b  &&  c") == "a\n  && b\n  && c"


def test_every_binding_and_flow_has_both_languages(flows) -> None:
    from cai_tui.tui.app import CaiTuiApp
    from cai_tui.tui.i18n import STRINGS
    from cai_tui.tui.screens import FlowScreen, StartScreen

    ids = [b.id for cls in (CaiTuiApp, StartScreen, FlowScreen) for b in cls.BINDINGS if hasattr(b, "id") and b.id]
    assert {"quit", "lang", "back", "next", "prev"} <= set(ids)
    for key in [*ids, *(f"flow.{flow}" for flow in flows)]:
        en, zh = STRINGS[key]
        assert en and zh and en != zh, key
