"""One container in the troubleshooting screen: its state, the FAQ finding with the fix and the proving line, and
its log tail with that line highlighted (split in three so the screen can scroll the highlighted one into view)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from .. import troubleshoot_strings  # noqa: F401  (registers the words used here)
from ..i18n import t
from ..troubleshoot_read import LogLine, evidence_index

if TYPE_CHECKING:
    from ...faq.model import FaqEntry
    from ...troubleshoot import ContainerReport, ReportFinding

LOG_SHOWN = 200  # the newest lines shown (the proving line is kept in view even when older)
CHECK_SYMBOLS = {"pass": "✓", "fail": "✗", "warn": "!", "skip": "–", "unknown": "?"}
SYMBOLS = {"ok": "✓", "starting": "…", "failing": "✗", "waiting": "⏸"}
CONDITION_STYLE = {
    "ok": "$text-success",
    "starting": "$text-warning",
    "failing": "$text-error",
    "waiting": "$text-muted",
}


def faq_entry(faq_id: str) -> FaqEntry | None:
    from ...faq.kb import default_kb

    kb = default_kb()
    return kb.get(faq_id) if faq_id in kb else None


def _words(f: ReportFinding, report_lang: str, lang: str) -> tuple[str, str, str]:
    """Title, cause and fix in ``lang``: the report's own text when it was made in that language (the related checks
    may have adjusted it), else the FAQ entry's."""
    if lang == report_lang:
        return f.title, f.cause, f.fix
    entry = faq_entry(f.faq_id)
    if entry is None:
        from ...faq.matcher import UNKNOWN_CAUSE, UNKNOWN_FIX, UNKNOWN_TITLE

        return UNKNOWN_TITLE.get(lang), UNKNOWN_CAUSE.get(lang), UNKNOWN_FIX.get(lang)
    return entry.title.get(lang), entry.cause.get(lang), entry.fix.get(lang)


def _short_time(when: str | None) -> str:
    return when[11:19] + " " if when and len(when) >= 19 else ""


def _log_content(lines: list[LogLine]) -> Content:
    parts: list[str | tuple[str, str]] = []
    for n, ln in enumerate(lines):
        if n:
            parts.append("\n")
        parts += [(_short_time(ln.time), "$text-muted"), ln.text]
    return Content.assemble(*parts)


class ContainerDetail(VerticalScroll):
    """The selected container; :meth:`show` fills it, :attr:`evidence_line` is what is highlighted (None: nothing)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.evidence_line: str | None = None
        self.top: ReportFinding | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="ts-summary")
        yield Static(id="ts-faq")
        yield Static(id="ts-log-head")
        yield Static(id="ts-log-before", classes="ts-log")
        yield Static(id="ts-log-evidence", classes="ts-log")
        yield Static(id="ts-log-after", classes="ts-log")

    def on_mount(self) -> None:
        for name in ("faq", "log-head", "log-before", "log-evidence", "log-after"):
            self.query_one(f"#ts-{name}", Static).display = False

    def message(self, content: Content | str) -> None:
        """Only a line of text (nothing selected, kata, errors)."""
        self.evidence_line, self.top = None, None
        self.query_one("#ts-summary", Static).update(content)
        self.on_mount()

    def show(
        self,
        c: ContainerReport,
        findings: list[ReportFinding],
        lines: list[LogLine],
        *,
        lang: str,
        report_lang: str,
        faq_open: bool,
    ) -> None:
        self.top = findings[0] if findings else None
        self.query_one("#ts-summary", Static).update(self._summary(c, findings, lines, lang, report_lang))
        faq = self.query_one("#ts-faq", Static)
        faq.display = faq_open
        if faq_open:
            faq.update(self._faq(lang))
        self._log(c, lines, lang)

    # --- parts ---------------------------------------------------------------------------------------------------

    def _summary(
        self, c: ContainerReport, findings: list[ReportFinding], lines: list[LogLine], lang: str, report_lang: str
    ) -> Content:
        style = CONDITION_STYLE.get(c.condition, "")
        parts: list[str | tuple[str, str]] = [
            (f"{SYMBOLS.get(c.condition, '?')} {c.service}", f"bold {style}"),
            ("  " + c.container, "$text-muted"),
            "\n",
            (t("ts_state", lang), "bold"),
            c.state_text,
        ]
        if c.error:
            parts += ["\n", (c.error, "$text-error")]
        if c.condition == "waiting":
            parts += ["\n", t("ts_waiting", lang, deps=", ".join(c.waiting_on))]
        elif c.condition in ("ok", "starting") and not findings:
            parts += ["\n", (t("ts_ok", lang), "$text-success")]
        elif not findings:
            parts += ["\n", t("ts_no_finding", lang)]
        if findings:
            top = findings[0]
            title, cause, fix = _words(top, report_lang, lang)
            conf = t("ts_confidence", lang, c=top.confidence)
            if top.confirmation != "not-run":
                conf += f" · {top.confirmation}"
            parts += [
                "\n\n",
                (f"[{top.faq_id}] ", "bold $text-accent"),
                (title, "bold"),
                (f"  ({conf})", "$text-muted"),
                "\n",
                (t("ts_evidence", lang), "bold"),
                (top.evidence.line, "$text-error"),
            ]
            where = f"{top.evidence.source} @ {top.evidence.time}" if top.evidence.time else top.evidence.source
            parts += ["\n", ("    — " + where, "$text-muted")]
            if top.evidence.line and evidence_index(lines, top) is None:
                parts += [" ", (t("ts_evidence_elsewhere", lang, source=top.evidence.source), "$text-muted")]
            parts += ["\n", (t("ts_cause", lang), "bold"), cause, "\n", (t("ts_fix", lang), "bold $text-success"), fix]
            if top.related_checks:
                parts += ["\n", (t("ts_checks", lang), "bold")]
                for r in top.related_checks:
                    parts += ["\n", f"  {CHECK_SYMBOLS.get(r.status, '?')} {r.id}: {r.summary}"]
            alts = findings[1:3]
            if alts:
                parts += ["\n", (t("ts_also", lang), "bold")]
                for a in alts:
                    a_title = _words(a, report_lang, lang)[0]
                    parts += ["\n", f"  {a.rank}. [{a.faq_id}] {a_title} ({a.confidence})"]
            parts += ["\n", (t("ts_faq_hint", lang), "$text-muted")]
        return Content.assemble(*parts)

    def _faq(self, lang: str) -> Content:
        entry = faq_entry(self.top.faq_id) if self.top is not None else None
        if entry is None:
            return Content.styled(t("ts_faq_none", lang), "$text-muted")
        parts: list[str | tuple[str, str]] = [
            (t("ts_faq_head", lang, id=entry.id), "bold $text-accent"),
            "\n",
            (entry.title.get(lang), "bold"),
            "\n",
            (t("ts_cause", lang), "bold"),
            entry.cause.get(lang),
            "\n",
            (t("ts_fix", lang), "bold $text-success"),
            entry.fix.get(lang),
        ]
        if entry.procedure:
            parts += ["\n", (t("ts_faq_procedure", lang), "bold"), ", ".join(entry.procedure)]
        if entry.related_checks:
            parts += ["\n", (t("ts_checks", lang), "bold"), " " + ", ".join(entry.related_checks)]
        parts += ["\n", (t("ts_faq_source", lang), "$text-muted"), (entry.source.ref, "$text-muted")]
        return Content.assemble(*parts)

    def _log(self, c: ContainerReport, lines: list[LogLine], lang: str) -> None:
        head = self.query_one("#ts-log-head", Static)
        before = self.query_one("#ts-log-before", Static)
        hit = self.query_one("#ts-log-evidence", Static)
        after = self.query_one("#ts-log-after", Static)
        at = evidence_index(lines, self.top)
        start = max(0, len(lines) - LOG_SHOWN)
        if at is not None:
            start = min(start, max(0, at - 5))
        shown = lines[start:]
        at = at - start if at is not None else None
        head.display = True
        source = f"docker logs {c.container}"
        head.update(
            Content.styled(
                t("ts_log_head", lang, n=len(shown), source=source) if shown else t("ts_log_none", lang), "bold"
            )
        )
        if at is None:
            self.evidence_line = None
            before.update(_log_content(shown))
            before.display = bool(shown)
            hit.display = after.display = False
            return
        self.evidence_line = shown[at].text
        before.update(_log_content(shown[:at]))
        before.display = at > 0
        hit.update(Content.assemble(("▶ ", "bold"), (_short_time(shown[at].time), "bold"), (shown[at].text, "bold")))
        hit.display = True
        after.update(_log_content(shown[at + 1 :]))
        after.display = at + 1 < len(shown)

    def scroll_to_evidence(self) -> None:
        hit = self.query_one("#ts-log-evidence", Static)
        if hit.display:
            self.scroll_to_widget(hit, animate=False, top=False)

    def scroll_to_faq(self) -> None:
        faq = self.query_one("#ts-faq", Static)
        if faq.display:
            self.scroll_to_widget(faq, animate=False, top=True)
