"""The app and its factory: the CLI and the tests build the very same app through :func:`make_app`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive

from ..resources import data_dir
from ..stages import FlowStages
from .i18n import LANGS, other_lang, relabel_bindings, t
from .screens.start import StartScreen
from .state import WizardState


def css_path() -> Path:
    """The stylesheet ships in assets/ (a checkout's top-level folder, or inside the wheel)."""
    return data_dir("assets") / "tui" / "app.tcss"


class CaiTuiApp(App[int]):
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+l", "toggle_lang", "中文", id="lang"),
    ]

    lang: reactive[str] = reactive("en", init=False)

    def __init__(self, state: WizardState, lang: str = "en") -> None:
        super().__init__(css_path=css_path())
        self.state = state
        self.set_reactive(CaiTuiApp.lang, lang)

    def on_mount(self) -> None:
        self.title = t("app_title", self.lang)
        relabel_bindings(self, self.lang)
        self.push_screen(StartScreen())

    def watch_lang(self, lang: str) -> None:
        self.title = t("app_title", lang)
        relabel_bindings(self, lang)  # screens relabel their own (LocalizedScreen watches app.lang)

    def action_toggle_lang(self) -> None:
        self.lang = other_lang(self.lang)


def make_app(
    *,
    lang: str = "en",
    recipe_path: str | Path | None = None,
    lab_info: dict[str, Any] | None = None,
    flows: dict[str, FlowStages] | None = None,
) -> CaiTuiApp:
    """Build the wizard. ``flows`` replaces the shipped stage specs (tests use it for odd specs)."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, not {lang!r}")
    return CaiTuiApp(WizardState.create(recipe_path, lab_info, flows), lang=lang)


def run_app(*, lang: str = "en", recipe_path: str | Path | None = None, lab_info: dict[str, Any] | None = None) -> int:
    app = make_app(lang=lang, recipe_path=recipe_path, lab_info=lab_info)
    app.run()
    return app.return_code or 0
