"""One flow: a side bar of its stages with their statuses, and the highlighted stage's guidance, form and steps.

Stages can be visited in any order; leaving one applies what was typed and validates the stage against the recipe
model (problems are said, never blocking). Statuses follow :meth:`WizardState.set_status` live.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from ...recipe.draft import Draft
from ...stages.spec import StageSpec
from ..i18n import add_strings, flow_title, t
from ..state import FAILED, IN_PROGRESS, NOT_STARTED, PASSED, WAIVED
from ..widgets.field_editor import FieldEditor
from ..widgets.stage_detail import StageDetail
from .base import LocalizedScreen

add_strings(
    {
        "start_recipe": ("New recipe", "新建配方"),
        "fs.unsaved": ("● unsaved changes", "● 有未保存的修改"),
        "fs.stage_problems": ("{title}: to fix", "{title}：待修正"),
        "fs.more": ("… and {n} more", "……另有 {n} 项"),
        "fs.not_applied": (
            "Not applied (the typed text stays in its field): {paths}",
            "以下配置项未采用（输入的内容仍保留在原处）：{paths}",
        ),
        "fs.save_other_first": (
            "The open recipe {name} has unsaved changes: save it (ctrl+s) before starting a new one.",
            "当前配方 {name} 有未保存的修改：请先保存（ctrl+s）再新建。",
        ),
        "fs.started": (
            "New {flow} recipe from the documented example; ctrl+s saves it.",
            "已按文档示例新建 {flow} 配方；按 ctrl+s 保存。",
        ),
        "fs.status.not-started": ("not started", "未开始"),
        "fs.status.in-progress": ("in progress", "进行中"),
        "fs.status.passed": ("passed", "已通过"),
        "fs.status.failed": ("failed", "失败"),
        "fs.status.waived": ("waived", "已豁免"),
    }
)

# a stage's status in the side bar: icon and colour (the icon alone tells them apart without colour)
STATUS_LOOK: dict[str, tuple[str, str]] = {
    NOT_STARTED: ("○", "$text-muted"),
    IN_PROGRESS: ("◐", "$text-warning"),
    PASSED: ("✔", "$text-success"),
    FAILED: ("✘", "$text-error"),
    WAIVED: ("⊘", "$text-secondary"),
}


class FlowScreen(LocalizedScreen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("p", "prev", "Previous stage", id="prev"),
        Binding("n", "next", "Next stage", id="next"),
        Binding("r", "run_stage", "Run stage", id="run_stage"),
        Binding("c", "checks", "Checks", id="checks"),
        Binding("t", "troubleshoot", "Troubleshoot", id="troubleshoot"),
        Binding("e", "new_recipe", "New recipe", id="start_recipe"),
        Binding("ctrl+s", "save", "Save", id="save"),
        Binding("h", "replay_command", "Replay command", id="replay_command", show=False),
        Binding("l", "lab_faults", "Lab faults", id="lab_faults", show=False),
    ]

    class StatusChanged(Message):
        """A stage's status changed (posted from whatever thread changed it)."""

        def __init__(self, stage_id: str, status: str) -> None:
            super().__init__()
            self.stage_id = stage_id
            self.status = status

    def __init__(self, flow: str) -> None:
        super().__init__()
        self.flow = flow
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def stages(self) -> list[StageSpec]:
        return self.state.flows[self.flow].stages

    @property
    def lang(self) -> str:
        return self.wizard.lang

    @property
    def draft(self) -> Draft | None:
        """The recipe being edited when it belongs to this flow."""
        return self.state.draft if self.state.recipe_flow == self.flow else None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="flow-note")
        with Horizontal(id="flow-body"):
            yield OptionList(*(Option("", id=s.id) for s in self.stages), id="stage-list")
            yield StageDetail(count=len(self.stages), draft=self.draft, id="stage-detail")
        yield Footer()

    def prepare(self) -> None:
        self._unsubscribe = self.state.subscribe(self._status_listener)
        if self.stages:
            self.stage_list.highlighted = 0

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    @property
    def stage_list(self) -> OptionList:
        return self.query_one("#stage-list", OptionList)

    @property
    def detail(self) -> StageDetail:
        return self.query_one("#stage-detail", StageDetail)

    # --- what the screen says ------------------------------------------------------------------------------------

    def apply_lang(self, lang: str) -> None:
        self.stage_list.border_title = t("stages", lang)
        self._refresh_stages(lang)
        self.detail.lang = lang
        self._refresh_note(lang)
        self._refresh_title(lang)

    def _refresh_title(self, lang: str | None = None) -> None:
        lang = lang or self.lang
        draft = self.draft
        mark = f"  {t('fs.unsaved', lang)}" if draft is not None and draft.dirty else ""
        self.sub_title = flow_title(self.flow, lang) + mark

    def _refresh_stages(self, lang: str | None = None) -> None:
        lang = lang or self.lang
        for stage in self.stages:
            self.stage_list.replace_option_prompt(
                stage.id, stage_prompt(stage, lang, self.state.stage_status(stage.id))
            )

    def _refresh_note(self, lang: str) -> None:
        note = self.query_one("#flow-note", Static)
        loaded = self.state.loaded
        if loaded is not None and loaded.recipe.flow != self.flow:
            note.update(
                Content.styled(
                    t("recipe_other_flow", lang, name=loaded.recipe.name, flow=loaded.recipe.flow), "$text-warning"
                )
            )
        elif loaded is None:
            note.update(Content.styled(t("recipe_none", lang), "$text-muted"))
        else:
            note.update(
                t("recipe_loaded", lang, name=loaded.recipe.name, flow=loaded.recipe.flow, path=loaded.path or "-")
            )

    # --- statuses, live ------------------------------------------------------------------------------------------

    def _status_listener(self, stage_id: str, status: str) -> None:
        self.post_message(self.StatusChanged(stage_id, status))  # post_message is thread-safe

    def on_flow_screen_status_changed(self, event: StatusChanged) -> None:
        stage = next((s for s in self.stages if s.id == event.stage_id), None)
        if stage is not None:
            self.stage_list.replace_option_prompt(stage.id, stage_prompt(stage, self.lang, event.status))

    def on_screen_resume(self) -> None:
        """Back from another screen: the recipe may have been opened, saved or replaced there."""
        if not self.is_mounted:
            return
        if self.draft is not self.detail.draft:
            self._use_draft()
        else:
            self._refresh_note(self.lang)  # Save as… gives the recipe its file
            self._refresh_title()
            self._refresh_stages()

    def _use_draft(self) -> None:
        detail = self.detail
        detail.draft = self.draft
        detail.kept.clear()
        detail.refresh(recompose=True)
        self._refresh_note(self.lang)
        self._refresh_title()
        self._refresh_stages()
        self.refresh_bindings()

    # --- the form ------------------------------------------------------------------------------------------------

    def on_field_editor_changed(self, event: FieldEditor.Changed) -> None:
        self._refresh_title()
        self.detail.refresh_steps()

    def _leave(self, stage: StageSpec) -> None:
        """Apply what was typed on ``stage`` and say what the recipe model finds wrong there (never blocking)."""
        refused = self.detail.commit_all()
        draft = self.draft
        if draft is None:
            return
        lines: list[str] = []
        for p in [*refused, *draft.validate(stage)]:
            line = f"{p.field}: {p.message}" if p.field else p.message
            if line not in lines:
                lines.append(line)
        if lines:
            shown = lines[:5] + ([t("fs.more", self.lang, n=len(lines) - 5)] if len(lines) > 5 else [])
            self.notify(
                "\n".join(shown),
                title=t("fs.stage_problems", self.lang, title=stage.title.get(self.lang)),
                severity="warning",
                timeout=8,
            )

    def _commit_form(self) -> None:
        refused = self.detail.commit_all()
        if refused:
            paths = ", ".join(p.field for p in refused)
            self.notify(t("fs.not_applied", self.lang, paths=paths), severity="warning", timeout=8)

    # --- navigation ----------------------------------------------------------------------------------------------

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list is not self.stage_list:
            return
        new = self.stages[event.option_index]
        old = self.detail.stage
        if old is not None and old.id != new.id:
            self._leave(old)
        self.detail.stage = new
        self.detail.scroll_home(animate=False)
        self.refresh_bindings()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list is self.stage_list:
            self.detail.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        index = self.stage_list.highlighted if self.is_mounted else None
        if action == "prev":
            return None if not index else True  # shown but dimmed on the first stage
        if action == "next":
            return None if index is None or index >= len(self.stages) - 1 else True
        if action == "new_recipe":
            return self.is_mounted and self.draft is None
        return True

    def action_prev(self) -> None:
        if self.stage_list.highlighted:
            self.stage_list.highlighted -= 1

    def action_next(self) -> None:
        index = self.stage_list.highlighted
        if index is not None and index < len(self.stages) - 1:
            self.stage_list.highlighted = index + 1

    def action_back(self) -> None:
        """Escape leaves a field first (to the stage list), then the flow."""
        focused = self.focused
        if focused is not None and focused is not self.detail and self.detail in focused.ancestors:
            self.stage_list.focus()
            return
        self._commit_form()
        self.dismiss()

    @property
    def current_stage(self) -> StageSpec | None:
        index = self.stage_list.highlighted
        return self.stages[index] if index is not None else None

    def action_run_stage(self) -> None:
        from .run_stage import RunStageScreen

        if self.current_stage is not None:
            self._commit_form()
            self.app.push_screen(RunStageScreen(self.current_stage))

    def action_checks(self) -> None:
        from .checks import ChecksScreen

        self._commit_form()
        self.app.push_screen(ChecksScreen(self.current_stage))

    def action_troubleshoot(self) -> None:
        from .troubleshoot import TroubleshootScreen

        self.app.push_screen(TroubleshootScreen(self.flow))

    # --- the recipe ----------------------------------------------------------------------------------------------

    def action_replay_command(self) -> None:
        """The exact `cai-tui replay` command doing what this stage's `r` does, headlessly."""
        from .recipe_files import ReplayCommandScreen

        self._commit_form()
        stage = self.current_stage
        self.app.push_screen(ReplayCommandScreen(stage.id if stage is not None else None))

    def action_lab_faults(self) -> None:
        """The running lab's fault switches (under `cai-tui --lab`); the screen says how to start one otherwise."""
        from .lab_faults import LabFaultsScreen

        self.app.push_screen(LabFaultsScreen())

    def action_save(self) -> None:
        """Ctrl+S: apply what is typed in the form, then the app's save (Save as… when the recipe has no file)."""
        self._commit_form()
        self.wizard.action_save()
        self._refresh_title()

    def action_new_recipe(self) -> None:
        """Start a recipe of this flow from its documented example (the form becomes editable)."""
        state = self.state
        if self.draft is not None:
            return
        other = state.draft
        if other is not None and other.dirty:
            self.notify(t("fs.save_other_first", self.lang, name=other.recipe.name), severity="warning", timeout=8)
            return
        state.new_recipe(self.flow)
        self._use_draft()
        self.notify(t("fs.started", self.lang, flow=self.flow))


def stage_prompt(stage: StageSpec, lang: str, status: str = NOT_STARTED) -> Content:
    """The side bar's line for a stage: status icon and title, then its number, first procedure ID and status."""
    covers = stage.covers
    ids = covers[0] if len(covers) == 1 else f"{covers[0]} …"
    icon, style = STATUS_LOOK.get(status, STATUS_LOOK[NOT_STARTED])
    word = f" · {t(f'fs.status.{status}', lang)}" if status != NOT_STARTED else ""
    return Content.assemble(
        (icon + " ", f"bold {style}"),
        (stage.title.get(lang), "bold"),
        "\n  ",
        (f"{stage.order} · {ids}", "$text-muted"),
        (word, style),
    )
