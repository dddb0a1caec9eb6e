"""The lower pane of the checks screen: the selected check's result, its evidence lines and the fix (with the FAQ
entry the fix names, in the current language)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from ..check_rows import NOT_RUN, RUNNING, WAIVED, CheckRow, faq_entry, faq_id_for
from ..i18n import add_strings, t
from ..text import reflow

# state → (icon, Rich style); the word comes from the strings table (checks.state.<state>)
STATUS_LOOK: dict[str, tuple[str, str]] = {
    "pass": ("✔", "bold green"),
    "warn": ("▲", "bold yellow"),
    "fail": ("✘", "bold red"),
    "skip": ("↷", "dim"),
    "unknown": ("?", "bold magenta"),
    WAIVED: ("⊘", "bold cyan"),
    NOT_RUN: ("·", "dim"),
    RUNNING: ("…", "bold blue"),
}

add_strings(
    {
        "checks.state.pass": ("pass", "通过"),
        "checks.state.warn": ("warn", "警告"),
        "checks.state.fail": ("fail", "失败"),
        "checks.state.skip": ("skip", "跳过"),
        "checks.state.unknown": ("unknown", "未知"),
        "checks.state.waived": ("waived", "已豁免"),
        "checks.state.not-run": ("not run", "未运行"),
        "checks.state.running": ("running", "运行中"),
        "checks.status": ("Status: ", "状态："),
        "checks.optional": (" · optional", " · 可选"),
        "checks.on_target": (" · on {target}", " · 目标 {target}"),
        "checks.waived_reason": ("waived: {reason}", "已豁免：{reason}"),
        "checks.evidence": ("Evidence", "证据"),
        "checks.no_evidence": ("No evidence lines.", "无证据记录。"),
        "checks.fix": ("Fix", "修复方法"),
        "checks.faq_line": ("FAQ {faq_id}: {title}  (f opens it)", "FAQ {faq_id}：{title}（按 f 打开）"),
        "checks.faq_unknown": ("FAQ {faq_id} (not in the shipped FAQ)", "FAQ {faq_id}（内置 FAQ 中没有此条目）"),
        "checks.detail_not_run": (
            "Not run yet: a to run every check, r this one.",
            "尚未运行：按 a 运行全部检查，按 r 运行此项。",
        ),
        "checks.detail_running": ("Running…", "运行中…"),
        "checks.detail_none": ("Select a check to see its evidence and fix.", "选择一项检查以查看证据和修复方法。"),
    }
)


def status_text(state: str, lang: str) -> Text:
    icon, style = STATUS_LOOK.get(state, ("?", ""))
    return Text(f"{icon} {t(f'checks.state.{state}', lang)}", style=style)


class CheckDetail(VerticalScroll):
    """Re-composed by :meth:`show` when the selection, its result or the language changes."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.row: CheckRow | None = None
        self.lang = "en"

    def show(self, row: CheckRow | None, lang: str) -> None:
        self.row, self.lang = row, lang
        if self.is_mounted:
            self.refresh(recompose=True)

    def compose(self) -> ComposeResult:
        row, lang = self.row, self.lang
        if row is None:
            yield Static(t("checks.detail_none", lang), classes="check-empty")
            return
        yield Static(Content.assemble((row.id, "bold"), " — ", row.title), classes="check-title")
        result = row.result
        status = Text(t("checks.status", lang), style="dim")
        status.append_text(status_text(row.shown, lang))
        if not row.required:
            status.append(t("checks.optional", lang), style="dim")
        target = result.evidence[0].target if result is not None and result.evidence else ""
        if target:
            status.append(t("checks.on_target", lang, target=target), style="dim")
        yield Static(status, classes="check-status")
        if row.state == NOT_RUN:
            yield Static(t("checks.detail_not_run", lang), classes="check-empty")
            return
        if row.state == RUNNING or result is None:
            yield Static(t("checks.detail_running", lang), classes="check-empty")
            return
        yield Static(result.summary, markup=False, classes="check-summary")
        if row.waiver is not None and row.shown == WAIVED:
            yield Static(
                Content.styled(t("checks.waived_reason", lang, reason=row.waiver), "$text-accent"),
                classes="check-waiver",
            )
        yield Static(t("checks.evidence", lang), classes="section")
        if not result.evidence:
            yield Static(t("checks.no_evidence", lang), classes="check-empty")
        for e in result.evidence:
            yield Static(
                Content.assemble("• ", e.observed, "\n  ", (f"{e.source} @ {e.target}", "$text-muted")),
                classes="check-evidence",
            )
        faq_id = faq_id_for(row) if row.state in ("fail", "warn", "unknown") else None
        if result.fix is None and faq_id is None:
            return
        yield Static(t("checks.fix", lang), classes="section")
        if result.fix is not None and result.fix.text:
            yield Static(result.fix.text, markup=False, classes="check-fix")
        if faq_id is not None:
            entry = faq_entry(faq_id)
            if entry is None:
                yield Static(Content.styled(t("checks.faq_unknown", lang, faq_id=faq_id), "$text-warning"))
            else:
                line = t("checks.faq_line", lang, faq_id=faq_id, title=entry.title.get(lang))
                yield Static(Content.styled(line, "bold $text-primary"), classes="check-faq", id="check-faq")
                yield Static(reflow(entry.fix.get(lang)), markup=False, classes="check-faq-fix")
