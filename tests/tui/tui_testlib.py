"""Helpers for the Pilot tests: one fixed terminal size and plain-text views of what the screens show."""

from __future__ import annotations

import html
import re
from pathlib import Path

from textual.app import App
from textual.widget import Widget
from textual.widgets import OptionList, Static

from cai_tui.stages.spec import StageSpec

ROOT = Path(__file__).resolve().parents[2]
CAI_RECIPE = ROOT / "recipes" / "cai-qwen2.5-3b-beijing.yaml"
KATA_RECIPE = ROOT / "recipes" / "kata-virtcca-qwen1.5-1.8b.yaml"
SIZE = (120, 40)


def texts(root: Widget) -> str:
    """Every Static and OptionList prompt under ``root``, one per line (what the widgets hold, scrolled or not)."""
    parts: list[str] = []
    for widget in [root, *root.query("*")]:
        if isinstance(widget, Static):
            parts.append(str(widget.content))
        elif isinstance(widget, OptionList):
            parts.extend(str(option.prompt) for option in widget.options)
    return "\n".join(parts)


def footer_text(app: App) -> str:
    return " ".join(b.description for (_, b, _, _) in app.screen.active_bindings.values() if b.show)


def svg_text(path: Path) -> str:
    """The characters of a saved SVG screenshot, spaces restored."""
    raw = path.read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", raw)).replace("\xa0", " ")


def option_ids(widget: OptionList) -> list[str | None]:
    return [option.id for option in widget.options]


def stage(data: dict) -> StageSpec:
    return StageSpec.model_validate(data)
