"""Run one stage: the engine's plan first, then (``a``, confirmed) the same work ``cai-tui replay --only STAGE`` does,
with every output line in the log pane, transfers as a progress bar, Esc to stop the running step.

The run is an async worker on the app's loop (the session's targets live there); the engine's events arrive through an
:class:`~cai_tui.tui.engine_bridge.EventBridge` drained on a timer, so the screen repaints a few times a second
however fast a command writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import Footer, Header, Static

from ... import events as ev
from ...stages.spec import StageSpec
from .. import state as st
from ..engine_bridge import EventBridge, InputProblems, add_diffs, apply_stage, event_line, plan
from ..i18n import add_strings, t
from ..widgets.log_pane import LogPane, LogPanel
from ..widgets.plan_view import PlanView
from ..widgets.transfer_bar import TransferBar
from .base import LocalizedScreen

DRAIN_S = 0.05

add_strings(
    {
        "run_apply": ("Apply", "应用"),
        "run_cancel": ("Stop the step", "停止当前步骤"),
        "run_title": ("Run stage {order}: {title}", "执行第 {order} 阶段：{title}"),
        "run_headless": ("Headless equivalent: {cmd}", "等效的无界面命令：{cmd}"),
        "run_ready": (
            "The plan below is what applying does (a: apply after a confirmation; nothing has changed yet).",
            "下方为应用时将执行的计划（按 a 确认后应用；目前尚未做任何更改）。",
        ),
        "run_no_recipe": (
            "No recipe is open for this flow: open or create one to plan and run this stage.",
            "本流程尚未打开配方：请先打开或新建配方，才能规划和执行本阶段。",
        ),
        "run_plan_error": ("This stage cannot be planned: {error}", "无法规划本阶段：{error}"),
        "run_diffs_failed": ("File diffs left out: {error}", "未能生成文件差异：{error}"),
        "run_confirm": (
            "Apply stage {order} ({id})? {n} item(s) may change things; checks that already pass are skipped.",
            "应用第 {order} 阶段（{id}）？其中 {n} 项可能做出更改；已通过检查的项会被跳过。",
        ),
        "run_running": ("Running… (Esc or Ctrl+C stops the running step)", "正在执行……（Esc 或 Ctrl+C 停止当前步骤）"),
        "run_passed": ("Stage {id} passed: {counts}.", "阶段 {id} 已通过：{counts}。"),
        "run_failed": ("Stage {id} failed at {item}: {detail}", "阶段 {id} 在 {item} 处失败：{detail}"),
        "run_faq": ("FAQ {faq} — evidence: {evidence}", "常见问题 {faq} —— 证据：{evidence}"),
        "run_press_t": ("Press t to troubleshoot.", "按 t 进入故障排查。"),
        "run_interrupted": (
            "Interrupted during {step}; its command was stopped. Resume with: {cmd}",
            "在 {step} 执行期间中断；该命令已停止。可用以下命令继续：{cmd}",
        ),
        "run_interrupted_before": ("Stopped before anything ran.", "在任何操作执行前已停止。"),
        "run_input_problems": ("Nothing was changed: {problems}", "未做任何更改：{problems}"),
        "run_busy": ("A step is running: Esc stops it first.", "有步骤正在执行：请先按 Esc 停止。"),
        "run_leave": (
            "A step of {id} is running. Stop it and leave?",
            "阶段 {id} 有步骤正在执行。停止并离开吗？",
        ),
        "run_no_troubleshoot": ("The troubleshooting screen is not available.", "故障排查界面不可用。"),
    }
)


class RunStageScreen(LocalizedScreen):
    BINDINGS = [
        Binding("a", "apply", "Apply", id="run_apply"),
        Binding("escape", "back", "Back", id="back"),
        Binding("ctrl+c", "cancel", "Stop the step", id="run_cancel"),
        Binding("t", "troubleshoot", "Troubleshoot", id="troubleshoot"),
        Binding("q", "quit_app", "Quit", id="quit"),
    ]

    def __init__(self, stage: StageSpec) -> None:
        super().__init__()
        self.stage = stage
        self.items: list = []
        self.plan_error = ""
        self.bridge = EventBridge()
        self.token: ev.CancelToken | None = None
        self.report = None  # the ReplayReport of the last run
        self.running = False
        self.input_problems: list[str] = []
        self._engine: asyncio.Future | None = None  # type: ignore[type-arg]
        self._result: Callable[[str], Content] | None = None
        self._step = ""  # the step running now (from its step_started event)

    # --- layout -----------------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        state = self.state
        if state.loaded is None or state.loaded.recipe.flow != self.stage.flow:
            self.plan_error = "no-recipe"
        else:
            from ...engine.plan import PlanError

            try:
                self.items = plan(state, self.stage)
            except PlanError as e:
                self.plan_error = str(e)
        lang = self.wizard.lang
        yield Header()
        yield Static(id="run-title")
        yield Static(id="run-result")
        yield Static(id="run-headless")
        yield PlanView(self.items, lang=lang, id="run-plan")
        yield TransferBar(id="run-transfer", lang=lang)
        yield LogPanel(
            LogPane(save_dir=state.files_dir, save_name=f"{self.stage.id}-run", lang=lang, id="run-log"),
            id="run-log-panel",
        )
        yield Footer()

    @property
    def plan_view(self) -> PlanView:
        return self.query_one("#run-plan", PlanView)

    @property
    def log_pane(self) -> LogPane:
        return self.query_one("#run-log", LogPane)

    @property
    def transfer(self) -> TransferBar:
        return self.query_one("#run-transfer", TransferBar)

    def prepare(self) -> None:
        self.set_interval(DRAIN_S, self.drain, name="run-drain")
        self._result = self._ready_text
        if not self.plan_error:
            self._diffs()
        self.plan_view.focus()

    def apply_lang(self, lang: str) -> None:
        self.sub_title = self.stage.id
        self.query_one("#run-title", Static).update(
            Content.styled(
                t("run_title", lang, order=f"{self.stage.order:02d}", title=self.stage.title.get(lang)), "bold"
            )
        )
        self.query_one("#run-headless", Static).update(
            Content.styled(t("run_headless", lang, cmd=self.state.replay_command(self.stage.id)), "$text-muted")
        )
        self.plan_view.set_lang(lang)
        self.query_one("#run-log-panel", LogPanel).set_lang(lang)
        self.transfer.lang = lang
        self._show_result()

    def _show_result(self) -> None:
        if self._result is not None and self.is_mounted:
            self.query_one("#run-result", Static).update(self._result(self.wizard.lang))

    def _set_result(self, render: Callable[[str], Content]) -> None:
        self._result = render
        self._show_result()

    def _ready_text(self, lang: str) -> Content:
        if self.plan_error == "no-recipe":
            return Content.styled(t("run_no_recipe", lang), "$text-warning")
        if self.plan_error:
            return Content.styled(t("run_plan_error", lang, error=self.plan_error), "$text-error")
        return Content(t("run_ready", lang))

    # --- the plan's diffs -------------------------------------------------------------------------------------------

    @work(group="run-diffs", exit_on_error=False)
    async def _diffs(self) -> None:
        from ...targets.base import TargetError

        try:
            await add_diffs(self.state, self.items, self.bridge)
        except (TargetError, OSError, ValueError) as e:
            self.notify(t("run_diffs_failed", self.wizard.lang, error=e), severity="warning")
        self.plan_view.refresh_items()

    # --- events -----------------------------------------------------------------------------------------------------

    def drain(self) -> None:
        """Everything the engine reported since the last call: one write to the log pane, one update of the bar."""
        events = self.bridge.drain()
        if not events:
            return
        lines: list[str] = []
        progress: dict[str, ev.Event] = {}
        for event in events:
            if event.kind == "progress":
                progress[f"{event.step}|{event.source}|{event.unit}"] = event
                continue
            if event.kind == "step_started":
                self._step = event.step
                self.plan_view.set_result(event.step, "running")
            elif event.kind == "step_finished":
                self.plan_view.set_result(event.step, event.status, event.text)
            line = event_line(event)
            if line is not None:
                lines.append(line)
        if lines:
            self.log_pane.write_lines(lines)
        for event in progress.values():
            self.transfer.update_from(event)

    # --- applying ---------------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply":
            return None if self.running or self.plan_error else True
        if action == "cancel":
            return True if self.running else None
        return True

    def action_apply(self) -> None:
        if self.running or self.plan_error:
            return
        from .run_dialogs import ConfirmScreen

        lang = self.wizard.lang
        changing = sum(1 for it in self.items if it.applies and it.changing)
        question = t("run_confirm", lang, order=f"{self.stage.order:02d}", id=self.stage.id, n=changing)
        self.app.push_screen(ConfirmScreen(question, lang), callback=self._confirmed)

    def _confirmed(self, yes: bool | None) -> None:
        if yes:
            self.run_stage()

    def run_stage(self) -> None:
        """Apply the stage now (no question): the worker behind ``a``."""
        self.running = True  # before the worker starts, so a second key press cannot start another
        self.refresh_bindings()
        self._apply()

    async def _ask_secret(self, field: str) -> str | None:
        from .run_dialogs import SecretPromptScreen

        answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.app.push_screen(
            SecretPromptScreen(field, self.wizard.lang),
            callback=lambda value: answer.set_result(value) if not answer.done() else None,
        )
        return await answer

    @work(exclusive=True, group="run-stage", exit_on_error=False)
    async def _apply(self) -> None:
        state, stage = self.state, self.stage
        before = state.stage_status(stage.id)
        self.token = ev.CancelToken()
        self.report, self.input_problems, self._step = None, [], ""
        for view in self.plan_view.views():
            view.set_status("planned")
        state.set_status(stage.id, st.IN_PROGRESS)
        self._set_result(lambda lang: Content.styled(t("run_running", lang), "$accent"))
        self.log_pane.focus()
        self._engine = asyncio.ensure_future(
            apply_stage(state, stage, self.items, self.bridge, self.token, ask=self._ask_secret)
        )
        try:
            self.report = await self._engine
        except InputProblems as e:
            self.input_problems = e.problems
        except asyncio.CancelledError:
            if self._engine is not None and not self._engine.done():
                self._engine.cancel()  # this worker was cancelled (the screen or the app closes): stop the engine too
            if not self.token.cancelled:
                raise
            # else Esc while asking for secrets: stopped before anything ran
        finally:
            self.running = False
            self._engine = None
            self.drain()
            self.refresh_bindings()
        self._finish(before)

    def _finish(self, before: str) -> None:
        state, stage, report = self.state, self.stage, self.report
        if report is None:
            state.set_status(stage.id, before)
            problems = "; ".join(self.input_problems)
            if problems:
                self._set_result(
                    lambda lang: Content.styled(t("run_input_problems", lang, problems=problems), "$text-error")
                )
            else:
                self._set_result(lambda lang: Content.styled(t("run_interrupted_before", lang), "$text-warning"))
            return
        done = {r.item.id: r for r in report.results}
        for view in self.plan_view.views():
            r = done.get(view.item.id)
            if view.status == "running":
                view.set_status("interrupted")
            elif r is not None and r.status == "failed":
                view.set_status("failed", r.detail, r.faq_id)
        if report.status == "ok":
            state.set_status(stage.id, st.PASSED)
            counts = ", ".join(f"{n} {s}" for s, n in sorted(report.counts().items()))
            self._set_result(
                lambda lang: Content.styled(t("run_passed", lang, id=stage.id, counts=counts), "$text-success")
            )
        elif report.status == "failed":
            state.set_status(stage.id, st.FAILED)
            failed = next((r for r in report.results if r.status == "failed"), None)
            item = failed.item.name if failed else stage.id
            detail = failed.detail if failed else report.message
            faq = failed.faq_id if failed else None
            evidence = next((e for e in (failed.evidence if failed else []) if e.strip()), "")

            def failed_text(lang: str) -> Content:
                parts = [Content.styled(t("run_failed", lang, id=stage.id, item=item, detail=detail), "$text-error")]
                if faq:
                    parts.append(Content.styled(t("run_faq", lang, faq=faq, evidence=evidence or "-"), "bold"))
                parts.append(Content.styled(t("run_press_t", lang), "$text-warning"))
                return Content("\n").join(parts)

            self._set_result(failed_text)
        else:  # interrupted: resumable with --from
            # the items finished before the interruption are known from their step_finished events
            changed = any(v.status == "applied" for v in self.plan_view.views())
            state.set_status(stage.id, st.FAILED if changed else before)
            step = self._step or stage.id
            cmd = f"{state.replay_command()} --from {stage.id}"
            self._set_result(
                lambda lang: Content.styled(t("run_interrupted", lang, step=step, cmd=cmd), "$text-warning")
            )

    # --- stopping and leaving ---------------------------------------------------------------------------------------

    def action_cancel(self) -> None:
        """Stop the running step: the token stops in-process work, cancelling the engine's task kills a command."""
        if not self.running:
            return
        if self.token is not None:
            self.token.cancel("stopped from the wizard")
        if self._engine is not None:
            self._engine.cancel()

    def action_back(self) -> None:
        if self.running:
            self.action_cancel()
            return
        self.dismiss()

    def action_quit_app(self) -> None:
        if not self.running:
            self.app.exit()
            return
        from .run_dialogs import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.action_cancel()
                self.app.exit()

        self.app.push_screen(
            ConfirmScreen(t("run_leave", self.wizard.lang, id=self.stage.id), self.wizard.lang), answered
        )

    def action_troubleshoot(self) -> None:
        if self.running:
            self.notify(t("run_busy", self.wizard.lang), severity="warning")
            return
        try:
            from .troubleshoot import TroubleshootScreen
        except ImportError:
            self.notify(t("run_no_troubleshoot", self.wizard.lang), severity="warning")
            return
        self.app.push_screen(TroubleshootScreen(self.stage.flow))
