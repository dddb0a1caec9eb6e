"""Recipe files from the wizard: Save as…, Open…, the headless replay command, and a yes/no question.

Every dialog follows the app's language and keeps what was typed when it refuses; a refusal says what was wrong
and what to do. A second press confirms what needs confirming (replacing a file, discarding unsaved changes), so
nothing is overwritten or lost by one key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ..i18n import add_strings, relabel_bindings, t

if TYPE_CHECKING:
    from ..app import CaiTuiApp
    from ..state import WizardState

add_strings(
    {
        # bindings
        "files.cancel": ("Cancel", "取消"),
        "files.save": ("Save", "保存"),
        "files.open": ("Open", "打开"),
        "files.close": ("Close", "关闭"),
        "files.copy": ("Copy command", "复制命令"),
        "files.copy_plan": ("Copy --plan command", "复制 --plan 命令"),
        "files.yes": ("Yes", "是"),
        "files.no": ("No", "否"),
        # save as
        "saveas.title": ("Save the recipe as", "配方另存为"),
        "saveas.intro": (
            "A YAML file; secrets stay references (env:, file:, keyring:, prompt), never values.",
            "YAML 文件；密钥只保存引用（env:、file:、keyring:、prompt），不保存其值。",
        ),
        "saveas.label": ("File", "文件"),
        "saveas.exists": (
            "{path} already exists. Save again to replace it (the old file is kept as {bak}), or change the name.",
            "{path} 已存在。再次保存将替换它（原文件保留为 {bak}），或修改文件名。",
        ),
        "saveas.is_dir": (
            "{path} is a folder; add a file name, e.g. {example}",
            "{path} 是文件夹；请加上文件名，例如 {example}",
        ),
        "saveas.no_parent": (
            "The folder {parent} does not exist; create it first or choose another folder.",
            "文件夹 {parent} 不存在；请先创建，或选择其他文件夹。",
        ),
        "files.need_path": ("Give a file path.", "请填写文件路径。"),
        # open
        "open.title": ("Open a recipe", "打开配方"),
        "open.intro": (
            "The path of a recipe file (YAML), e.g. one saved here before or made with cai-tui recipe new.",
            "配方文件（YAML）的路径，例如之前保存的配方，或用 cai-tui recipe new 生成的配方。",
        ),
        "open.placeholder": ("path/to/recipe.yaml", "路径/配方.yaml"),
        "open.discard": (
            "The recipe being edited has unsaved changes. Open again to discard them, or Cancel and save (Ctrl+S).",
            "当前编辑的配方有未保存的修改。再次打开将丢弃这些修改；或取消后先保存（Ctrl+S）。",
        ),
        "opened": (
            "Opened the recipe {name} (flow {flow}) from {path}",
            "已打开配方 {name}（流程 {flow}），文件 {path}",
        ),
        # replay
        "replay.title": ("Replay headlessly", "无界面重放"),
        "replay.intro": (
            "cai-tui replay does the same work as the wizard for this recipe, through the same engine, without the"
            " screens: for CI, a second machine or a rerun. Look at its plan first with --plan (changes nothing),"
            " then run it; it asks once before applying (--yes in scripts).",
            "cai-tui replay 会用同一引擎、不经界面，为此配方完成与向导相同的工作：适用于 CI、另一台机器或重跑。"
            "请先用 --plan 查看计划（不做任何修改），再执行；执行前会确认一次（脚本中用 --yes）。",
        ),
        "replay.whole": ("The whole recipe:", "整个配方："),
        "replay.stage": ("Only the stage {stage}:", "仅阶段 {stage}："),
        "replay.plan": ("Its plan first:", "先查看计划："),
        "replay.unsaved": (
            "The recipe has no file yet: save it first (Ctrl+S); the command names the file.",
            "配方尚未保存为文件：请先保存（Ctrl+S），命令中需要文件名。",
        ),
        "replay.dirty": (
            "The recipe has unsaved changes: save (Ctrl+S) so the replay reads what you see here.",
            "配方有未保存的修改：请先保存（Ctrl+S），以便重放读取到当前内容。",
        ),
        "replay.copied": ("Copied: {command}", "已复制：{command}"),
        "replay.keys": (
            "c copies the command · p the --plan command · Esc closes",
            "c 复制命令 · p 复制 --plan 命令 · Esc 关闭",
        ),
        # confirm
        "confirm.title": ("Please confirm", "请确认"),
    }
)

R = TypeVar("R")


class RecipeDialog(ModalScreen[R]):
    """A modal that follows the app's language (footer and texts) like LocalizedScreen does.

    A modal screen hides the app's bindings, so Ctrl+L (the language) is bound here again."""

    BINDINGS = [Binding("ctrl+l", "app.toggle_lang", "中文", id="lang", show=False)]

    @property
    def state(self) -> WizardState:
        return self.wizard.state

    @property
    def wizard(self) -> CaiTuiApp:
        from ..app import CaiTuiApp

        assert isinstance(self.app, CaiTuiApp)
        return self.app

    @property
    def lang(self) -> str:
        return str(getattr(self.app, "lang", "en"))

    def on_mount(self) -> None:
        self.watch(self.app, "lang", self._lang_changed, init=True)

    def _lang_changed(self, lang: str) -> None:
        relabel_bindings(self, lang)
        self.apply_lang(lang)

    def apply_lang(self, lang: str) -> None:
        """Put every text of the dialog in ``lang``."""

    def show_error(self, message: str) -> None:
        error = self.query_one(".dialog-error", Static)
        error.update(Content.styled(message, "$text-error") if message else "")
        error.display = bool(message)

    @property
    def error(self) -> str:
        return str(self.query_one(".dialog-error", Static).content)

    def action_cancel(self) -> None:
        self.dismiss(None)


def typed_path(text: str) -> Path | None:
    """An absolute path for what was typed (``~`` expanded, relative to the working folder); None when empty."""
    text = text.strip()
    if not text:
        return None
    return Path(os.path.abspath(Path(text).expanduser()))


def remember_recipe(app: Any, path: Path, flow: str, name: str) -> None:
    """Add to the recent recipes; a list that cannot be written is a warning, not a failure."""
    from ..recent import remember

    for warning in remember(path, flow, name):
        app.notify(warning, severity="warning", timeout=8)


class SaveAsScreen(RecipeDialog[Path | None]):
    """Ask where to save the open recipe and save it there (dismissed with the path written, or None)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="files.cancel"),
        Binding("ctrl+s", "save", "Save", id="files.save"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._confirmed: Path | None = None  # an existing file the user chose to replace

    def compose(self) -> ComposeResult:
        with Vertical(id="saveas-box", classes="dialog"):
            yield Static(id="saveas-intro", classes="dialog-intro")
            yield Label(id="saveas-label")
            yield Input(self._default_path(), id="saveas-path")
            yield Static(classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("", variant="primary", id="saveas-ok")
                yield Button("", id="saveas-cancel")

    def _default_path(self) -> str:
        current = self.state.recipe_path
        if current is not None:
            return str(current)
        return str(Path.cwd() / f"{self.state.recipe_flow or 'cai'}-recipe.yaml")

    def on_mount(self) -> None:
        super().on_mount()
        self.show_error("")
        self.query_one("#saveas-path", Input).focus()

    def apply_lang(self, lang: str) -> None:
        self.query_one("#saveas-box", Vertical).border_title = t("saveas.title", lang)
        self.query_one("#saveas-intro", Static).update(Content.styled(t("saveas.intro", lang), "$text-muted"))
        self.query_one("#saveas-label", Label).update(t("saveas.label", lang))
        self.query_one("#saveas-ok", Button).label = t("files.save", lang)
        self.query_one("#saveas-cancel", Button).label = t("files.cancel", lang)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._confirmed = None  # a confirmation was for the path shown then
        self.show_error("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "saveas-ok":
            self.action_save()
        else:
            self.action_cancel()

    def refusal(self, path: Path | None) -> str | None:
        """Why ``path`` cannot be saved to as it stands (an existing file needs a second Save), or None."""
        lang = self.lang
        if path is None:
            return t("files.need_path", lang)
        if path.is_dir():
            return t("saveas.is_dir", lang, path=path, example=path / f"{self.state.recipe_flow or 'cai'}-recipe.yaml")
        if not path.parent.is_dir():
            return t("saveas.no_parent", lang, parent=path.parent)
        if path.exists() and path != self._confirmed and path != self.state.recipe_path:
            self._confirmed = path
            return t("saveas.exists", lang, path=path, bak=path.name + ".bak")
        return None

    def action_save(self) -> None:
        from ...recipe import RecipeError

        path = typed_path(self.query_one("#saveas-path", Input).value)
        why = self.refusal(path)
        if why is not None:
            self.show_error(why)
            return
        assert path is not None
        try:
            written = self.state.save(path)
        except (RecipeError, OSError) as e:
            self.show_error(f"{t('save_failed', self.lang)}: {e}")
            return
        loaded = self.state.loaded
        if loaded is not None:
            remember_recipe(self.app, written, loaded.recipe.flow, loaded.recipe.name)
        self.app.notify(t("saved", self.lang, path=written))
        self.dismiss(written)


class OpenRecipeScreen(RecipeDialog[Path | None]):
    """Ask for a recipe file and open it (dismissed with its path, or None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="files.cancel")]

    def __init__(self, path: str = "") -> None:
        super().__init__()
        self._initial = path
        self._discard_ok = False  # the user confirmed dropping unsaved changes

    def compose(self) -> ComposeResult:
        with Vertical(id="open-box", classes="dialog"):
            yield Static(id="open-intro", classes="dialog-intro")
            yield Input(self._initial, id="open-path")
            yield Static(classes="dialog-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("", variant="primary", id="open-ok")
                yield Button("", id="open-cancel")

    def on_mount(self) -> None:
        super().on_mount()
        self.show_error("")
        self.query_one("#open-path", Input).focus()

    def apply_lang(self, lang: str) -> None:
        self.query_one("#open-box", Vertical).border_title = t("open.title", lang)
        self.query_one("#open-intro", Static).update(Content.styled(t("open.intro", lang), "$text-muted"))
        self.query_one("#open-path", Input).placeholder = t("open.placeholder", lang)
        self.query_one("#open-ok", Button).label = t("files.open", lang)
        self.query_one("#open-cancel", Button).label = t("files.cancel", lang)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.show_error("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_open()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "open-ok":
            self.action_open()
        else:
            self.action_cancel()

    def action_open(self) -> None:
        from ...recipe import RecipeError, load_recipe

        path = typed_path(self.query_one("#open-path", Input).value)
        if path is None:
            self.show_error(t("files.need_path", self.lang))
            return
        try:
            load_recipe(path)  # the loader's own words for a missing file, a folder, bad YAML or bad answers
        except RecipeError as e:
            self.show_error(str(e))
            return
        if unsaved_changes(self.state) and not self._discard_ok:
            self._discard_ok = True
            self.show_error(t("open.discard", self.lang))
            return
        problems = self.state.open_recipe(path)
        if problems:  # changed on disk between the two reads
            self.show_error("\n".join(problems))
            return
        loaded = self.state.loaded
        assert loaded is not None
        remember_recipe(self.app, path, loaded.recipe.flow, loaded.recipe.name)
        self.app.notify(t("opened", self.lang, name=loaded.recipe.name, flow=loaded.recipe.flow, path=path))
        self.dismiss(path)


def unsaved_changes(state: WizardState) -> bool:
    """Whether the recipe being edited has changes that are in no file."""
    draft = state.draft
    return draft is not None and draft.dirty


class ReplayCommandScreen(RecipeDialog[None]):
    """The exact ``cai-tui replay …`` command for the open recipe (and for one stage when given), to copy."""

    BINDINGS = [
        Binding("escape", "cancel", "Close", id="files.close"),
        Binding("c", "copy", "Copy command", id="files.copy"),
        Binding("p", "copy_plan", "Copy --plan command", id="files.copy_plan"),
    ]

    def __init__(self, stage_id: str | None = None) -> None:
        super().__init__()
        self.stage_id = stage_id

    @property
    def command(self) -> str:
        """The command ``c`` copies: the stage's when one was given, else the whole recipe's."""
        return self.state.replay_command(self.stage_id)

    @property
    def plan_command(self) -> str:
        return self.command + " --plan"

    def compose(self) -> ComposeResult:
        with Vertical(id="replay-box", classes="dialog"):
            yield Static(id="replay-intro", classes="dialog-intro")
            yield Static(id="replay-note")
            yield Static(id="replay-commands")
            yield Static(id="replay-keys")
            with Horizontal(classes="dialog-buttons"):
                yield Button("", variant="primary", id="replay-copy")
                yield Button("", id="replay-close")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#replay-copy", Button).focus()

    def apply_lang(self, lang: str) -> None:
        state = self.state
        self.query_one("#replay-box", Vertical).border_title = t("replay.title", lang)
        self.query_one("#replay-intro", Static).update(Content.styled(t("replay.intro", lang), "$text-muted"))
        note = ""
        if state.recipe_path is None:
            note = t("replay.unsaved", lang)
        elif unsaved_changes(state):
            note = t("replay.dirty", lang)
        note_widget = self.query_one("#replay-note", Static)
        note_widget.update(Content.styled(note, "$text-warning"))
        note_widget.display = bool(note)
        parts: list[str | tuple[str, str] | Content] = []
        if self.stage_id is not None:
            parts += [(t("replay.stage", lang, stage=self.stage_id), "bold"), "\n", (self.command, "$text-accent")]
            parts += ["\n\n", (t("replay.plan", lang), "bold"), "\n", (self.plan_command, "$text-accent")]
        else:
            parts += [(t("replay.plan", lang), "bold"), "\n", (self.plan_command, "$text-accent")]
            parts += ["\n\n", (t("replay.whole", lang), "bold"), "\n", (self.command, "$text-accent")]
        self.query_one("#replay-commands", Static).update(Content.assemble(*parts))
        self.query_one("#replay-keys", Static).update(Content.styled(t("replay.keys", lang), "$text-muted"))
        self.query_one("#replay-copy", Button).label = t("files.copy", lang)
        self.query_one("#replay-close", Button).label = t("files.close", lang)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "replay-copy":
            self.action_copy()
        else:
            self.action_cancel()

    def action_copy(self) -> None:
        self._copy(self.command)

    def action_copy_plan(self) -> None:
        self._copy(self.plan_command)

    def _copy(self, command: str) -> None:
        self.app.copy_to_clipboard(command)
        self.app.notify(t("replay.copied", self.lang, command=command))


class ConfirmScreen(RecipeDialog[bool]):
    """A yes/no question (dismissed with True for yes); ``question`` is a STRINGS key and its format fields."""

    BINDINGS = [
        Binding("y", "yes", "Yes", id="files.yes"),
        Binding("n,escape", "no", "No", id="files.no"),
    ]

    def __init__(self, question: str, **fmt: Any) -> None:
        super().__init__()
        self.question = question
        self.fmt = fmt

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="dialog"):
            yield Static(id="confirm-question")
            with Horizontal(classes="dialog-buttons"):
                yield Button("", variant="warning", id="confirm-yes")
                yield Button("", id="confirm-no")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#confirm-no", Button).focus()

    def apply_lang(self, lang: str) -> None:
        self.query_one("#confirm-box", Vertical).border_title = t("confirm.title", lang)
        self.query_one("#confirm-question", Static).update(t(self.question, lang, **self.fmt))
        self.query_one("#confirm-yes", Button).label = t("files.yes", lang)
        self.query_one("#confirm-no", Button).label = t("files.no", lang)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)
