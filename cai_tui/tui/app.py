"""The app and its factory: the CLI and the tests build the very same app through :func:`make_app`."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen

from ..resources import data_dir
from .i18n import LANGS, other_lang, relabel_bindings, t
from .screens.start import StartScreen
from .state import WizardState

if TYPE_CHECKING:
    from ..stages import FlowStages


def css_path() -> Path:
    """The main stylesheet ships in assets/ (a checkout's top-level folder, or inside the wheel)."""
    return data_dir("assets") / "tui" / "app.tcss"


def css_paths() -> list[str | PurePath]:
    """app.tcss first, then each screen's own stylesheet in assets/tui/ (by name)."""
    main = css_path()
    return [main, *sorted(p for p in main.parent.glob("*.tcss") if p != main)]


def keymap_file() -> Path:
    from ..paths import config_dir

    return config_dir() / "keymap.toml"


def load_keymap(path: Path | None = None) -> tuple[dict[str, str], list[str]]:
    """Binding id → keys from keymap.toml (``[keys]`` table, e.g. ``run_stage = "f5"``); problems as messages."""
    import tomllib

    path = path or keymap_file()
    if not path.is_file():
        return {}, []
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        return {}, [f"{path}: not read ({e}); the default keys apply"]
    keys = doc.get("keys", {})
    if not isinstance(keys, dict) or not all(isinstance(v, str) and v for v in keys.values()):
        return {}, [f'{path}: [keys] must map binding ids to key names, e.g. run_stage = "f5"; the default keys apply']
    return dict(keys), []


class CaiTuiApp(App[int]):
    ENABLE_COMMAND_PALETTE = True
    COMMAND_PALETTE_BINDING = "ctrl+p"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+l", "toggle_lang", "中文", id="lang"),
        Binding("ctrl+s", "save", "Save", id="save"),
        Binding("ctrl+t", "toggle_theme", "Light/dark", id="theme", show=False),
    ]

    lang: reactive[str] = reactive("en", init=False)

    def __init__(self, state: WizardState, lang: str = "en") -> None:
        super().__init__(css_path=css_paths())
        self.state = state
        self.set_reactive(CaiTuiApp.lang, lang)
        keymap, self.keymap_problems = load_keymap()
        if keymap:
            self.set_keymap(keymap)

    def on_mount(self) -> None:
        self.title = t("app_title", self.lang)
        relabel_bindings(self, self.lang)
        self.push_screen(StartScreen())
        for problem in self.keymap_problems:
            self.notify(problem, severity="warning", timeout=10)

    async def on_unmount(self) -> None:
        await self.state.aclose()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette offers the current screen's commands (its footer bindings), then the app's own."""
        seen: set[str] = set()
        for _key, binding, enabled, tooltip in screen.active_bindings.values():
            if not enabled or binding.action in seen or binding.action in ("command_palette",):
                continue
            seen.add(binding.action)
            target = screen if _has_action(screen, binding.action) else self
            yield SystemCommand(
                binding.description or binding.action,
                tooltip or binding.tooltip or f"key: {binding.key}",
                partial(target.run_action, binding.action),
            )
        yield from super().get_system_commands(screen)

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def action_save(self) -> None:
        """Ctrl+S anywhere: save the recipe being edited (Save as… when it has no file yet)."""
        from ..recipe import RecipeError

        state = self.state
        if state.draft is None:
            self.notify(t("save_nothing", self.lang), severity="warning")
            return
        if state.recipe_path is None:
            from .screens.recipe_files import SaveAsScreen

            self.push_screen(SaveAsScreen())
            return
        try:
            written = state.save()
        except (RecipeError, OSError) as e:
            self.notify(str(e), title=t("save_failed", self.lang), severity="error", timeout=10)
            return
        self.notify(t("saved", self.lang, path=written))

    def watch_lang(self, lang: str) -> None:
        self.title = t("app_title", lang)
        relabel_bindings(self, lang)  # screens relabel their own (LocalizedScreen watches app.lang)

    def action_toggle_lang(self) -> None:
        self.lang = other_lang(self.lang)


def _has_action(node: Any, action: str) -> bool:
    return callable(getattr(node, f"action_{action}", None))


def make_app(
    *,
    lang: str = "en",
    recipe_path: str | Path | None = None,
    lab_info: dict[str, Any] | None = None,
    flows: dict[str, FlowStages] | None = None,
    lab: Any | None = None,
) -> CaiTuiApp:
    """Build the wizard. ``flows`` replaces the shipped stage specs (tests use it for odd specs); ``lab`` is the
    running Lab under ``--lab`` (its fault switches are offered in the UI)."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, not {lang!r}")
    return CaiTuiApp(WizardState.create(recipe_path, lab_info, flows, lab=lab), lang=lang)


def run_app(
    *,
    lang: str = "en",
    recipe_path: str | Path | None = None,
    lab_info: dict[str, Any] | None = None,
    lab: Any | None = None,
) -> int:
    app = make_app(lang=lang, recipe_path=recipe_path, lab_info=lab_info, lab=lab)
    app.run()
    return app.return_code or 0
