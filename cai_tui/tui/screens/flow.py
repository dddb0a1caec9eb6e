"""One flow: its stages in order on the left, the highlighted stage's detail on the right."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from ...stages.spec import StageSpec
from ..i18n import flow_title, t
from ..widgets.stage_detail import StageDetail
from .base import LocalizedScreen


class FlowScreen(LocalizedScreen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("p", "prev", "Previous stage", id="prev"),
        Binding("n", "next", "Next stage", id="next"),
        Binding("r", "run_stage", "Run stage", id="run_stage"),
        Binding("c", "checks", "Checks", id="checks"),
        Binding("t", "troubleshoot", "Troubleshoot", id="troubleshoot"),
    ]

    def __init__(self, flow: str) -> None:
        super().__init__()
        self.flow = flow

    @property
    def stages(self) -> list[StageSpec]:
        return self.state.flows[self.flow].stages

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="flow-note")
        with Horizontal(id="flow-body"):
            yield OptionList(*(Option("", id=s.id) for s in self.stages), id="stage-list")
            answers = self.state.answers_for(self.flow)
            loaded = self.state.loaded if answers is not None else None
            yield StageDetail(answers=answers, loaded=loaded, count=len(self.stages), id="stage-detail")
        yield Footer()

    def prepare(self) -> None:
        if self.stages:
            self.stage_list.highlighted = 0

    @property
    def stage_list(self) -> OptionList:
        return self.query_one("#stage-list", OptionList)

    @property
    def detail(self) -> StageDetail:
        return self.query_one("#stage-detail", StageDetail)

    def apply_lang(self, lang: str) -> None:
        self.sub_title = flow_title(self.flow, lang)
        self.stage_list.border_title = t("stages", lang)
        for stage in self.stages:
            self.stage_list.replace_option_prompt(stage.id, stage_prompt(stage, lang))
        self.detail.lang = lang
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

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.detail.stage = self.stages[event.option_index]
        self.detail.scroll_home(animate=False)
        self.refresh_bindings()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.detail.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        index = self.stage_list.highlighted if self.is_mounted else None
        if action == "prev":
            return None if not index else True  # shown but dimmed on the first stage
        if action == "next":
            return None if index is None or index >= len(self.stages) - 1 else True
        return True

    def action_prev(self) -> None:
        if self.stage_list.highlighted:
            self.stage_list.highlighted -= 1

    def action_next(self) -> None:
        index = self.stage_list.highlighted
        if index is not None and index < len(self.stages) - 1:
            self.stage_list.highlighted = index + 1

    def action_back(self) -> None:
        self.dismiss()

    @property
    def current_stage(self) -> StageSpec | None:
        index = self.stage_list.highlighted
        return self.stages[index] if index is not None else None

    def action_run_stage(self) -> None:
        from .run_stage import RunStageScreen

        if self.current_stage is not None:
            self.app.push_screen(RunStageScreen(self.current_stage))

    def action_checks(self) -> None:
        from .checks import ChecksScreen

        self.app.push_screen(ChecksScreen(self.current_stage))

    def action_troubleshoot(self) -> None:
        from .troubleshoot import TroubleshootScreen

        self.app.push_screen(TroubleshootScreen(self.flow))


def stage_prompt(stage: StageSpec, lang: str) -> Content:
    covers = stage.covers
    ids = covers[0] if len(covers) == 1 else f"{covers[0]} … {covers[-1]}"
    meta = t("stage_meta", lang, order=stage.order, ids=ids)
    return Content.assemble((stage.title.get(lang), "bold"), "\n", (meta, "$text-muted"))
