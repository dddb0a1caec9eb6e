"""A stage's plan as the engine made it: one block per item, updated in place as the run reports on each.

Files as diffs, commands filled in from the recipe, manual steps as a checklist naming the checks that prove them,
items that do not apply greyed with why, and the recipe problems with the field to fix.
"""

from __future__ import annotations

import re

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from ...engine.items import Item
from ..i18n import add_strings, t

UNSET_RE = re.compile(r"<(?:UNSET|PROMPT):([A-Za-z0-9_.\[\]]+)>")
MARKS = {
    "planned": ("○", "$text-muted"),
    "running": ("▶", "$accent"),
    "applied": ("●", "$text-success"),
    "skipped": ("✓", "$text-success"),
    "waived": ("≈", "$text-warning"),
    "failed": ("✗", "$text-error"),
    "interrupted": ("◌", "$text-warning"),
}
DIFF_LINES = 40  # a long diff is cut here (the whole file is in the files folder once written)

add_strings(
    {
        "plan_kind.action": ("runs", "执行"),
        "plan_kind.file": ("writes", "写入"),
        "plan_kind.command": ("command", "命令"),
        "plan_kind.manual": ("by hand", "手动"),
        "plan_kind.check": ("check", "检查"),
        "plan_on": ("on {target}", "于 {target}"),
        "plan_proved_by": ("proved by: {checks}", "由以下检查证明：{checks}"),
        "plan_no_check": ("nothing here can check it: confirm it yourself", "无法自动检查：请自行确认"),
        "plan_fix_field": ("fix the field {field}", "请修改配置项 {field}"),
        "plan_unchanged": ("unchanged: the target's copy is the same", "无变化：目标上的文件相同"),
        "plan_diff_cut": ("… {n} more diff line(s)", "… 另有 {n} 行差异"),
        "plan_covered": ("done by {doer}", "由 {doer} 完成"),
        "plan_empty": ("This stage plans nothing for this recipe.", "对当前配方，本阶段无任何计划项。"),
        "plan_status.planned": ("planned", "计划中"),
        "plan_status.running": ("running", "执行中"),
        "plan_status.applied": ("applied", "已应用"),
        "plan_status.skipped": ("nothing to do", "无需操作"),
        "plan_status.waived": ("waived", "已豁免"),
        "plan_status.failed": ("failed", "失败"),
        "plan_status.interrupted": ("interrupted", "已中断"),
    }
)


def problem_fields(item: Item) -> list[str]:
    """The recipe fields an item's problems point at (``<UNSET:path>`` in its text, ``answers.x`` in a problem)."""
    fields = [f"answers.{m}" for m in UNSET_RE.findall(item.text)]
    for p in item.problems:
        m = re.match(r"(answers\.[A-Za-z0-9_.]+)", p)
        if m:
            fields.append(m.group(1))
    return list(dict.fromkeys(fields))


class ItemView(Static):
    """One item: its head line (mark, step, what, where), then what it does or why it does not apply."""

    def __init__(self, item: Item, index: int, lang: str) -> None:
        super().__init__(id=f"plan-item-{index}", classes="plan-item")
        self.item = item
        self.lang = lang
        self.status = "planned"
        self.detail = ""
        self.faq_id: str | None = None
        if not item.applies:
            self.add_class("-not-applicable")

    def on_mount(self) -> None:
        self.redraw()

    def set_status(self, status: str, detail: str = "", faq_id: str | None = None) -> None:
        self.status, self.detail, self.faq_id = status, detail, faq_id
        self.set_class(status == "failed", "-failed")
        if self.is_mounted:
            self.redraw()

    def redraw(self) -> None:
        self.update(render_item(self.item, self.status, self.detail, self.faq_id, self.lang))


def render_item(item: Item, status: str, detail: str, faq_id: str | None, lang: str) -> Content:
    mark, style = MARKS.get(status, ("?", ""))
    muted = not item.applies
    head = Content.assemble(
        (f"{mark} ", style),
        (f"{item.covers} ", "$text-muted"),
        (t(f"plan_kind.{item.kind}", lang) + " ", "bold" if not muted else "$text-muted"),
        (item.name if item.kind in ("action", "check", "file") else item.title, "" if not muted else "$text-muted"),
        (" " + t("plan_on", lang, target=item.target), "$text-muted"),
        (f"  [{t(f'plan_status.{status}', lang)}]", style) if status != "planned" else "",
    )
    lines: list[Content] = [head]

    def add(text: str, style: str = "") -> None:
        lines.append(Content.styled("    " + text, style))

    if not item.applies:
        add(item.not_applicable, "$text-muted")
        return Content("\n").join(lines)
    if item.kind == "action" and item.argv:
        add("$ " + item.command_line)
    elif item.kind == "command":
        add("$ " + item.text)
        if item.covered_by:
            add(t("plan_covered", lang, doer=item.covered_by), "$text-muted")
    elif item.kind == "manual":
        box = "☑" if status in ("skipped", "applied", "waived") else "☐"
        add(f"{box} {item.text or item.title}")
        checks = ", ".join(item.guard)
        add(t("plan_proved_by", lang, checks=checks) if checks else t("plan_no_check", lang), "$text-muted")
    elif item.kind == "file":
        add(item.text)
        if item.diff == "":
            add(t("plan_unchanged", lang), "$text-muted")
        elif item.diff:
            diff = item.diff.splitlines()
            for line in diff[:DIFF_LINES]:
                style = "$text-success" if line.startswith("+") else "$text-error" if line.startswith("-") else ""
                add(line, style)
            if len(diff) > DIFF_LINES:
                add(t("plan_diff_cut", lang, n=len(diff) - DIFF_LINES), "$text-muted")
    elif item.kind == "check":
        add(item.title, "$text-muted")
    if item.guard and item.kind in ("action", "file", "command"):
        add(t("plan_proved_by", lang, checks=", ".join(item.guard)), "$text-muted")
    for problem in item.problems:
        add("! " + problem, "$text-warning")
    for name in problem_fields(item):
        add("→ " + t("plan_fix_field", lang, field=name), "$text-warning")
    if detail and status != "planned":
        add(detail, "$text-error" if status == "failed" else "$text-muted")
    if faq_id:
        add(f"FAQ: {faq_id}", "bold $text-error")
    return Content("\n").join(lines)


class PlanView(VerticalScroll):
    """Every item of the plan; :meth:`set_result` marks one by its id as the run reports on it."""

    DEFAULT_CSS = """
    PlanView { height: 1fr; }
    PlanView > .plan-item { margin: 0 0 1 0; }
    PlanView > .-not-applicable { color: $text-muted; }
    """

    def __init__(self, items: list[Item], *, lang: str = "en", id: str | None = None) -> None:
        super().__init__(id=id)
        self.items = items
        self.lang = lang
        self._by_id: dict[str, list[int]] = {}
        for i, it in enumerate(items):
            self._by_id.setdefault(it.id, []).append(i)

    def compose(self):  # type: ignore[no-untyped-def]
        if not self.items:
            yield Static(t("plan_empty", self.lang), id="plan-empty")
        for i, it in enumerate(self.items):
            yield ItemView(it, i, self.lang)

    def views(self) -> list[ItemView]:
        return list(self.query(ItemView))

    def view_of(self, item_id: str) -> ItemView | None:
        """The first item with ``item_id`` that has not finished (ids repeat only across covers)."""
        views = self.views()
        indexes = self._by_id.get(item_id, [])
        for i in indexes:
            if views[i].status in ("planned", "running"):
                return views[i]
        return views[indexes[0]] if indexes else None

    def set_result(self, item_id: str, status: str, detail: str = "", faq_id: str | None = None) -> None:
        view = self.view_of(item_id)
        if view is not None:
            view.set_status(status, detail, faq_id)
            if status in ("running", "failed"):
                self.scroll_to_widget(view, animate=False)

    def refresh_items(self) -> None:
        """Redraw after the items changed (diffs added)."""
        for view in self.views():
            view.redraw()

    def set_lang(self, lang: str) -> None:
        self.lang = lang
        for view in self.views():
            view.lang = lang
            view.redraw()
        for empty in self.query("#plan-empty").results(Static):
            empty.update(t("plan_empty", lang))
