"""One documented step of a stage: the ID it covers, guidance, input, what is done and how it is verified."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from ...stages.spec import Doer, Manual, StageSpec, Step
from ..i18n import t


class StepView(Vertical):
    def __init__(self, step: Step, stage: StageSpec, lang: str) -> None:
        super().__init__(classes="step")
        self.step = step
        self.stage = stage
        self.lang = lang

    def compose(self) -> ComposeResult:
        lang = self.lang
        yield Static(Content.assemble((self.step.covers, "bold $accent"), "  ", self._inputs()), classes="step-head")
        yield Static(self.step.guidance.get(lang).strip(), classes="step-guidance", markup=False)
        for doer in self.step.do:
            yield Static(doer_content(doer, lang), classes="step-do")
        yield Static(self._verify(), classes="step-verify")

    def _inputs(self) -> Content:
        lang = self.lang
        if self.step.input == "none":
            names = t("input_none", lang)
        else:
            labels = {f.path: f.label.get(lang) for f in self.stage.fields}
            names = ", ".join(labels.get(p, p) for p in self.step.input)
        return Content.styled(f"{t('input', lang)}: {names}", "$text-muted")

    def _verify(self) -> Content:
        lang = self.lang
        head = (f"{t('verify', lang)}: ", "bold")
        if isinstance(self.step.verify, Manual):
            return Content.assemble(head, (f"{t('manual', lang)} — ", "$text-warning"), self.step.verify.manual.get(lang))
        return Content.assemble(head, (" · ".join(self.step.verify), "$text-success"))


def doer_content(doer: Doer, lang: str) -> Content:
    head = (f"{t('do', lang)}: ", "bold")
    if doer.action:
        return Content.assemble(head, f"{t('action', lang)} ", (doer.action, "$text-primary"))
    if doer.artifact:
        return Content.assemble(head, f"{t('artifact', lang)} ", (doer.artifact, "$text-primary"))
    where = f" ({t('on_where', lang, where=doer.where)})" if doer.where else ""
    return Content.assemble(head, f"{t('command', lang)}{where}: ", ("$ " + (doer.command or "").strip(), "$text-secondary"))
