"""One FAQ entry in a modal: what it looks like, the cause and the fix, in the app's language (follows Ctrl+L)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from ..i18n import add_strings, relabel_bindings, t
from ..text import reflow

add_strings(
    {
        "faq.close": ("Close", "关闭"),
        "faq.title": ("FAQ {faq_id}", "FAQ {faq_id}"),
        "faq.cause": ("Cause", "原因"),
        "faq.fix": ("Fix", "解决方法"),
        "faq.checks": ("Checks: ", "相关检查："),
        "faq.procedure": ("Procedure steps: ", "对应步骤："),
        "faq.source": ("Source: {kind} · {ref}", "来源：{kind} · {ref}"),
        "faq.hint": ("Esc closes", "按 Esc 关闭"),
    }
)


class FaqEntryScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="faq.close"),
        Binding("ctrl+l", "app.toggle_lang", "中文", id="lang"),  # a modal hides the app's own keys
    ]

    def __init__(self, entry: Any) -> None:
        """``entry``: a :class:`cai_tui.faq.model.FaqEntry`."""
        super().__init__()
        self.entry = entry

    def compose(self) -> ComposeResult:
        with Vertical(id="faq-box"):
            with VerticalScroll(id="faq-body"):
                yield Static(id="faq-heading")
                yield Static(classes="section", id="faq-cause-h")
                yield Static(id="faq-cause", markup=False)
                yield Static(classes="section", id="faq-fix-h")
                yield Static(id="faq-fix", markup=False)
                yield Static(id="faq-meta")
            yield Static(id="faq-hint")

    def on_mount(self) -> None:
        self.watch(self.app, "lang", self._lang_changed, init=True)

    @property
    def lang(self) -> str:
        return str(getattr(self.app, "lang", "en"))

    def _lang_changed(self, lang: str) -> None:
        relabel_bindings(self, lang)
        e = self.entry
        box = self.query_one("#faq-box", Vertical)
        box.border_title = t("faq.title", lang, faq_id=e.id)
        self.query_one("#faq-heading", Static).update(Content.styled(e.title.get(lang), "bold $text-accent"))
        self.query_one("#faq-cause-h", Static).update(t("faq.cause", lang))
        self.query_one("#faq-cause", Static).update(reflow(e.cause.get(lang)))
        self.query_one("#faq-fix-h", Static).update(t("faq.fix", lang))
        self.query_one("#faq-fix", Static).update(reflow(e.fix.get(lang)))
        meta: list[str | tuple[str, str]] = []
        checks = sorted(e.check_ids())
        if checks:
            meta += [(t("faq.checks", lang), "$text-muted"), ", ".join(checks), "\n"]
        if e.procedure:
            meta += [(t("faq.procedure", lang), "$text-muted"), ", ".join(e.procedure), "\n"]
        meta.append((t("faq.source", lang, kind=e.source.kind, ref=e.source.ref), "$text-muted"))
        self.query_one("#faq-meta", Static).update(Content.assemble(*meta))
        self.query_one("#faq-hint", Static).update(Content.styled(t("faq.hint", lang), "$text-muted"))

    def action_close(self) -> None:
        self.dismiss(None)
