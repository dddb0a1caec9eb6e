"""The first screen: choose a flow, open a recipe (or a recent one), troubleshoot, run the doctor, try the lab.

It paints before any stage spec is read: the flows are listed by id and title, and their stage counts are filled
in by a worker right after the first frame (reading and validating the specs costs more than the whole paint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from ..i18n import add_strings, flow_title, t
from ..recent import RecentRecipe, load_recent
from ..state import FlowsOnDemand, flows_ready
from .base import LocalizedScreen

add_strings(
    {
        # bindings (and the menu entries of the same id)
        "open_recipe": ("Open recipe", "打开配方"),
        "save_as": ("Save as", "另存为"),
        "replay_command": ("Replay command", "重放命令"),
        "doctor": ("Doctor", "体检"),
        "try_lab": ("Lab", "实验环境"),
        # the menu
        "start.more": ("More", "更多"),
        "start.recent": ("Recent recipes", "最近的配方"),
        "start.recent_none": ("none yet: recipes you open or save appear here", "暂无：打开或保存的配方会显示在这里"),
        "start.menu.open_recipe": ("Open a recipe…", "打开配方…"),
        "start.menu.save_as": ("Save as…", "另存为…"),
        "start.menu.replay_command": ("Replay headlessly", "无界面重放"),
        "start.menu.troubleshoot": ("Troubleshoot a setup", "排查已部署环境"),
        "start.menu.doctor": ("Run the doctor", "运行体检"),
        "start.menu.try_lab": ("Try the lab", "试用实验环境"),
        "start.recipe_none": (
            "No recipe open: choose a flow to start one from its example, or open a recipe (o).",
            "尚未打开配方：选择流程将从其示例新建配方，或打开已有配方（o）。",
        ),
        "start.reading": ("reading the stages…", "正在读取阶段…"),
        "start.specs_failed": ("The stage specs could not be read:", "阶段说明读取失败："),
        "recipe_unsaved": (
            "Recipe {name} (flow {flow}), not saved to a file yet: Ctrl+S saves it.",
            "配方 {name}（流程 {flow}），尚未保存为文件：按 Ctrl+S 保存。",
        ),
        "recipe_dirty": ("  · unsaved changes", "  · 有未保存的修改"),
        # messages
        "start.need_recipe": (
            "{what} needs a recipe: choose a flow or open a recipe (o) first.",
            "{what}需要配方：请先选择流程或打开配方（o）。",
        ),
        "start.troubleshoot_what": ("Troubleshooting", "故障排查"),
        "start.doctor_what": ("The doctor", "体检"),
        "start.replay_what": ("The replay command", "重放命令"),
        "start.save_what": ("Saving", "保存"),
        "start.replace_draft": (
            "The recipe {name} has unsaved changes. Start a new {flow} recipe and discard them?",
            "配方 {name} 有未保存的修改。要新建 {flow} 配方并丢弃这些修改吗？",
        ),
        "start.discard_open": (
            "The recipe {name} has unsaved changes. Open the other recipe and discard them?",
            "配方 {name} 有未保存的修改。要打开另一个配方并丢弃这些修改吗？",
        ),
        "start.lab_off": (
            "The lab is not running. Start the wizard with: cai-tui --lab — it runs Trustee, OSS and KMS on this"
            " machine (and a Docker instance where it can), opens a demo recipe, and lets you switch faults on.",
            "实验环境未启动。请用 cai-tui --lab 启动向导：它会在本机运行 Trustee、OSS 和 KMS"
            "（可行时还有 Docker 实例），打开演示配方，并可开启故障开关。",
        ),
    }
)

MENU = ("open_recipe", "save_as", "replay_command", "troubleshoot", "doctor", "try_lab")


class StartScreen(LocalizedScreen):
    BINDINGS = [
        Binding("o", "open_recipe", "Open recipe", id="open_recipe"),
        Binding("t", "troubleshoot", "Troubleshoot", id="troubleshoot"),
        Binding("d", "doctor", "Doctor", id="doctor"),
        Binding("l", "try_lab", "Lab", id="try_lab", show=False),
        Binding("a", "save_as", "Save as", id="save_as", show=False),
        Binding("h", "replay_command", "Replay command", id="replay_command", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.recent: list[RecentRecipe] = []
        self.specs_problem: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        if self.state.lab_info is not None:
            yield Static(id="lab-banner")
        yield Static(id="recipe-line")
        yield Static(id="choose")
        yield OptionList(*(Option("", id=flow) for flow in self.state.flows), id="flow-list")
        yield Static(id="specs-problem", markup=False)
        with Horizontal(id="start-more"):
            yield OptionList(*(Option("", id=entry) for entry in MENU), id="start-menu")
            yield OptionList(id="recent-list")
        yield Footer()

    def prepare(self) -> None:
        self.set_class(self.state.lab_info is not None, "-lab")
        self.query_one("#specs-problem", Static).display = False
        self._highlight_recipe_flow()
        self._read_recent()
        if not flows_ready(self.state.flows):
            self.call_after_refresh(self._read_specs)

    # --- texts -------------------------------------------------------------------------------------------------------

    def apply_lang(self, lang: str) -> None:
        self.sub_title = t("app_subtitle", lang)
        if self.state.lab_info is not None:
            self.query_one("#lab-banner", Static).update(self._lab_banner(lang))
        self.query_one("#recipe-line", Static).update(self._recipe_line(lang))
        self.query_one("#choose", Static).update(t("choose_flow", lang))
        flow_list = self.query_one("#flow-list", OptionList)
        for flow in self.state.flows:
            flow_list.replace_option_prompt(flow, self._flow_prompt(flow, lang))
        menu = self.query_one("#start-menu", OptionList)
        menu.border_title = t("start.more", lang)
        for entry in MENU:
            key = next(b.key for b in self.BINDINGS if isinstance(b, Binding) and b.id == entry)
            menu.replace_option_prompt(
                entry, Content.assemble(t(f"start.menu.{entry}", lang), (f"  {key}", "$text-muted"))
            )
        self._fill_recent(lang)
        if self.specs_problem is not None:
            problem = self.query_one("#specs-problem", Static)
            problem.update(
                Content.assemble((t("start.specs_failed", lang), "bold $text-error"), "\n", self.specs_problem)
            )

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
            return Content.styled(t("start.recipe_none", lang), "$text-muted")
        recipe = state.loaded.recipe
        if state.loaded.path is None:
            line = Content(t("recipe_unsaved", lang, name=recipe.name, flow=recipe.flow))
        else:
            line = Content(t("recipe_loaded", lang, name=recipe.name, flow=recipe.flow, path=state.loaded.path))
        if state.draft is not None and state.draft.dirty:
            line = Content.assemble(line, (t("recipe_dirty", lang), "$text-warning"))
        return line

    def _flow_prompt(self, flow: str, lang: str) -> Content:
        mine = t("your_recipe", lang) if flow == self.state.recipe_flow else ""
        head = Content.assemble((flow_title(flow, lang), "bold"), (mine, "$text-success"))
        if not flows_ready(self.state.flows) or self.specs_problem is not None:
            meta = t("start.reading", lang) if self.specs_problem is None else f"flow {flow}"
            return Content.assemble(head, "\n", (meta, "$text-muted"))
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
        return Content.assemble(head, "\n", (meta, "$text-muted"))

    def _fill_recent(self, lang: str) -> None:
        recent = self.query_one("#recent-list", OptionList)
        recent.border_title = t("start.recent", lang)
        highlighted = recent.highlighted
        recent.clear_options()
        if not self.recent:
            recent.add_option(Option(Content.styled(t("start.recent_none", lang), "$text-muted"), disabled=True))
            return
        for i, entry in enumerate(self.recent):
            label = entry.name or entry.path.name
            meta = f" · {entry.flow}" if entry.flow else ""
            recent.add_option(
                Option(
                    Content.assemble((label, "bold"), (meta, "$text-muted"), "\n", (_short(entry.path), "$text-muted")),
                    id=f"recent-{i}",
                )
            )
        if highlighted is not None:
            recent.highlighted = min(highlighted, len(self.recent) - 1)

    def refresh_texts(self) -> None:
        """After the recipe or the recent list changed (a dialog closed, the screen came back)."""
        self._read_recent()
        self.apply_lang(self.wizard.lang)

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.refresh_texts()

    def _read_recent(self) -> None:
        self.recent, warnings = load_recent()
        for warning in warnings:
            self.notify(warning, severity="warning", timeout=8)

    def _highlight_recipe_flow(self) -> None:
        flows = list(self.state.flows)
        preselect = self.state.recipe_flow
        self.query_one("#flow-list", OptionList).highlighted = flows.index(preselect) if preselect in flows else 0

    # --- the stage specs, read after the first paint ------------------------------------------------------------------

    def _read_specs(self) -> None:
        self.run_worker(self._load_specs, thread=True, group="stage-specs", exit_on_error=False)

    def _load_specs(self) -> None:
        from ...stages import StageSpecError

        flows = self.state.flows
        try:
            if isinstance(flows, FlowsOnDemand):
                flows.load()
        except StageSpecError as e:
            self.app.call_from_thread(self._specs_failed, str(e))
            return
        self.app.call_from_thread(self._specs_read)

    def _specs_read(self) -> None:
        if self.is_mounted:
            self.apply_lang(self.wizard.lang)

    def _specs_failed(self, problem: str) -> None:
        self.specs_problem = problem
        if self.is_mounted:
            self.query_one("#specs-problem", Static).display = True
            self.apply_lang(self.wizard.lang)

    # --- the menu ------------------------------------------------------------------------------------------------------

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        option_id = event.option.id
        if option_id is None:
            return
        list_id = event.option_list.id
        if list_id == "flow-list":
            self.choose_flow(option_id)
        elif list_id == "start-menu":
            await self.run_action(option_id)  # the entries are named after the bindings' actions
        elif list_id == "recent-list":
            self.open_path(self.recent[event.option_index].path)

    def choose_flow(self, flow: str) -> None:
        """The open recipe's flow opens as it is; another flow starts a new recipe from the flow's example (a flow
        without one, e.g. a spec folder of tests, opens without a recipe)."""
        from ...recipe.examples import EXAMPLES
        from .recipe_files import ConfirmScreen, unsaved_changes

        state = self.state
        if state.recipe_flow == flow or flow not in EXAMPLES:
            self._open_flow(flow)
            return
        if unsaved_changes(state):
            assert state.loaded is not None
            question = ConfirmScreen("start.replace_draft", name=state.loaded.recipe.name, flow=flow)
            self.app.push_screen(question, lambda yes: self._new_recipe(flow) if yes else None)
            return
        self._new_recipe(flow)

    def _new_recipe(self, flow: str) -> None:
        self.state.new_recipe(flow)
        self.refresh_texts()
        self._open_flow(flow)

    def _open_flow(self, flow: str) -> None:
        from ...stages import StageSpecError
        from .flow import FlowScreen

        try:
            self.state.flows[flow]
        except StageSpecError as e:
            self.notify(str(e), title=t("start.specs_failed", self.wizard.lang), severity="error", timeout=15)
            return
        self.app.push_screen(FlowScreen(flow))

    def open_path(self, path: Path) -> None:
        """Open a recipe file (a recent one): the loader's message when it is no longer a valid recipe."""
        from ...recipe import RecipeError, load_recipe
        from .recipe_files import ConfirmScreen, remember_recipe, unsaved_changes

        lang = self.wizard.lang
        try:
            load_recipe(path)
        except RecipeError as e:
            self.notify(str(e), title=t("recipe_failed", lang), severity="error", timeout=15)
            return

        def really_open(yes: bool | None = True) -> None:
            if not yes:
                return
            problems = self.state.open_recipe(path)
            if problems:
                self.notify("\n".join(problems), title=t("recipe_failed", lang), severity="error", timeout=15)
                return
            loaded = self.state.loaded
            assert loaded is not None
            remember_recipe(self.app, path, loaded.recipe.flow, loaded.recipe.name)
            self.notify(t("opened", lang, name=loaded.recipe.name, flow=loaded.recipe.flow, path=path))
            self._after_open()

        state = self.state
        if unsaved_changes(state):
            assert state.loaded is not None
            name = state.loaded.recipe.name
            self.app.push_screen(ConfirmScreen("start.discard_open", name=name), really_open)
            return
        really_open()

    def _after_open(self, result: Any = True) -> None:
        if result is None:
            return
        self.refresh_texts()
        self._highlight_recipe_flow()
        self.query_one("#flow-list", OptionList).focus()

    def _needs_recipe(self, what: str) -> bool:
        if self.state.loaded is None:
            lang = self.wizard.lang
            self.notify(t("start.need_recipe", lang, what=t(what, lang)), severity="warning", timeout=8)
            return True
        return False

    def action_open_recipe(self) -> None:
        from .recipe_files import OpenRecipeScreen

        self.app.push_screen(OpenRecipeScreen(), self._after_open)

    def action_save_as(self) -> None:
        from .recipe_files import SaveAsScreen

        if self._needs_recipe("start.save_what"):
            return
        self.app.push_screen(SaveAsScreen(), lambda _written: self.refresh_texts())

    def action_replay_command(self) -> None:
        from .recipe_files import ReplayCommandScreen

        if self._needs_recipe("start.replay_what"):
            return
        self.app.push_screen(ReplayCommandScreen())

    def action_troubleshoot(self) -> None:
        if self._needs_recipe("start.troubleshoot_what"):
            return
        from .troubleshoot import TroubleshootScreen

        flow = self.state.recipe_flow
        assert flow is not None
        self.app.push_screen(TroubleshootScreen(flow))

    def action_doctor(self) -> None:
        if self._needs_recipe("start.doctor_what"):
            return
        from .checks import ChecksScreen

        self.app.push_screen(ChecksScreen(None))

    def action_try_lab(self) -> None:
        lab = self.state.lab
        if lab is None or not getattr(lab, "running", False):
            self.notify(t("start.lab_off", self.wizard.lang), timeout=15)
            return
        from .lab_faults import LabFaultsScreen

        self.app.push_screen(LabFaultsScreen())


def _short(path: Path) -> str:
    """A path as the user would type it: ~ for the home folder."""
    home = Path.home()
    try:
        return "~/" + str(path.relative_to(home))
    except ValueError:
        return str(path)
