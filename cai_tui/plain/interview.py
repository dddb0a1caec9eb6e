"""Ask a flow's stage specs one stage at a time, editing the recipe through its :class:`Draft`.

Each field is asked once, in the first stage that lists it; the value shown in [brackets] is kept on Enter. A
refused answer is asked again with the model's message. Secrets are asked as references, never values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ask import Asker
from .fields import LIST, PATH, SECRET, SECRET_SCHEMES, SELECT, FieldKind, applicable, field_kind, pending
from .texts import display_width, say, wrap

if TYPE_CHECKING:
    from ..recipe.draft import Draft
    from ..stages import FlowStages
    from ..stages.spec import FieldSpec, StageSpec

CLEAR = "-"  # typed alone: clear an optional value
ANSWER, SKIP, FINISH = "answer", "skip", "finish"


def out(text: str = "") -> None:
    print(text, flush=True)


class Interview:
    def __init__(self, draft: Draft, stages: FlowStages, asker: Asker) -> None:
        self.draft = draft
        self.stages = stages
        self.asker = asker
        self.lang = asker.lang
        self.asked: set[str] = set()

    def run(self) -> None:
        """Every stage in order, until the person chooses to keep the rest."""
        total = len(self.stages.stages)
        for i, stage in enumerate(self.stages.stages, 1):
            if self.stage(stage, i, total) == FINISH:
                return

    # --- a stage -------------------------------------------------------------------------------------

    def stage(self, stage: StageSpec, i: int, total: int) -> str:
        lang = self.lang
        out()
        head = say("stage_head", lang, i=i, n=total, title=stage.title.get(lang))
        out(head)
        out("-" * min(display_width(head), 78))
        out(wrap(stage.help.get(lang)))
        fields = pending(stage, self.draft, self.asked)
        if not fields:
            out(say("stage_none", lang))
            return ANSWER
        choice = self.asker.select(
            say("stage_what", lang, title=stage.title.get(lang), k=len(fields)),
            [(say("stage_answer", lang), ANSWER), (say("stage_skip", lang), SKIP), (say("stage_finish", lang), FINISH)],
            ANSWER,
        )
        if choice != ANSWER:
            self.asked.update(f.path for f in fields)  # kept as they are; not asked again later
            return choice
        left_out = []
        for f in stage.fields:  # the answers so far decide, e.g. model.source picks which fields follow
            if f.path in self.asked:
                continue
            if not applicable(stage, f.path, self.draft):
                left_out.append(f.path)
                continue
            self.asked.add(f.path)
            self.field(f)
        if left_out:
            out()
            out(wrap(say("not_applicable", lang, paths=", ".join(left_out)), "  "))
        return ANSWER

    # --- a field -------------------------------------------------------------------------------------

    def field(self, spec: FieldSpec) -> None:
        q = field_kind(self.draft.flow, spec.path)
        label = spec.label.get(self.lang)
        out()
        if spec.help is not None:
            out(wrap(spec.help.get(self.lang), "  "))
        if q.kind == SELECT:
            self._select(q, label)
        elif q.kind == SECRET:
            self._secret(q, label)
        else:
            self._text(q, label)

    def _shown(self, path: str) -> str:
        current = self.draft.get(path).text
        if current is None:
            return say("unset", self.lang)
        return say("empty", self.lang) if current in ("[]", "{}") else current

    def _apply(self, path: str, text: str) -> bool:
        """Set the field; on a problem print its message (the caller asks again)."""
        problem = self.draft.set(path, text)
        if problem is None:
            return True
        out(say("problem", self.lang, field=problem.field, message=problem.message))
        return False

    def _text(self, q: FieldKind, label: str) -> None:
        hint = say("list_hint", self.lang) if q.kind == LIST else None
        if hint is None and q.example and q.kind != PATH:
            hint = say("example", self.lang, example=q.example)  # a port's range, an IP's form …
        while True:
            answer = self.asker.text(f"{label} [{self._shown(q.path)}]", hint)
            if answer == "":
                return
            if answer == CLEAR and (q.optional or q.kind == LIST):
                answer = ""
            if self._apply(q.path, answer):
                return

    def _select(self, q: FieldKind, label: str) -> None:
        current = self.draft.get(q.path).text
        if len(q.choices) == 1 and not q.optional:
            out(say("only_choice", self.lang, label=label, value=q.choices[0]))
            return
        choices = [(c, c) for c in q.choices]
        if current is not None and current not in q.choices:  # Enter must keep what the recipe has
            choices.insert(0, (current, current))
        if q.optional:
            choices.append((say("unset", self.lang), ""))
        while True:
            answer = self.asker.select(label, choices, current if current is not None else "")
            if answer == (current or "") or self._apply(q.path, answer):
                return

    def _secret(self, q: FieldKind, label: str) -> None:
        lang = self.lang
        current = self.draft.get(q.path).text
        out("  " + say("secret_note", lang))
        choices: list[tuple[str, str]] = []
        if current is not None:
            choices.append((say("secret_keep", lang, ref=current), ""))
        elif q.optional:
            choices.append((say("secret_unset", lang), ""))
        choices += [(say(f"secret_{s}", lang), s) for s in SECRET_SCHEMES]
        if current is not None and q.optional:
            choices.append((say("secret_unset", lang), CLEAR))
        while True:
            scheme = self.asker.select(label, choices, "")
            if scheme == "":
                return
            if scheme in ("prompt", CLEAR):
                if self._apply(q.path, "" if scheme == CLEAR else "prompt"):
                    return
                continue
            if self._secret_target(q.path, scheme, current):
                return

    def _secret_target(self, path: str, scheme: str, current: str | None) -> bool:
        """Ask the env name, file path or keyring entry; False to choose the kind again."""
        shown = current.partition(":")[2] if current and current.startswith(scheme + ":") else ""
        message = say(f"ask_{scheme}", self.lang) + (f" [{shown}]" if shown else "")
        while True:
            answer = self.asker.text(message, say("ask_target_hint", self.lang) if not shown else None)
            if answer.startswith(scheme + ":"):
                answer = answer[len(scheme) + 1 :]
            if answer == "":
                if not shown:
                    return False
                answer = shown
            if self._apply(path, f"{scheme}:{answer}"):
                return True
