"""The checks of one stage (key ``c`` on a stage), or of the whole flow (the doctor): status, evidence and the fix.

The checks run on open through the engine session (``Session.run_checks``, the function ``cai-tui doctor`` and
``replay`` use), in a worker, so each row turns as its result arrives. ``r`` reruns the selected check, ``a`` all of
them, ``w`` waives a failure (the waiver is saved into the recipe), ``f`` opens the failure's FAQ entry. After a run of
a stage's checks the stage's status in the side bar follows (passed, failed or waived).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable, Footer, Header, Static

from ...recipe import RecipeError
from ..check_rows import (
    FAILING,
    RUNNING,
    CheckRow,
    faq_entry,
    faq_id_for,
    flow_check_ids,
    make_rows,
    stage_check_ids,
    stage_verdict,
)
from ..i18n import add_strings, t
from ..widgets.check_detail import CheckDetail, status_text
from .base import LocalizedScreen

if TYPE_CHECKING:
    from ...checks.runner import CheckOutcome
    from ...stages.spec import StageSpec

add_strings(
    {
        # bindings
        "checks.rerun": ("Rerun check", "重新运行此项"),
        "checks.rerun_all": ("Rerun all", "全部重新运行"),
        "checks.waive": ("Waive", "豁免"),
        "checks.faq": ("FAQ entry", "FAQ 条目"),
        # table
        "checks.col.status": ("Status", "状态"),
        "checks.col.id": ("Check", "检查项"),
        "checks.col.title": ("Title", "标题"),
        "checks.col.summary": ("Summary", "结果摘要"),
        # the note above the table
        "checks.of_stage": ("Checks of stage {order} · {title}", "第 {order} 阶段的检查 · {title}"),
        "checks.doctor": ("Doctor: every check of flow {flow}", "体检：{flow} 流程的全部检查"),
        "checks.counts": ("{done}/{total} run", "已运行 {done}/{total}"),
        "checks.no_recipe": (
            "No recipe is open: checks read the recipe's answers and targets. Open a recipe or choose a flow first.",
            "尚未打开配方：检查需要读取配方中的配置和目标。请先打开配方或选择流程。",
        ),
        "checks.other_flow": (
            "The recipe is for flow {flow}; the checks of this stage cannot run with it.",
            "当前配方属于流程 {flow}，无法运行本阶段的检查。",
        ),
        "checks.none": (
            "This stage has no checks (its steps are confirmed by hand).",
            "本阶段没有检查项（由人工确认）。",
        ),
        "checks.cannot_run": ("The checks cannot run: {why}", "无法运行检查：{why}"),
        # messages
        "checks.pick_row": ("Select a check first.", "请先选择一项检查。"),
        "checks.not_failing": (
            "{check} is {state}: only a failing check can be waived.",
            "{check} 的状态为{state}：只能豁免失败的检查。",
        ),
        "checks.no_faq": ("No FAQ entry names {check}.", "没有与 {check} 相关的 FAQ 条目。"),
        "checks.waiver_saved": ("Waiver for {scope} saved to {path}", "{scope} 的豁免已保存到 {path}"),
        "checks.waiver_saved_alone": (
            "Waiver for {scope} saved to {path}; your other changes are not saved yet (Ctrl+S).",
            "{scope} 的豁免已保存到 {path}；其他修改尚未保存（Ctrl+S）。",
        ),
        "checks.waiver_unsaved": (
            "Waiver for {scope} added; the recipe has no file yet: it will be saved with Ctrl+S.",
            "已添加 {scope} 的豁免；配方尚无文件，将在按 Ctrl+S 时保存。",
        ),
        "checks.waiver_not_saved": (
            "Waiver added but not saved ({why}); Ctrl+S saves the recipe.",
            "豁免已添加但未保存（{why}）；按 Ctrl+S 保存配方。",
        ),
        "checks.stage_status": ("Stage {stage}: {status}", "阶段 {stage}：{status}"),
        "checks.run_failed": ("The checks did not run: {why}", "检查未能运行：{why}"),
    }
)

UNFINISHED = "the run stopped before this check finished"  # a result's words (check results are English)
# summary before title: at 80 columns the title is read in the detail pane (or by scrolling right)
COLUMNS = ("status", "id", "summary", "title")
WIDTHS = {"status": 10, "id": None, "summary": 36, "title": None}


class ChecksScreen(LocalizedScreen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("r", "rerun", "Rerun check", id="checks.rerun"),
        Binding("a", "rerun_all", "Rerun all", id="checks.rerun_all"),
        Binding("w", "waive", "Waive", id="checks.waive"),
        Binding("f", "faq", "FAQ entry", id="checks.faq"),
    ]

    def __init__(self, stage: StageSpec | None) -> None:
        super().__init__()
        self.stage = stage
        self.problem = ""  # why the checks cannot run (shown instead of running them)
        self.rows: dict[str, CheckRow] = {}  # filled once mounted (the recipe is the app's)
        self.last_verdict: str | None = None  # the stage status set after the last finished run

    # --- what is listed ----------------------------------------------------------------------------------------------

    def _rows(self) -> list[CheckRow]:
        state = self.state
        loaded = state.loaded
        flow = loaded.recipe.flow if loaded is not None else None
        waivers = list(loaded.recipe.waivers) if loaded is not None else []
        if self.stage is not None:
            if loaded is None:
                self.problem = "no_recipe"
            elif flow != self.stage.flow:
                self.problem = "other_flow"
            from ...engine.plan import PlanError

            try:
                ids = stage_check_ids(self.stage, loaded if not self.problem else None)
            except (PlanError, RecipeError, ValueError) as e:  # the stage cannot be planned: say why, list its checks
                self.problem = str(e)
                ids = list(self.stage.checks)
            return make_rows(ids, self.stage.flow, waivers)
        if loaded is None or flow is None:
            self.problem = "no_recipe"
            return []
        return make_rows(flow_check_ids(state.flows[flow], flow), flow, waivers)

    # --- layout ------------------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="checks-note")
        table: DataTable[Any] = DataTable(id="checks-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield CheckDetail(id="check-detail")
        yield Footer()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#checks-table", DataTable)

    @property
    def detail(self) -> CheckDetail:
        return self.query_one("#check-detail", CheckDetail)

    @property
    def lang(self) -> str:
        return str(getattr(self.app, "lang", "en"))

    def prepare(self) -> None:
        self.rows = {r.id: r for r in self._rows()}
        table = self.table
        for col in COLUMNS:
            table.add_column(col, key=col, width=WIDTHS[col])
        for row in self.rows.values():
            table.add_row(*self._cells(row, self.lang), key=row.id)
        table.focus()
        if self.rows and not self.problem:
            self.run_checks(list(self.rows))

    def apply_lang(self, lang: str) -> None:
        if self.stage is not None:
            self.sub_title = t(
                "checks.of_stage", lang, order=f"{self.stage.order:02d}", title=self.stage.title.get(lang)
            )
        else:
            flow = self.state.recipe_flow
            self.sub_title = t("checks.doctor", lang, flow=flow or "-")
        table = self.table
        for col in COLUMNS:
            table.columns[col].label = Text(t(f"checks.col.{col}", lang))  # type: ignore[index]
        for row in self.rows.values():
            self._draw(row)
        table.refresh()
        self._update_note()
        self._show_selected()

    def _cells(self, row: CheckRow, lang: str) -> tuple[Text, Text, Text, Text]:
        """status, id, summary, title (the order of COLUMNS)"""
        summary = row.result.summary if row.result is not None else ""
        if row.shown == "waived" and row.waiver is not None:
            summary = t("checks.waived_reason", lang, reason=row.waiver)
        elif row.state == RUNNING:
            summary = ""
        style = "" if row.required else "dim"
        return status_text(row.shown, lang), Text(row.id, style=style), Text(summary), Text(row.title)

    def _draw(self, row: CheckRow) -> None:
        table = self.table
        for col, cell in zip(COLUMNS, self._cells(row, self.lang), strict=True):
            table.update_cell(row.id, col, cell)

    def _update_note(self) -> None:
        lang = self.lang
        note = self.query_one("#checks-note", Static)
        if self.problem == "no_recipe":
            note.update(Content.styled(t("checks.no_recipe", lang), "$text-warning"))
        elif self.problem == "other_flow":
            flow = self.state.recipe_flow or "-"
            note.update(Content.styled(t("checks.other_flow", lang, flow=flow), "$text-warning"))
        elif self.problem:
            note.update(Content.styled(t("checks.cannot_run", lang, why=self.problem), "$text-error"))
        elif not self.rows:
            note.update(Content.styled(t("checks.none", lang), "$text-muted"))
        else:
            counts: dict[str, int] = {}
            for r in self.rows.values():
                counts[r.shown] = counts.get(r.shown, 0) + 1
            done = sum(1 for r in self.rows.values() if r.finished)
            parts: list[Any] = [t("checks.counts", lang, done=done, total=len(self.rows))]
            for state in ("pass", "warn", "fail", "waived", "unknown", "skip"):
                if counts.get(state):
                    parts += ["  ", status_text(state, lang).plain, f" {counts[state]}"]
            note.update(Content.assemble(*parts))

    # --- selection ---------------------------------------------------------------------------------------------------

    @property
    def selected(self) -> CheckRow | None:
        table = self.table
        if not self.rows or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.rows.get(str(key))

    def select(self, check_id: str) -> None:
        """Move the cursor to ``check_id``'s row."""
        self.table.move_cursor(row=self.table.get_row_index(check_id))
        self._show_selected()

    def _show_selected(self) -> None:
        self.detail.show(self.selected, self.lang)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_selected()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("rerun", "rerun_all", "waive", "faq") and (self.problem or not self.rows):
            return None
        if action in ("rerun", "rerun_all") and self.running:
            return None  # one run at a time: each check is bounded by its timeout
        return True

    # --- running -----------------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return any(r.state == RUNNING for r in self.rows.values())

    @work(group="checks", exit_on_error=False)
    async def run_checks(self, ids: list[str]) -> None:
        """Run ``ids`` through the engine session; rows change as results arrive (on_result runs on this loop)."""
        wanted = [i for i in ids if i in self.rows and self.rows[i].known]
        for cid in wanted:
            row = self.rows[cid]
            row.state, row.result, row.waiver = RUNNING, None, None
            self._draw(row)
        self._update_note()
        self._show_selected()
        self.refresh_bindings()
        try:
            session = self.state.session()
            await session.run_checks(wanted, on_result=self._on_outcome)
        except (RecipeError, ValueError, OSError) as e:
            self.notify(t("checks.run_failed", self.lang, why=str(e)), severity="error", timeout=10)
        finally:
            self._settle(wanted)
        self._after_run()

    def _on_outcome(self, outcome: CheckOutcome) -> None:
        row = self.rows.get(outcome.id)
        if row is None or not row.known:
            return  # a check run only because a listed one depends on it
        row.set_result(outcome.result, self._waivers())
        self._draw(row)
        self._update_note()
        if self.selected is row:
            self._show_selected()

    def _settle(self, ids: list[str]) -> None:
        """Rows a stopped run left running say so (a cancelled run, or one that failed as a whole)."""
        from ...checks.base import Result

        for cid in ids:
            row = self.rows[cid]
            if row.state == RUNNING:
                row.set_result(Result("unknown", UNFINISHED), self._waivers())
                if self.is_attached:
                    self._draw(row)
        if self.is_attached:
            self._update_note()
            self._show_selected()
            self.refresh_bindings()

    def _after_run(self) -> None:
        if self.stage is None:
            return
        verdict = stage_verdict(list(self.rows.values()))
        if verdict is None:
            return
        self.last_verdict = verdict
        if self.state.stage_status(self.stage.id) != verdict:
            self.state.set_status(self.stage.id, verdict)

    def _waivers(self) -> list[Any]:
        loaded = self.state.loaded
        return list(loaded.recipe.waivers) if loaded is not None else []

    def action_rerun(self) -> None:
        row = self.selected
        if self.running:
            return
        if row is None:
            self.notify(t("checks.pick_row", self.lang), severity="warning")
            return
        self.run_checks([row.id])

    def action_rerun_all(self) -> None:
        if not self.running:
            self.run_checks(list(self.rows))

    # --- waivers -----------------------------------------------------------------------------------------------------

    def action_waive(self) -> None:
        from .waiver import WaiverScreen

        row = self.selected
        lang = self.lang
        if row is None:
            self.notify(t("checks.pick_row", lang), severity="warning")
            return
        if row.state not in FAILING:
            state = t(f"checks.state.{row.state}", lang)
            self.notify(t("checks.not_failing", lang, check=row.id, state=state), severity="warning")
            return
        self.app.push_screen(WaiverScreen(row.id, lambda scope, reason: self.add_waiver(row.id, scope, reason)))

    def add_waiver(self, check_id: str, scope: str, reason: str) -> str | None:
        """Add the waiver to the recipe being edited and save it where the recipe has a file; the problem, or None."""
        from ...recipe.waivers import add_waiver, save_waiver

        lang = self.lang
        draft = self.state.draft
        if draft is None:
            return t("checks.no_recipe", lang)
        had_changes = draft.dirty
        try:
            waiver = add_waiver(draft.loaded, scope, reason, covers=check_id)
        except RecipeError as e:
            return "\n".join(f"{p.field}: {p.message}" if p.field else p.message for p in e.problems)
        path = self.state.recipe_path
        try:
            if path is None:
                self.notify(t("checks.waiver_unsaved", lang, scope=waiver.check), severity="warning", timeout=8)
            elif not had_changes:
                written = self.state.save()
                self.notify(t("checks.waiver_saved", lang, scope=waiver.check, path=written))
            else:
                written = save_waiver(path, waiver.check, waiver.reason, covers=check_id)
                self.notify(t("checks.waiver_saved_alone", lang, scope=waiver.check, path=written), timeout=8)
        except (RecipeError, OSError) as e:
            self.notify(t("checks.waiver_not_saved", lang, why=str(e)), severity="error", timeout=10)
        waivers = self._waivers()
        for row in self.rows.values():
            row.rewaive(waivers)
            self._draw(row)
        self._update_note()
        self._show_selected()
        if not self.running:
            self._after_run()
        return None

    # --- FAQ ---------------------------------------------------------------------------------------------------------

    def action_faq(self) -> None:
        from .faq_entry import FaqEntryScreen

        row = self.selected
        if row is None:
            self.notify(t("checks.pick_row", self.lang), severity="warning")
            return
        faq_id = faq_id_for(row)
        entry = faq_entry(faq_id) if faq_id is not None else None
        if entry is None:
            self.notify(t("checks.no_faq", self.lang, check=row.id), severity="warning")
            return
        self.app.push_screen(FaqEntryScreen(entry))

    def action_back(self) -> None:
        self.workers.cancel_group(self, "checks")
        self.dismiss()
