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
