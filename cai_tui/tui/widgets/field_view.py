"""One stage field, read-only: label, current value (when given), dotted path and help.

Shown where no recipe of the flow is open; with one, the stage form uses :class:`~.field_editor.FieldEditor`.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Static

from ...recipe.draft import FieldValue
from ...stages.spec import FieldSpec
from ..i18n import t
from ..text import reflow


class FieldView(Vertical):
    def __init__(self, spec: FieldSpec, value: FieldValue | None, lang: str) -> None:
        super().__init__(classes="field")
        self.spec = spec
        self.value = value  # None: no recipe of this flow is loaded
        self.lang = lang

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-head"):
            yield Static(self.spec.label.get(self.lang), classes="field-label", markup=False)
            if self.value is not None:
                yield Static(value_content(self.value, self.lang), classes="field-value")
        yield Static(self.spec.path, classes="field-path", markup=False)
        if self.spec.help is not None:
            yield Static(reflow(self.spec.help.get(self.lang)), classes="field-help", markup=False)


def value_content(value: FieldValue, lang: str) -> Content:
    if value.text is None:
        return Content.styled(f"— {t('not_set', lang)}", "italic $text-muted")
    parts: list[str | tuple[str, str]] = [(value.text, "bold $text-success" if not value.is_default else "")]
    if value.is_secret:
        parts.append((f"  ({t('secret_ref', lang)})", "$text-warning"))
    if value.is_default:
        parts.append((f"  ({t('default', lang)})", "italic $text-muted"))
    return Content.assemble(*parts)
