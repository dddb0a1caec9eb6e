"""What the checks screen lists: which checks a stage (or the doctor) runs, each one's state, and the stage's verdict.

No widgets here: the screen draws these rows, the tests read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..checks.base import CheckSpec, Result
    from ..recipe.yaml_io import LoadedRecipe
    from ..stages import FlowStages
    from ..stages.spec import StageSpec

# a row's state: a check result's status, or where the run is
NOT_RUN, RUNNING, WAIVED = "not-run", "running", "waived"
FAILING = ("fail", "unknown")  # what a waiver can cover (the runner waives both)


@dataclass
class CheckRow:
    id: str
    title: str
    required: bool = True
    known: bool = True  # registered for the recipe's flow (an unknown id is listed, never run)
    state: str = NOT_RUN  # not-run | running | pass | warn | fail | skip | unknown
    result: Result | None = None
    waiver: str | None = None  # the reason of the waiver covering this failure

    @property
    def shown(self) -> str:
        """The status the table shows: a covered failure reads ``waived``."""
        return WAIVED if self.waiver is not None and self.state in FAILING else self.state

    @property
    def finished(self) -> bool:
        return self.state not in (NOT_RUN, RUNNING)

    def set_result(self, result: Result, waivers: list[Any]) -> None:
        self.result = result
        self.state = result.status
        self.rewaive(waivers)

    def rewaive(self, waivers: list[Any]) -> None:
        from ..engine.session import waiver_for

        self.waiver = waiver_for(self.id, waivers) if self.state in FAILING else None


def _specs() -> dict[str, CheckSpec]:
    from ..checks.registry import all_checks

    return all_checks()


def stage_check_ids(stage: StageSpec, loaded: LoadedRecipe | None) -> list[str]:
    """The checks the engine runs for ``stage``: those guarding its items and its steps' ``verify:`` (steps whose
    ``when:`` does not match the recipe left out); without a recipe of its flow, every step's ``verify:``."""
    if loaded is not None and loaded.recipe.flow == stage.flow:
        from ..engine.plan import plan_stage

        ids: dict[str, None] = {}
        for item in plan_stage(stage, loaded):
            if item.applies:
                ids.update(dict.fromkeys(item.guard))
                if item.kind == "check":
                    ids[item.name] = None
        return list(ids)
    return list(stage.checks)


def flow_check_ids(flow: FlowStages, flow_id: str) -> list[str]:
    """Every check of the flow (the doctor), in the order of the stages they belong to."""
    order = {s.id: i for i, s in enumerate(flow.stages)}
    specs = [s for s in _specs().values() if flow_id in s.flows]
    ranked = sorted(enumerate(specs), key=lambda p: (order.get(p[1].stage, len(order)), p[0]))
    return [s.id for _, s in ranked]


def make_rows(ids: list[str], flow_id: str | None, waivers: list[Any]) -> list[CheckRow]:
    specs = _specs()
    rows = []
    for cid in ids:
        spec = specs.get(cid)
        if spec is None or (flow_id is not None and flow_id not in spec.flows):
            from ..checks.base import Result

            row = CheckRow(cid, cid, known=False)
            row.set_result(Result("skip", f"no check {cid} is registered for the {flow_id or 'recipe'} flow"), [])
        else:
            row = CheckRow(cid, spec.title, required=spec.required)
        row.rewaive(waivers)
        rows.append(row)
    return rows


def stage_verdict(rows: list[CheckRow]) -> str | None:
    """passed | failed | waived for a finished run of a stage's checks, None while one is not finished or when
    nothing was proven (every check skipped: no target, nothing set yet)."""
    from .state import FAILED, PASSED
    from .state import WAIVED as STAGE_WAIVED

    if not rows or any(not r.finished for r in rows):
        return None
    if all(r.state == "skip" for r in rows):
        return None
    blocking = [r for r in rows if r.state in FAILING and r.required]
    if not blocking:
        return PASSED
    if all(r.waiver is not None for r in blocking):
        return STAGE_WAIVED
    return FAILED


def faq_id_for(row: CheckRow) -> str | None:
    """The FAQ entry a row points at: its result's fix, else the first entry written for the check."""
    if row.result is not None and row.result.fix is not None and row.result.fix.faq_id:
        return row.result.fix.faq_id
    entries = faq_entries_for(row.id)
    return entries[0].id if entries else None


def faq_entry(faq_id: str) -> Any | None:
    """The shipped FAQ entry ``faq_id`` (None when the knowledge base has none, or cannot be read)."""
    from ..faq.kb import FaqError, default_kb

    try:
        kb = default_kb()
    except FaqError:
        return None
    return kb.get(faq_id) if faq_id in kb else None


def faq_entries_for(check_id: str) -> list[Any]:
    from ..faq.kb import FaqError, default_kb

    try:
        return default_kb().for_check(check_id)
    except FaqError:
        return []


__all__ = [
    "FAILING",
    "NOT_RUN",
    "RUNNING",
    "WAIVED",
    "CheckRow",
    "faq_entries_for",
    "faq_entry",
    "faq_id_for",
    "flow_check_ids",
    "make_rows",
    "stage_check_ids",
    "stage_verdict",
]
