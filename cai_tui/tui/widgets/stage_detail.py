"""The right-hand pane of a flow: a stage's guidance, its form (or read-only fields) and its steps.

With a recipe of this flow open each field is a :class:`FieldEditor` over the draft; otherwise the fields are shown
read-only with how to start a recipe. Re-composed when the stage or the language changes; text typed but not applied
is kept by field path across both, so a language switch (or a visit elsewhere) loses nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from ...recipe.field_kinds import field_kind
from ...stages.spec import StageSpec
from ..i18n import add_strings, t
from ..text import reflow
from .field_editor import FieldEditor
from .field_view import FieldView
from .step_view import StepView

if TYPE_CHECKING:
    from ...recipe.draft import Draft
    from ...recipe.problems import Problem

add_strings(
    {
        "sd.no_recipe": (
            "No recipe of this flow is open, so the fields are read-only: press e to start one from the flow's "
            "example, or open your recipe from the start screen (or start with --recipe FILE).",
            "尚未打开本流程的配方，配置项为只读：按 e 以本流程示例新建配方，或在开始界面打开配方（也可用 --recipe 文件 启动）。",
        ),
    }
)


class StageDetail(VerticalScroll):
    stage: reactive[StageSpec | None] = reactive(None, recompose=True)
    lang: reactive[str] = reactive("en", recompose=True)

    def __init__(self, *, count: int, draft: Draft | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.draft = draft  # the recipe being edited when it belongs to this flow; None: read-only fields
        self.count = count
        # field path -> (text typed but not applied, the draft's refusal of it): carried over a re-compose
        self.kept: dict[str, tuple[str, str | None]] = {}
        self._refocus: str | None = None

    # --- keeping typed text over a re-compose --------------------------------------------------------------------

    @property
    def editors(self) -> list[FieldEditor]:
        return list(self.query(FieldEditor))

    def _keep(self) -> None:
        focused = self.screen.focused if self.is_attached else None
        self._refocus = None
        for editor in self.editors:
            if editor.pending:
                self.kept[editor.path] = (editor.text, editor.problem)
            else:
                self.kept.pop(editor.path, None)
            if focused is not None and editor.has_focus_within:
                self._refocus = editor.path

    def watch_stage(self) -> None:
        self._keep()
        self._refocus = None  # another stage: the focus stays where the user put it (the stage list)

    def watch_lang(self) -> None:
        self._keep()

    def commit_all(self) -> list[Problem]:
        """Apply every editor's pending text; the problems of those the draft refused (their text is kept)."""
        problems = []
        for editor in self.editors:
            problem = editor.commit()
            if problem is not None:
                problems.append(problem)
        return problems

    def refresh_steps(self) -> None:
        """The steps show commands filled from the recipe: redraw them after a field changed."""
        for view in self.query(StepView):
            view.refresh(recompose=True)

    # --- composition ---------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        stage, lang = self.stage, self.lang
        if stage is None:
            return
        yield Static(t("stage_n", lang, order=stage.order, count=self.count), classes="stage-n")
        yield Static(stage.title.get(lang), classes="stage-title", markup=False)
        yield Static(t("covers", lang) + " · ".join(stage.covers), classes="stage-covers", markup=False)
        yield Static(reflow(stage.help.get(lang)), classes="stage-help", markup=False)
        yield Static(t("fields", lang), classes="section")
        draft = self.draft
        if not stage.fields:
            yield Static(t("no_fields", lang), classes="empty")
        elif draft is None:
            yield Static(Content.styled(t("sd.no_recipe", lang), "italic $text-muted"), classes="form-note")
        for spec in stage.fields:
            if draft is None:
                yield FieldView(spec, None, lang)
                continue
            try:
                kind = field_kind(draft.flow, spec.path)
            except ValueError:  # a spec path the model does not have (the loader checks; an odd spec still shows)
                yield FieldView(spec, None, lang)
                continue
            text, problem = self.kept.pop(spec.path, (None, None))
            yield FieldEditor(spec, kind, draft, lang, text=text, problem=problem)
        yield Static(t("steps", lang), classes="section")
        loaded = draft.loaded if draft is not None else None
        for step in stage.steps:
            yield StepView(step, stage, lang, loaded=loaded)
        if self._refocus is not None:
            self.call_after_refresh(self._focus_field, self._refocus)
            self._refocus = None

    def _focus_field(self, path: str) -> None:
        for editor in self.editors:
            if editor.path == path:
                focusable = [w for w in editor.query("Input, Select") if w.focusable]
                if focusable:
                    focusable[0].focus(scroll_visible=True)
                return
