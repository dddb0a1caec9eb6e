"""Waive a failing check: a reason (required) and the scope (the check id, or a glob covering it).

The modal only asks; ``submit(scope, reason)`` adds the waiver and returns None, or the problem to show (then the
modal stays open with what was typed)."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ..i18n import add_strings, relabel_bindings, t

add_strings(
    {
        "waiver.cancel": ("Cancel", "取消"),
        "waiver.title": ("Waive {check}", "豁免 {check}"),
        "waiver.intro": (
            "A waiver keeps this failure from stopping a run; it is saved in the recipe and shown in every report.",
            "豁免后，此检查失败不再阻止执行；豁免保存在配方中，并显示在每份报告里。",
        ),
        "waiver.reason": ("Reason (required)", "原因（必填）"),
        "waiver.reason_hint": ("why this check may fail here", "说明为何此处允许该检查失败"),
        "waiver.scope": ("Scope: the check id, or a glob like trustee.*", "范围：检查 ID，或通配符如 trustee.*"),
        "waiver.ok": ("Waive", "豁免"),
        "waiver.need_reason": (
            "A waiver needs a reason: say why this check may fail here.",
            "豁免必须填写原因：请说明为何此处允许该检查失败。",
        ),
    }
)

Submit = Callable[[str, str], str | None]


class WaiverScreen(ModalScreen[bool]):
    """Dismissed with True once ``submit`` accepted the waiver, False when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="waiver.cancel"),
        Binding("ctrl+l", "app.toggle_lang", "中文", id="lang"),  # a modal hides the app's own keys
    ]

    def __init__(self, check_id: str, submit: Submit) -> None:
        super().__init__()
        self.check_id = check_id
        self.submit = submit

    def compose(self) -> ComposeResult:
        with Vertical(id="waiver-box"):
            yield Static(id="waiver-intro")
            yield Label(id="waiver-reason-label")
            yield Input(id="waiver-reason")
            yield Label(id="waiver-scope-label")
            yield Input(self.check_id, id="waiver-scope")
            yield Static(id="waiver-error", markup=False)
            with Horizontal(id="waiver-buttons"):
                yield Button("", variant="primary", id="waiver-ok")
                yield Button("", id="waiver-cancel")

    def on_mount(self) -> None:
        self.watch(self.app, "lang", self._lang_changed, init=True)
        self.query_one("#waiver-reason", Input).focus()

    def _lang_changed(self, lang: str) -> None:
        relabel_bindings(self, lang)
        self.query_one("#waiver-box", Vertical).border_title = t("waiver.title", lang, check=self.check_id)
        self.query_one("#waiver-intro", Static).update(Content.styled(t("waiver.intro", lang), "$text-muted"))
        self.query_one("#waiver-reason-label", Label).update(t("waiver.reason", lang))
        self.query_one("#waiver-reason", Input).placeholder = t("waiver.reason_hint", lang)
        self.query_one("#waiver-scope-label", Label).update(t("waiver.scope", lang))
        self.query_one("#waiver-ok", Button).label = t("waiver.ok", lang)
        self.query_one("#waiver-cancel", Button).label = t("waiver.cancel", lang)

    @property
    def error(self) -> str:
        return str(self.query_one("#waiver-error", Static).content)

    def _show_error(self, message: str) -> None:
        error = self.query_one("#waiver-error", Static)
        error.update(message)
        error.display = bool(message)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_waive()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "waiver-ok":
            self.action_waive()
        else:
            self.action_cancel()

    def action_waive(self) -> None:
        lang = str(getattr(self.app, "lang", "en"))
        reason = self.query_one("#waiver-reason", Input).value
        scope = self.query_one("#waiver-scope", Input).value.strip() or self.check_id
        if not reason.strip():
            self._show_error(t("waiver.need_reason", lang))
            self.query_one("#waiver-reason", Input).focus()
            return
        problem = self.submit(scope, reason)
        if problem:
            self._show_error(problem)
            return
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
