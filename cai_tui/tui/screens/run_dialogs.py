"""The small questions a run asks: apply? stop and leave? and a ``prompt`` secret (typed hidden, never shown)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from ..i18n import add_strings, relabel_bindings, t

add_strings(
    {
        "confirm_yes": ("Yes", "是"),
        "confirm_no": ("No", "否"),
        "secret_title": ("The recipe asks for {field} at run time", "配方要求在运行时输入 {field}"),
        "secret_help": (
            "Typed hidden; kept in memory for this session only, never written, never shown in logs.",
            "输入内容隐藏；仅在本次会话的内存中保留，不写入文件，也不会出现在日志中。",
        ),
        "secret_ok": ("Use it", "确定"),
        "secret_cancel": ("Cancel", "取消"),
    }
)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; ``y`` / ``n`` (or Escape) answer it."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm_yes"),
        Binding("n", "answer(False)", "No", id="confirm_no"),
        Binding("escape", "answer(False)", "No", show=False),
    ]
    DEFAULT_CSS = """
    ConfirmScreen, SecretPromptScreen { align: center middle; }
    ConfirmScreen > Vertical, SecretPromptScreen > Vertical {
        width: 70; max-width: 95%; height: auto; padding: 1 2; border: thick $primary; background: $surface;
    }
    ConfirmScreen Horizontal, SecretPromptScreen Horizontal { height: auto; margin-top: 1; }
    ConfirmScreen Button, SecretPromptScreen Button { margin-right: 2; }
    """

    def __init__(self, question: str, lang: str = "en") -> None:
        super().__init__()
        self.question = question
        self.lang = lang

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, id="confirm-question")
            with Horizontal():
                yield Button(t("confirm_yes", self.lang) + " (y)", id="confirm-yes", variant="primary")
                yield Button(t("confirm_no", self.lang) + " (n)", id="confirm-no")

    def on_mount(self) -> None:
        relabel_bindings(self, self.lang)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class SecretPromptScreen(ModalScreen[str | None]):
    """Asks one ``prompt`` secret; the value goes back to the caller only (None when cancelled)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="secret_cancel")]

    def __init__(self, field: str, lang: str = "en") -> None:
        super().__init__()
        self.field = field
        self.lang = lang

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(t("secret_title", self.lang, field=self.field))
            yield Static(t("secret_help", self.lang), classes="muted")
            yield Input(password=True, id="secret-value")
            with Horizontal():
                yield Button(t("secret_ok", self.lang), id="secret-ok", variant="primary")
                yield Button(t("secret_cancel", self.lang), id="secret-cancel")

    def on_mount(self) -> None:
        relabel_bindings(self, self.lang)
        self.query_one("#secret-value", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value or None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        value = self.query_one("#secret-value", Input).value
        self.dismiss(value or None if event.button.id == "secret-ok" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
