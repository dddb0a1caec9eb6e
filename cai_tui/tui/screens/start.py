"""The first screen: which procedure to follow, which recipe is loaded, whether the lab runs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from ..i18n import flow_title, t
from .base import LocalizedScreen
from .flow import FlowScreen


class StartScreen(LocalizedScreen):
    def compose(self) -> ComposeResult:
        yield Header()
        if self.state.lab_info is not None:
            yield Static(id="lab-banner")
        yield Static(id="recipe-line")
        yield Static(id="choose")
        yield OptionList(*(Option("", id=flow) for flow in self.state.flows), id="flow-list")
        yield Footer()

    def prepare(self) -> None:
        flows = list(self.state.flows)
        preselect = self.state.recipe_flow
        self.query_one("#flow-list", OptionList).highlighted = flows.index(preselect) if preselect in flows else 0

    def apply_lang(self, lang: str) -> None:
        self.sub_title = t("app_subtitle", lang)
        if self.state.lab_info is not None:
            self.query_one("#lab-banner", Static).update(self._lab_banner(lang))
        self.query_one("#recipe-line", Static).update(self._recipe_line(lang))
        self.query_one("#choose", Static).update(t("choose_flow", lang))
        flow_list = self.query_one("#flow-list", OptionList)
        for flow in self.state.flows:
            flow_list.replace_option_prompt(flow, self._flow_prompt(flow, lang))

    def _lab_banner(self, lang: str) -> Content:
        info = self.state.lab_info or {}
        lines: list[str | tuple[str, str]] = [(t("lab_running", lang), "bold")]
        for key, label in (
            ("trustee_url", "lab_trustee"),
            ("oss_endpoint", "lab_oss"),
            ("kms_endpoint", "lab_kms"),
            ("recipe", "lab_recipe"),
        ):
            if info.get(key) is not None:
                lines += ["\n", (t(label, lang), "$text-muted"), str(info[key])]
        return Content.assemble(*lines)

    def _recipe_line(self, lang: str) -> Content:
        state = self.state
        if state.recipe_problems:
            return Content.assemble(
                (t("recipe_failed", lang), "bold $text-error"), "\n", "\n".join(state.recipe_problems)
            )
        if state.loaded is None:
            return Content.styled(t("recipe_none", lang), "$text-muted")
        recipe = state.loaded.recipe
        return Content(t("recipe_loaded", lang, name=recipe.name, flow=recipe.flow, path=state.loaded.path or "-"))

    def _flow_prompt(self, flow: str, lang: str) -> Content:
        stages = self.state.flows[flow].stages
        covers = [c for s in stages for c in s.covers]
        meta = t(
            "flow_meta",
            lang,
            count=len(stages),
            first=covers[0] if covers else "-",
            last=covers[-1] if covers else "-",
            flow=flow,
        )
        mine = t("your_recipe", lang) if flow == self.state.recipe_flow else ""
        return Content.assemble((flow_title(flow, lang), "bold"), (mine, "$text-success"), "\n", (meta, "$text-muted"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.app.push_screen(FlowScreen(event.option.id))
