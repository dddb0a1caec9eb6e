"""One documented step of a stage: the ID it covers, guidance, input, what is done and how it is verified."""

from __future__ import annotations

import shlex
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from ...actions import registry
from ...stages.spec import Doer, Manual, StageSpec, Step
from ..i18n import role, t
from ..text import command_lines, reflow


class StepView(Vertical):
    def __init__(self, step: Step, stage: StageSpec, lang: str, *, loaded: Any | None = None) -> None:
        super().__init__(classes="step")
        self.step = step
        self.stage = stage
        self.lang = lang
        self.loaded = loaded  # the recipe the action plans are computed from (None: no plans shown)

    def compose(self) -> ComposeResult:
        lang = self.lang
        yield Static(
            Content.assemble((self.step.covers, "bold $text-accent"), "   ", self._inputs()), classes="step-head"
        )
        yield Static(reflow(self.step.guidance.get(lang)), classes="step-guidance", markup=False)
        yield Static(Content.styled(t("do", lang), "bold"), classes="step-do-head")
        why_not = self._not_applicable()
        if why_not:  # the step's when: is false for this recipe: shown, but nothing of it is offered to run
            yield Static(Content.styled(why_not, "italic $text-warning"), classes="step-not-applicable")
            self.add_class("-not-applicable")
        for doer in self.step.do:
            yield Static(doer_content(doer, lang), classes="step-do")
            for planned in [] if why_not else self._plan(doer):
                yield Static(
                    Content.styled(t("runs", lang) + shlex.join(planned.argv), "$text-secondary"),
                    classes="step-command step-runs",
                )
                for note in planned.notes:
                    yield Static(Content.styled("  ! " + note, "$text-warning"), classes="step-command step-runs-note")
            if doer.command:
                yield Static(
                    Content.styled("$ " + command_lines(self._filled(doer.command)), "$text-secondary"),
                    classes="step-command",
                )
        yield Static(self._verify(), classes="step-verify")

    def _not_applicable(self) -> str:
        """Why the step does not apply to the loaded recipe (its ``when:``), or '' (it applies, or no recipe)."""
        if self.loaded is None or not self.step.when:
            return ""
        from ...engine.plan import unmet
        from ...recipe.problems import RecipeError

        try:
            miss = unmet(self.step, self.loaded)
        except RecipeError:  # a when: path the recipe's model lacks (an odd spec): shown as applying
            return ""
        if miss is None:
            return ""
        path, wanted, value = miss
        return t(
            "step_not_applicable",
            self.lang,
            wanted=" / ".join(wanted),
            path=path,
            value=value or t("unset", self.lang),
        )

    def _plan(self, doer: Doer) -> list[registry.PlanStep]:
        """The registered action's steps for the loaded recipe; none when either is missing (read-only display)."""
        spec = registry.get(doer.action) if doer.action else None
        if spec is None or self.loaded is None:
            return []
        try:
            return spec.plan(self.loaded)
        except (ValueError, TypeError, AttributeError):  # a recipe the plan cannot read: show the doer as before
            return []

    def _filled(self, command: str) -> str:
        """The command with the recipe's values in place of ``{field.path}`` (unset ones as ``<UNSET:path>``);
        as written when no recipe of this flow is open."""
        if self.loaded is None:
            return command
        from ...engine.plan import fill
        from ...recipe.problems import RecipeError

        try:
            return fill(command, self.loaded)[0]
        except RecipeError:  # a placeholder the recipe's model lacks (an odd spec): show it as written
            return command

    def _inputs(self) -> Content:
        lang = self.lang
        if self.step.input == "none":
            names = t("input_none", lang)
        else:
            labels = {f.path: f.label.get(lang) for f in self.stage.fields}
            names = t("list_sep", lang).join(labels.get(p, p) for p in self.step.input)
        return Content.styled(t("input", lang) + names, "$text-muted")

    def _verify(self) -> Content:
        lang = self.lang
        head = (t("verify", lang), "bold")
        if isinstance(self.step.verify, Manual):
            return Content.assemble(
                head, (t("manual", lang), "$text-warning"), reflow(self.step.verify.manual.get(lang))
            )
        return Content.assemble(head, (" · ".join(self.step.verify), "$text-success"))


def doer_content(doer: Doer, lang: str) -> Content:
    if doer.action:
        return Content.assemble("• ", t("action", lang), " ", (doer.action, "$text-primary"))
    if doer.artifact:
        return Content.assemble("• ", t("artifact", lang), " ", (doer.artifact, "$text-primary"))
    return Content("• " + (t("command_on", lang, where=role(doer.where, lang)) if doer.where else t("command", lang)))
