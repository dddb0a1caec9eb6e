"""Troubleshooting (key t): the CAI containers of the recipe's instance (or the kata container) with their state;
the selected one's FAQ finding, fix and proving line, highlighted in its log tail; the support bundle (key b).

The same core as ``cai-tui troubleshoot`` and ``cai-tui bundle`` (:mod:`cai_tui.tui.troubleshoot_read`), run in
workers over the session's targets; nothing here changes the instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static

from ..i18n import t
from ..troubleshoot_read import KataTask, StackReading, read_kata_task, read_stack, recipe_project, write_bundle
from ..troubleshoot_strings import engine_words  # also registers this screen's words
from ..widgets.container_detail import CONDITION_STYLE, SYMBOLS, ContainerDetail
from .base import LocalizedScreen

if TYPE_CHECKING:
    from ...bundle.collect import BundleReport
    from ...troubleshoot import ContainerReport


@dataclass
class _Said:
    """A string key and its values: said again in the other language on a switch."""

    key: str
    values: dict[str, Any]

    def text(self, lang: str) -> str:
        return t(self.key, lang, **self.values)


class TroubleshootScreen(LocalizedScreen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("r", "refresh", "Refresh", id="ts_refresh"),
        Binding("b", "bundle", "Support bundle", id="ts_bundle"),
        Binding("f", "faq", "FAQ entry", id="ts_faq"),
    ]

    class StackRead(Message):
        """The troubleshooter's report and the log tails arrived."""

        def __init__(self, reading: StackReading) -> None:
            super().__init__()
            self.reading = reading

    class KataRead(Message):
        def __init__(self, task: KataTask) -> None:
            super().__init__()
            self.task = task

    class ReadFailed(Message):
        """The instance could not be read: what to say (a string key and its values)."""

        def __init__(self, key: str, **values: Any) -> None:
            super().__init__()
            self.key, self.values = key, values

    class BundleWritten(Message):
        def __init__(self, report: BundleReport) -> None:
            super().__init__()
            self.report = report

    class BundleFailed(Message):
        def __init__(self, why: str) -> None:
            super().__init__()
            self.why = why

    def __init__(self, flow: str) -> None:
        super().__init__()
        self.flow = flow
        self.reading: StackReading | None = None
        self.kata: KataTask | None = None
        self.problem: _Said | None = None
        self.reading_now = False
        self.bundle: BundleReport | None = None
        self.bundle_said: _Said | None = None
        self.bundling = False
        self.faq_open = False
        self.selected: str | None = None  # the selected container's name

    # --- layout --------------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="ts-note")
        yield Static(id="ts-bundle")
        table: DataTable[Any] = DataTable(id="ts-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield ContainerDetail(id="ts-detail")
        yield Footer()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#ts-table", DataTable)

    @property
    def detail(self) -> ContainerDetail:
        return self.query_one("#ts-detail", ContainerDetail)

    @property
    def lang(self) -> str:
        return self.wizard.lang

    def prepare(self) -> None:
        self.query_one("#ts-bundle", Static).display = False
        self.action_refresh()

    def apply_lang(self, lang: str) -> None:
        self.sub_title = t("ts_title", lang)
        self._render_note(lang)
        self._render_bundle(lang)
        self._fill_table(lang)
        self._show_detail(lang)

    # --- reading -------------------------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        if self.state.loaded is None:
            self.problem = _Said("ts_no_recipe", {})
            self.apply_lang(self.lang)
            return
        self.problem = None
        self.reading_now = True
        self.table.loading = True
        self._render_note(self.lang)
        self.run_worker(self._read(), group="ts-read", exclusive=True, exit_on_error=False)

    def _engine_words(self) -> tuple[str, str]:
        """How the instance's engine is named (in the screen's language), and the instance target's name."""
        from ..troubleshoot_read import engine_of

        try:
            targets = self.state.session().targets
        except Exception:
            return t("ts_where_engine", self.lang), "-"
        url, via = engine_of(targets)
        target = targets.get("instance")
        return engine_words(url, via, self.lang), target.name if target is not None else "local"

    async def _read(self) -> None:
        from ...recipe import REDACTOR
        from ...troubleshoot import EngineError, InputError

        loaded = self.state.loaded
        assert loaded is not None
        try:
            targets = self.state.session().targets
        except Exception as e:  # a target URI the session cannot build
            self.post_message(self.ReadFailed("ts_input_failed", why=REDACTOR.redact(str(e))))
            return
        if loaded.recipe.flow == "kata-virtcca":
            self.post_message(self.KataRead(await read_kata_task(loaded, targets)))
            return
        project = recipe_project(loaded)
        engine, target = self._engine_words()
        try:
            reading = await read_stack(loaded, targets, lang=self.lang)
        except InputError as e:
            if project is not None and str(e).startswith(f"--project {project}:"):
                suffix = t("ts_project_suffix", self.lang, project=project)
                self.post_message(self.ReadFailed("ts_no_project", engine=engine, project=suffix))
            else:
                self.post_message(self.ReadFailed("ts_input_failed", why=REDACTOR.redact(str(e))))
            return
        except EngineError as e:
            self.post_message(self.ReadFailed("ts_engine_failed", why=REDACTOR.redact(str(e)), target=target))
            return
        except Exception as e:  # paramiko's, docker's own errors: said with what to do, never a traceback
            why = REDACTOR.redact(str(e).strip() or type(e).__name__)
            self.post_message(self.ReadFailed("ts_engine_failed", why=why, target=target))
            return
        self.post_message(self.StackRead(reading))

    def on_troubleshoot_screen_stack_read(self, message: StackRead) -> None:
        self._done_reading()
        self.reading, self.kata = message.reading, None
        report = message.reading.report
        if report.project is None:
            engine, _ = self._engine_words()
            self.problem = _Said("ts_no_project", {"engine": engine, "project": ""})
        containers = report.containers
        if self.selected not in {c.container for c in containers}:
            failing = [c for c in containers if c.condition == "failing"]
            self.selected = (failing or containers)[0].container if containers else None
        self.apply_lang(self.lang)
        self.call_after_refresh(self.detail.scroll_to_evidence)

    def on_troubleshoot_screen_kata_read(self, message: KataRead) -> None:
        self._done_reading()
        self.reading, self.kata = None, message.task
        self.selected = message.task.task
        self.apply_lang(self.lang)

    def on_troubleshoot_screen_read_failed(self, message: ReadFailed) -> None:
        self._done_reading()
        self.reading, self.kata = None, None
        self.problem = _Said(message.key, message.values)
        self.apply_lang(self.lang)

    def _done_reading(self) -> None:
        self.reading_now = False
        self.table.loading = False
        self.refresh_bindings()

    # --- what is shown -------------------------------------------------------------------------------------------

    @property
    def containers(self) -> list[ContainerReport]:
        return self.reading.report.containers if self.reading is not None else []

    def _render_note(self, lang: str) -> None:
        note = self.query_one("#ts-note", Static)
        loaded = self.state.loaded
        parts: list[str | tuple[str, str]] = []
        if loaded is not None and loaded.recipe.flow != self.flow:
            parts += [
                (t("ts_other_flow", lang, name=loaded.recipe.name, flow=loaded.recipe.flow), "$text-warning"),
                "\n",
            ]
        if self.problem is not None:
            parts.append((self.problem.text(lang), "$text-error"))
        elif self.reading_now:
            project = recipe_project(loaded)
            engine, _ = self._engine_words()
            where = t("ts_where_project", lang, project=project, engine=engine) if project else engine
            parts.append((t("ts_reading", lang, where=where), "$text-muted"))
        elif self.reading is not None:
            report = self.reading.report
            failing = len(report.failing)
            summary = t("ts_summary_bad", lang, n=failing) if failing else t("ts_summary_ok", lang)
            waiting = sum(1 for c in report.containers if c.condition == "waiting")
            if waiting:
                summary += t("list_sep", lang) + t("ts_summary_waiting", lang, n=waiting)
            engine, _ = self._engine_words()
            parts.append(t("ts_head", lang, project=report.project, engine=engine, summary=summary))
            for n in report.notes:
                parts += ["\n", (n, "$text-muted")]
        elif self.kata is not None:
            k = self.kata
            parts.append(t("ts_kata_head", lang, task=k.task, where=k.where, ns=k.namespace))
        note.update(Content.assemble(*parts))

    def _render_bundle(self, lang: str) -> None:
        line = self.query_one("#ts-bundle", Static)
        if self.bundle_said is None:
            line.display = False
            return
        line.display = True
        style = "$text-error" if self.bundle_said.key == "ts_bundle_failed" else "$text-success"
        text = self.bundle_said.text(lang)
        r = self.bundle
        if r is not None and self.bundle_said.key == "ts_bundle_done":
            removed = ", ".join(f"{k} {v}" for k, v in sorted(r.counts.items())) or t("ts_bundle_nothing", lang)
            text = t("ts_bundle_done", lang, path=r.path, size=r.size, files=len(r.members), removed=removed)
            if r.errors:
                text += " " + t("ts_bundle_errors", lang, n=len(r.errors))
        line.update(Content.styled(text, style))

    def _fill_table(self, lang: str) -> None:
        """One row per container (keyed by its name, which the detail shows): service, state, health, restarts and
        exit code. Widths are set from the rows, so that 80 columns hold them all."""
        table = self.table
        table.clear(columns=True)
        rows: list[tuple[Any, ...]] = []
        keys: list[str] = []
        if self.kata is not None:
            k = self.kata
            state = k.status or ("?" if k.error else "-")
            sym = Content.styled("✓", "$text-success") if k.status == "RUNNING" else Content.styled("✗", "$text-error")
            rows.append((sym, f"kata {k.task}", state, "-", f"pid {k.pid}" if k.pid else "-"))
            keys.append(k.task)
        for c in self.containers:
            exit_code = f" / {c.exit_code}" if c.exit_code is not None else ""
            sym = Content.styled(SYMBOLS.get(c.condition, "?"), CONDITION_STYLE.get(c.condition, ""))
            rows.append((sym, c.service, c.state, c.health or "-", f"{c.restart_count}{exit_code}"))
            keys.append(c.container)
        labels = ["", t("ts_col_service", lang), t("ts_col_state", lang), t("ts_col_health", lang)]
        labels.append(t("ts_col_restarts", lang))
        for n, (label, key) in enumerate(zip(labels, ("sym", "service", "state", "health", "restarts"), strict=True)):
            width = max([cell_len(label), *(cell_len(str(r[n])) for r in rows)])
            table.add_column(label, key=key, width=width)
        for key, row in zip(keys, rows, strict=True):
            table.add_row(*row, key=key)
        if self.selected in keys:
            table.move_cursor(row=keys.index(self.selected), animate=False)

    def _show_detail(self, lang: str) -> None:
        detail = self.detail
        if self.kata is not None:
            detail.message(self._kata_text(lang))
            return
        chosen = next((c for c in self.containers if c.container == self.selected), None)
        if self.reading is None or chosen is None:
            detail.message(Content.styled(t("ts_select", lang), "$text-muted") if self.containers else "")
            return
        report = self.reading.report
        detail.show(
            chosen,
            report.findings_for(chosen.container),
            self.reading.logs.get(chosen.container, []),
            lang=lang,
            report_lang=report.lang,
            faq_open=self.faq_open,
        )
        self.refresh_bindings()

    def _kata_text(self, lang: str) -> Content:
        k = self.kata
        assert k is not None
        if k.error is not None:
            return Content.styled(t("ts_kata_failed", lang, where=k.where, why=k.error), "$text-error")
        if k.status is None:
            return Content.styled(t("ts_kata_absent", lang, task=k.task, ns=k.namespace), "$text-warning")
        head = Content.assemble((f"{k.task}: ", "bold"), k.status, (f"  (pid {k.pid})" if k.pid else "", "$text-muted"))
        return Content.assemble(head, "\n", (t("ts_kata_logs", lang), "$text-muted"))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if event.cursor_row != self.table.cursor_row:  # a stale one, from before the table was filled again
            return
        if key is None or key == self.selected or self.kata is not None:
            return
        self.selected = key
        self._show_detail(self.lang)
        self.detail.scroll_home(animate=False)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.detail.scroll_to_evidence()

    # --- keys ----------------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "faq":
            return True if self.detail.top is not None else None
        if action == "bundle":
            return True if self.state.loaded is not None and not self.bundling else None
        if action == "refresh":
            return None if self.reading_now else True
        return True

    def action_faq(self) -> None:
        """The top finding's FAQ entry in the shared FAQ modal; a finding without an entry (``unknown``) says so in
        the detail instead."""
        from ..widgets.container_detail import faq_entry

        top = self.detail.top
        if top is None:
            return
        entry = faq_entry(top.faq_id)
        if entry is not None:
            from .faq_entry import FaqEntryScreen

            self.app.push_screen(FaqEntryScreen(entry))
            return
        self.faq_open = not self.faq_open
        self._show_detail(self.lang)
        if self.faq_open:
            self.call_after_refresh(self.detail.scroll_to_faq)

    def action_bundle(self) -> None:
        if self.state.loaded is None or self.bundling:
            return
        self.bundling = True
        self.bundle_said = _Said("ts_bundle_busy", {})
        self._render_bundle(self.lang)
        self.refresh_bindings()
        self.run_worker(self._bundle(), group="ts-bundle", exclusive=True, exit_on_error=False)

    async def _bundle(self) -> None:
        from ...recipe import REDACTOR

        loaded = self.state.loaded
        try:
            targets = self.state.session().targets
            report = await write_bundle(loaded, targets, self.state.files_dir)
        except OSError as e:
            self.post_message(
                self.BundleFailed(REDACTOR.redact(f"{getattr(e, 'filename', '') or ''} {e.strerror or e}"))
            )
            return
        except Exception as e:  # a collector's failure is inside the bundle; this is the bundle itself failing
            self.post_message(self.BundleFailed(REDACTOR.redact(str(e).strip() or type(e).__name__)))
            return
        self.post_message(self.BundleWritten(report))

    def on_troubleshoot_screen_bundle_written(self, message: BundleWritten) -> None:
        self.bundling = False
        self.bundle = message.report
        self.bundle_said = _Said("ts_bundle_done", {})
        self._render_bundle(self.lang)
        self.refresh_bindings()

    def on_troubleshoot_screen_bundle_failed(self, message: BundleFailed) -> None:
        self.bundling = False
        self.bundle_said = _Said("ts_bundle_failed", {"why": message.why.strip()})
        self._render_bundle(self.lang)
        self.refresh_bindings()

    def action_back(self) -> None:
        self.dismiss()
