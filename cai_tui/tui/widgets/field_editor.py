"""One stage field as an editor that follows the field's kind, writing through the recipe draft.

While typing, the kind's quick check speaks under the field; on leaving the field or Enter the text goes to
:meth:`~cai_tui.recipe.draft.Draft.set`, which validates the whole recipe. A refused value stays in the editor with
the reason under it, so nothing typed is lost; an applied one posts :class:`FieldEditor.Changed`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Input, Select, Static

from ...recipe.field_kinds import (
    INTEGER,
    LIST,
    PORT,
    SECRET,
    SECRET_SCHEMES,
    SELECT,
    SIZE,
    FieldKind,
    join_secret,
    quick_check,
    split_secret,
)
from ...stages.spec import FieldSpec
from ..i18n import add_strings, t
from ..text import reflow

if TYPE_CHECKING:
    from ...recipe.draft import Draft
    from ...recipe.problems import Problem

# the label column (assets/tui/form.tcss: FieldEditor .field-label width and max-width)
LABEL_WIDTH = 30
LABEL_SHARE = 35  # percent of the field's width

add_strings(
    {
        "fe.default": ("default", "默认值"),
        "fe.default_is": ("default: {value}", "默认：{value}"),
        "fe.unset": ("not set", "未设置"),
        "fe.not_applied": ("not applied — {message}", "未采用——{message}"),
        "fe.reference": ("→ {ref}: a reference; the value is read only when used", "→ {ref}：引用，仅在使用时读取其值"),
        "fe.scheme_prompt": ("asked for when a step needs it", "在步骤需要时询问"),
        "fe.target.env": ("VARIABLE_NAME", "环境变量名"),
        "fe.target.file": ("~/path/to/file holding the secret", "保存密钥的文件路径，如 ~/secret"),
        "fe.target.keyring": ("SERVICE/NAME", "服务/名称"),
        "fe.target.none": ("choose where the secret is kept", "请选择密钥的存放方式"),
        "fe.list_hint": ("comma-separated", "以逗号分隔"),
    }
)


class KindValidator(Validator):
    """The kind's quick check as a Textual validator (the input's border turns red while it fails)."""

    def __init__(self, kind: FieldKind) -> None:
        super().__init__()
        self.kind = kind

    def validate(self, value: str) -> ValidationResult:
        problem = quick_check(self.kind, value)
        return self.success() if problem is None else self.failure(problem)


class SecretPicker(Horizontal):
    """Where a secret is kept — env, file, keyring or prompt — and its name there; never the secret itself."""

    def __init__(self, text: str, *, optional: bool, lang: str) -> None:
        super().__init__(classes="secret-picker")
        self.scheme, self.target = split_secret(text)
        self.optional = optional
        self.lang = lang

    def compose(self) -> ComposeResult:
        yield Select(
            [(s, s) for s in SECRET_SCHEMES],
            value=self.scheme if self.scheme else Select.NULL,
            allow_blank=self.optional or not self.scheme,
            prompt="—",
            compact=True,
            classes="secret-scheme",
        )
        yield Input(
            self.target,
            placeholder=self._placeholder(self.scheme),
            compact=True,
            classes="secret-target",
        )

    def on_mount(self) -> None:
        self.target_input.display = self.scheme != "prompt"

    @property
    def scheme_select(self) -> Select[str]:
        return self.query_one(".secret-scheme", Select)

    @property
    def target_input(self) -> Input:
        return self.query_one(".secret-target", Input)

    @property
    def text(self) -> str:
        if not self.is_mounted:
            return join_secret(self.scheme, self.target)
        value = self.scheme_select.value
        scheme = value if isinstance(value, str) else ""
        target = self.target_input.value.strip()
        # a whole reference typed or pasted into the name box is taken as it is
        pasted, rest = split_secret(target)
        if (pasted and target.startswith(pasted + ":")) or target == "prompt":
            return join_secret(pasted, rest)
        return join_secret(scheme, target)

    def _placeholder(self, scheme: str) -> str:
        return (
            t(f"fe.target.{scheme}", self.lang)
            if scheme in ("env", "file", "keyring")
            else t("fe.target.none", self.lang)
        )

    def show(self, reference: str) -> None:
        """Put an applied reference back as scheme and name (a whole reference typed in the name box is split)."""
        scheme, target = split_secret(reference)
        if target != self.target_input.value:
            self.target_input.value = target
        wanted = scheme if scheme else Select.NULL
        if self.scheme_select.value != wanted:
            self.scheme_select.value = wanted
        self.show_scheme(scheme)

    def show_scheme(self, scheme: str) -> None:
        self.target_input.placeholder = self._placeholder(scheme)
        self.target_input.display = scheme != "prompt"


class FieldEditor(Vertical):
    """Label, the editor for the field's kind, its dotted path and help, and a line for what the checks say."""

    class Changed(Message):
        """The draft took a new value for ``path``."""

        def __init__(self, editor: FieldEditor, path: str) -> None:
            super().__init__()
            self.editor = editor
            self.path = path

        @property
        def control(self) -> FieldEditor:
            return self.editor

    def __init__(
        self,
        spec: FieldSpec,
        kind: FieldKind,
        draft: Draft,
        lang: str,
        *,
        text: str | None = None,
        problem: str | None = None,
    ) -> None:
        super().__init__(classes="field field-editor")
        self.spec = spec
        self.kind = kind
        self.draft = draft
        self.lang = lang
        current = draft.get(spec.path)
        self.applied = _shown(kind, current.text)  # the draft's value as text: what a commit compares with
        self.is_default = current.is_default and current.text is not None  # unset is not a default
        self.initial = self.applied if text is None else text  # kept text (language switch) wins
        self.problem = problem  # the draft's last refusal of the kept text, shown until the text changes
        self.refused_text = self.initial if problem is not None else None

    @property
    def path(self) -> str:
        return self.spec.path

    # --- composition ---------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-head"):
            yield Static(self._label(), classes="field-label")
            yield self._editor()
        yield Static(self.spec.path, classes="field-path", markup=False)
        if self.spec.help is not None:
            yield Static(reflow(self.spec.help.get(self.lang)), classes="field-help", markup=False)
        yield Static("", classes="field-message")

    def on_resize(self, event: events.Resize) -> None:
        self._lay_out(event.size.width)

    def _lay_out(self, width: int) -> None:
        """The label beside the editor when it fits its column, else on a line of its own above it: a label folded
        into a narrow column reads as one with the value beside it (``modelscope modelQwen/…`` at 80 columns)."""
        column = min(LABEL_WIDTH, width * LABEL_SHARE // 100) - 1  # less the label's padding-right
        self.set_class(self._label().cell_length > column, "-stacked")

    def on_mount(self) -> None:
        if self.problem is not None:
            self._refused(self.problem)
        elif self.initial != self.applied:
            self._typing(self.initial)
        else:
            self._show(None)

    def _label(self) -> Content:
        parts: list[str | tuple[str, str]] = [(self.spec.label.get(self.lang), "bold")]
        if self.is_default:
            parts.append((f" ({t('fe.default', self.lang)})", "italic $text-muted"))
        return Content.assemble(*parts)

    def _editor(self) -> Widget:
        kind = self.kind
        if kind.kind == SECRET:
            return SecretPicker(self.initial, optional=kind.optional, lang=self.lang)
        if kind.kind == SELECT:
            legal = self.initial in kind.choices
            return Select(
                [(c, c) for c in kind.choices],
                value=self.initial if legal else Select.NULL,
                allow_blank=kind.optional or not legal,
                prompt=t("fe.unset", self.lang),
                compact=True,
                classes="field-select",
            )
        restrict = r"[+-]?\d*" if kind.kind in (PORT, SIZE, INTEGER) else None
        return Input(
            self.initial,
            placeholder=self._placeholder(),
            restrict=restrict,
            validators=[KindValidator(kind)],
            validate_on=["changed"],
            valid_empty=kind.optional,
            compact=True,
            classes="field-input",
        )

    def _placeholder(self) -> str:
        kind = self.kind
        if kind.default and kind.default not in ("[]", "{}"):
            return t("fe.default_is", self.lang, value=kind.default)
        hint = kind.example
        if kind.kind == LIST:
            hint = f"{hint} ({t('fe.list_hint', self.lang)})"
        return hint

    # --- reading and applying ------------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """What the editor holds now, as Draft.set reads it (what it was given, before it is composed)."""
        if self.kind.kind == SECRET:
            picker = next(self.query(SecretPicker).results(), None)
            return self.initial if picker is None else picker.text
        if self.kind.kind == SELECT:
            selects = self.query(".field-select").results(Select)
            select = next(selects, None)
            if select is None or not select.is_mounted:
                return self.initial
            value = select.value
            return value if isinstance(value, str) else ""
        box = next(self.query(".field-input").results(Input), None)
        return self.initial if box is None else box.value

    @property
    def pending(self) -> bool:
        """Typed but not (or not successfully) applied to the draft."""
        return self.text.strip() != self.applied.strip()

    def commit(self) -> Problem | None:
        """Apply the editor's text to the draft when it differs; the problem (shown under the field) when refused."""
        text = self.text
        if text.strip() == self.applied.strip():
            self.problem = None
            self._show(None)
            return None
        problem = self.draft.set(self.path, text)
        if problem is not None:
            self._refused(problem.message)
            return problem
        self.problem = None
        self.remove_class("-refused")
        current = self.draft.get(self.path)
        self.applied = _shown(self.kind, current.text)
        self.is_default = current.is_default and current.text is not None  # unset is not a default
        self.query_one(".field-label", Static).update(self._label())
        self._lay_out(self.size.width)
        if self.kind.kind == SECRET and self.applied:
            self.query_one(SecretPicker).show(self.applied)
        self._show(None)
        self.post_message(self.Changed(self, self.path))
        return None

    # --- what is said under the field ----------------------------------------------------------------------------

    def _refused(self, message: str) -> None:
        self.problem = message
        self.refused_text = self.text
        self._show(("✘ " + t("fe.not_applied", self.lang, message=message), "$text-error"))
        self.add_class("-refused")

    def _typing(self, text: str) -> None:
        problem = quick_check(self.kind, text) if self.kind.kind != SECRET else quick_check(self.kind, self.text)
        if self.kind.kind == SECRET and self.text == "":
            problem = None
        self._show(("… " + problem, "$text-warning") if problem else None)

    def _show(self, message: tuple[str, str] | None) -> None:
        line = next(self.query(".field-message").results(Static), None)
        if line is None:  # not composed yet
            return
        if message is None and self.kind.kind == SECRET and self.text and self.problem is None:
            message = (t("fe.reference", self.lang, ref=self.text), "$text-muted")
        line.update(Content.styled(*message) if message else "")
        line.display = message is not None

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.problem is not None and self.text == self.refused_text:
            return  # the box was (re)filled with the refused text itself: its refusal still holds
        self.problem = None
        self.remove_class("-refused")
        self._typing(event.value)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.commit()

    @on(Input.Blurred)
    def _blurred(self, event: Input.Blurred) -> None:
        event.stop()
        # leaving the name box for the scheme list of the same picker is not leaving the field
        self.call_after_refresh(self._left)

    def _left(self) -> None:
        if self.is_mounted and not self.has_focus_within:
            self.commit()

    @on(Select.Changed)
    def _selected(self, event: Select.Changed) -> None:
        event.stop()
        if self.kind.kind == SECRET:
            scheme = event.value if isinstance(event.value, str) else ""
            self.query_one(SecretPicker).show_scheme(scheme)
            if scheme in ("prompt", "") or self.query_one(SecretPicker).target_input.value.strip():
                self.commit()
            else:
                self._typing(self.text)
            return
        self.commit()


def _shown(kind: FieldKind, text: str | None) -> str:
    """A value as its editor shows it: unset and an empty list are an empty box."""
    if text is None or (kind.kind == LIST and text == "[]"):
        return ""
    return text
