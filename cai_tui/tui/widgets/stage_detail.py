"""The right-hand pane of a flow: everything a stage spec says, in the current language."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from ...stages.spec import StageSpec
from ..i18n import t
from ..text import reflow
from ..values import answer_value
from .field_view import FieldView
from .step_view import StepView


class StageDetail(VerticalScroll):
    """Re-composed whenever the stage or the language changes; both are reactives set by the flow screen."""

    stage: reactive[StageSpec | None] = reactive(None, recompose=True)
    lang: reactive[str] = reactive("en", recompose=True)

    def __init__(self, *, answers: Any | None, count: int, loaded: Any | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.answers = answers  # the recipe's answers for this flow, or None
        self.loaded = loaded  # the LoadedRecipe when it belongs to this flow (action plans), or None
        self.count = count

    def compose(self) -> ComposeResult:
        stage, lang = self.stage, self.lang
        if stage is None:
            return
        yield Static(t("stage_n", lang, order=stage.order, count=self.count), classes="stage-n")
        yield Static(stage.title.get(lang), classes="stage-title", markup=False)
        yield Static(t("covers", lang) + " · ".join(stage.covers), classes="stage-covers", markup=False)
        yield Static(reflow(stage.help.get(lang)), classes="stage-help", markup=False)
        yield Static(t("fields", lang), classes="section")
        if not stage.fields:
            yield Static(t("no_fields", lang), classes="empty")
        for spec in stage.fields:
            value = answer_value(self.answers, spec.path) if self.answers is not None else None
            yield FieldView(spec, value, lang)
        yield Static(t("steps", lang), classes="section")
        for step in stage.steps:
            yield StepView(step, stage, lang, loaded=self.loaded)
