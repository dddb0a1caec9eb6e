"""Headless replay of a recipe: plan every selected stage, then apply them in order, resumable with ``--from``.

``cai-tui replay`` is a thin shell over :func:`replay`; the wizard drives the same :class:`~.runner.Runner` per stage.
Secrets are resolved before anything changes (a missing one fails the run naming the field), except the key file
that a planned ``model.create_key_file`` item is about to create.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import events as ev
from .items import Item, ItemResult
from .plan import PlanError, plan_stage, select_stages
from .runner import Runner, TargetUnreachable

if TYPE_CHECKING:
    from ..recipe.yaml_io import LoadedRecipe
    from ..stages.spec import StageSpec
    from .session import Session

SCHEMA = "cai-tui/replay/v1"
EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
KEY_FILE_FIELDS = {"gocryptfs": "answers.model.password", "sam": "answers.model.sam.key"}


class ReplayInputError(Exception):
    """The recipe or the options cannot be replayed (exit 2); the message names the field or option."""


@dataclass
class StagePlan:
    stage: StageSpec
    items: list[Item]


@dataclass
class ReplayReport:
    recipe: str
    status: str = "ok"  # ok | failed | interrupted
    results: list[ItemResult] = field(default_factory=list)
    stopped_at: str | None = None  # the stage to resume from (--from)
    message: str = ""
    exit_code: int = EXIT_OK
    started: float = field(default_factory=time.time)
    elapsed_s: float = 0.0

    @property
    def changes(self) -> int:
        return sum(1 for r in self.results if r.status == "applied" and r.item.changing)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "recipe": self.recipe,
            "status": self.status,
            "changes": self.changes,
            "counts": self.counts(),
            "stopped_at": self.stopped_at,
            "message": self.message,
            "elapsed_s": round(self.elapsed_s, 3),
            "items": [r.to_json() for r in self.results],
        }


def plan_recipe(loaded: LoadedRecipe, *, start: str | None = None, only: list[str] | None = None) -> list[StagePlan]:
    from ..stages import load_all

    flow = load_all()[loaded.recipe.flow]
    try:
        stages = select_stages(flow.stages, start=start, only=only)
    except PlanError as e:
        raise ReplayInputError(str(e)) from None
    return [StagePlan(s, plan_stage(s, loaded)) for s in stages]


def created_key_files(plans: list[StagePlan], loaded: LoadedRecipe) -> set[str]:
    """Fields whose ``file:`` secret a planned ``model.create_key_file`` item writes (not resolvable yet)."""
    method = getattr(getattr(loaded.recipe.answers, "model", None), "encryption_method", None)
    field_name = KEY_FILE_FIELDS.get(str(method))
    for p in plans:
        for it in p.items:
            if it.kind == "action" and it.name == "model.create_key_file" and it.applies and field_name:
                return {field_name}
    return set()


def stage_secret_fields(plans: list[StagePlan]) -> set[str]:
    """The ``answers.…`` fields the planned stages take as input (the stage specs' fields)."""
    return {f"answers.{p}" for plan in plans for p in plan.stage.field_paths}


def resolve_secrets(
    loaded: LoadedRecipe,
    exempt: set[str],
    prompt: Any,
    *,
    prompt_ok: bool = False,
    fields: set[str] | None = None,
) -> list[str]:
    """Resolve every secret reference now (they join the redaction set); the problems, each naming its field.

    ``fields``: only these secrets (the stages being run take them: a run of stage 1 must not need the key file
    stage 2 creates); None: every secret of the recipe (a whole replay).
    ``prompt_ok``: a ``prompt`` reference is asked through ``prompt`` (the wizard asks in a dialog, for the work done
    in this process: checks, the instance's files); a replay refuses it, as its child commands cannot ask."""
    import os

    from ..recipe.checks_here import SECRET_LIMITS, iter_secret_refs
    from ..recipe.secrets import SecretUnavailable, resolve_secret

    problems = []
    for path, ref in iter_secret_refs(loaded.recipe):
        if fields is not None and path not in fields:
            continue
        if path in exempt and ref.scheme == "file" and not os.path.exists(os.path.expanduser(ref.target)):
            continue
        if ref.scheme == "prompt" and not prompt_ok:
            problems.append(
                f"{path}: `prompt` cannot reach the commands a replay runs (they run without a terminal); "
                "use env:NAME or file:PATH for replays"
            )
            continue
        lo, hi, what = SECRET_LIMITS.get(path, (None, None, "value"))
        try:
            resolve_secret(ref, field=path, prompt=prompt, min_bytes=lo, max_bytes=hi, what=what)
        except SecretUnavailable as e:
            problems.append(str(e))
    return problems


async def add_diffs(runner: Runner, plans: list[StagePlan]) -> None:
    for p in plans:
        await runner.add_diffs(p.items)


async def replay(
    session: Session,
    plans: list[StagePlan],
    sink: ev.EventSink,
    *,
    files_dir: Path,
    cancel: ev.CancelToken = ev.NEVER,
) -> ReplayReport:
    """Apply ``plans`` stage by stage (see :mod:`.runner`); never raises for a failure of the work itself."""
    return await run_plans(Runner(session, sink, files_dir=files_dir, cancel=cancel), plans)


async def run_stage(runner: Runner, plan: StagePlan) -> tuple[list[ItemResult], ItemResult | None]:
    """One stage: its items in order; on a failure the troubleshooter's diagnosis is added to the failed result.
    Returns (results, the failed result or None). Raises Cancelled / TargetUnreachable like the runner."""
    runner.sink(ev.note(f"stage {plan.stage.order:02d} {plan.stage.id}: {plan.stage.title.en}", step=plan.stage.id))
    results, ok = await runner.run_items(plan.items)
    if ok:
        return results, None
    failed = next(r for r in results if r.status == "failed")
    await runner.diagnose(failed)
    return results, failed


async def run_plans(runner: Runner, plans: list[StagePlan]) -> ReplayReport:
    """What ``replay`` does with its runner, and what the wizard does for one stage: every plan through
    :func:`run_stage`, stopping at the first failure; an interruption (the token, Ctrl-C, a cancelled task) or an
    unreachable target ends the report as such, resumable at ``stopped_at``."""
    report = ReplayReport(recipe=runner.session.loaded.source)
    t0 = time.monotonic()
    current: StagePlan | None = None
    try:
        for i, p in enumerate(plans):
            current = p
            results, failed = await run_stage(runner, p)
            report.results += results
            if failed is not None:
                report.status, report.exit_code = "failed", EXIT_FAILED
                report.stopped_at = p.stage.id
                report.message = f"{failed.item.id}: {failed.detail}"
                for later in plans[i + 1 :]:
                    report.results += [
                        ItemResult(it, "planned", "not run: an earlier stage failed") for it in later.items
                    ]
                break
    except (ev.Cancelled, KeyboardInterrupt, asyncio.CancelledError):
        _interrupted(report, plans, current, "interrupted")
    except TargetUnreachable as e:
        report.results += e.results
        _interrupted(report, plans, current, f"a target is unreachable: {e}")
        report.status, report.exit_code = "failed", EXIT_UNREACHABLE
    finally:
        report.elapsed_s = time.monotonic() - t0
    return report


def _interrupted(report: ReplayReport, plans: list[StagePlan], current: StagePlan | None, why: str) -> None:
    report.status, report.exit_code = "interrupted", EXIT_INTERRUPTED
    report.stopped_at = current.stage.id if current is not None else None
    report.message = why
    done = {r.item.id for r in report.results}
    for p in plans:
        report.results += [ItemResult(it, "planned", f"not run: {why}") for it in p.items if it.id not in done]


def planned_report(loaded: LoadedRecipe, plans: list[StagePlan]) -> ReplayReport:
    """The report of ``--plan``: every item ``planned``, with its problems or why it does not apply."""
    report = ReplayReport(recipe=loaded.source)
    for p in plans:
        for it in p.items:
            detail = it.not_applicable or "; ".join(it.problems) or it.changes
            report.results.append(ItemResult(it, "planned", detail))
    return report


__all__ = [
    "EXIT_FAILED",
    "EXIT_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "SCHEMA",
    "ReplayInputError",
    "ReplayReport",
    "StagePlan",
    "add_diffs",
    "created_key_files",
    "plan_recipe",
    "planned_report",
    "replay",
    "resolve_secrets",
    "run_plans",
    "run_stage",
    "stage_secret_fields",
]
