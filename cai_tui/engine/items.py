"""The unit of the stage engine: an :class:`Item` (what runs, where, the checks that prove it done) and its outcome.

The wizard, ``cai-tui replay`` and (later) the fleet playbook are renderings of the same item list.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Literal

ItemKind = Literal["action", "file", "command", "manual", "check"]
ItemStatus = Literal["planned", "applied", "skipped", "failed", "waived"]
KINDS: tuple[str, ...] = ("action", "file", "command", "manual", "check")
STATUSES: tuple[str, ...] = ("planned", "applied", "skipped", "failed", "waived")


@dataclass
class Item:
    """One thing a stage does or verifies.

    * ``action`` — a registered doer; ``argv`` is the exact ``cai-tui …`` command line it runs on ``target``;
    * ``file`` — a generated file (``artifact`` kind) and where it goes; ``diff`` against the target's copy when known;
    * ``command`` — a documented command with every ``{field.path}`` filled from the recipe (shown; a person runs it
      where no doer does the step);
    * ``manual`` — console work: ``text`` says what to do, ``guard`` names the checks that prove it done;
    * ``check`` — one of the stage's checks (``check`` its id).
    """

    stage: str
    covers: str  # the procedure step, e.g. CAI-1.5
    kind: ItemKind
    name: str  # action id, artifact kind, check id, or "command N" / "manual N"
    title: str
    target: str  # the recipe's role it runs on: workstation, instance, client, trustee_admin, host, guest
    guard: tuple[str, ...] = ()  # check ids that prove the item done (a re-run skips it when they pass)
    text: str = ""  # command text, manual instruction, file path
    argv: tuple[str, ...] = ()  # action items: the command line; empty for the others
    changes: str = ""  # what applying it changes ("nothing: …" for read-only items)
    problems: list[str] = field(default_factory=list)  # what the recipe lacks for it (a missing value, a placeholder)
    applies: bool = True  # False: the step does not apply to this recipe (``not_applicable`` says why)
    not_applicable: str = ""
    covered_by: str = ""  # a documented command whose step a doer does: the doer's name
    diff: str | None = None  # file items: unified diff against the target's current file ("" unchanged)
    required: bool = True  # check items: the check's required flag
    undo_argv: tuple[str, ...] = ()  # action items that change a host: the command line that reverses them

    @property
    def id(self) -> str:
        return f"{self.stage}/{self.covers}/{self.kind}:{self.name}"

    @property
    def changing(self) -> bool:
        return self.kind in ("action", "file") and not self.changes.startswith("nothing")

    @property
    def command_line(self) -> str:
        return shlex.join(self.argv) if self.argv else self.text

    def to_json(self) -> dict[str, object]:
        """What every JSON rendering of an item says (the plan's lines, the replay summary's items)."""
        return {
            "stage": self.stage,
            "covers": self.covers,
            "item": self.name,
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "target": self.target,
            "guard": list(self.guard),
            "command": self.command_line,
        }


@dataclass
class ItemResult:
    item: Item
    status: ItemStatus
    detail: str = ""
    faq_id: str | None = None
    evidence: list[str] = field(default_factory=list)
    duration_ms: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            **self.item.to_json(),
            "status": self.status,
            "detail": self.detail,
            "faq_id": self.faq_id,
            "evidence": list(self.evidence),
            "duration_ms": self.duration_ms,
        }
