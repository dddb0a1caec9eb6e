"""Undo a replayed recipe: the undo command line of every changing doer, in reverse order (``replay --undo``).

Each doer that changes a host names the command that reverses it (``PlanStep.undo`` → ``Item.undo_argv``): a GPU
given back to its previous driver, a network namespace detached and deleted, the kata configuration restored from its
backup, mounts released and the rootfs image put back. The doers record what they changed (``cai_tui.kata.state``)
and their undo reads that record, so an undo is idempotent: where nothing was recorded it says so and succeeds.

Unlike applying, undoing does not stop at the first failure: a later step's undo (a mount released before the image
is restored) must not be left out because an earlier one failed; each failure is reported and the exit is 1.
Generated files (the replay's files folder) are not removed: they change nothing on a host.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from .. import events as ev
from .items import Item, ItemResult
from .replay import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_UNREACHABLE, ReplayReport, StagePlan

if TYPE_CHECKING:
    from .runner import Runner

UNDO_PREFIX = "undo:"


def undo_items(plans: list[StagePlan]) -> list[Item]:
    """The undo items of ``plans``: stages last to first, items last to first; only doers that apply and can be undone."""
    out: list[Item] = []
    for plan in reversed(plans):
        for it in reversed(plan.items):
            if it.kind != "action" or not it.applies or not it.undo_argv or not it.changing:
                continue
            out.append(
                replace(
                    it,
                    name=f"{UNDO_PREFIX}{it.name}",
                    title=f"undo: {it.title}",
                    argv=it.undo_argv,
                    undo_argv=(),
                    guard=(),
                    changes=f"reverses: {it.changes}",
                    problems=[p for p in it.problems],
                )
            )
    return out


def undo_plans(plans: list[StagePlan]) -> list[StagePlan]:
    """``plans`` as their undo, for ``--plan --undo``: the same stages (reversed), each with its undo items."""
    items = undo_items(plans)
    by_stage: dict[str, list[Item]] = {}
    for it in items:
        by_stage.setdefault(it.stage, []).append(it)
    return [StagePlan(p.stage, by_stage[p.stage.id]) for p in reversed(plans) if p.stage.id in by_stage]


async def run_undo(runner: Runner, plans: list[StagePlan]) -> ReplayReport:
    """Run the items of ``plans`` as :func:`undo_plans` made them, in their order (see the module docstring); never
    raises for a failure of the work itself."""
    from ..targets.base import TargetError
    from .runner import TargetUnreachable

    report = ReplayReport(recipe=runner.session.loaded.source)
    t0 = time.monotonic()
    items = [it for p in plans for it in p.items]
    failures: list[ItemResult] = []
    try:
        for it in items:
            runner.cancel.check()
            runner.sink(ev.Event("step_started", step=it.id, text=it.title, source=it.target))
            t1 = time.monotonic()
            res = await _undo_one(runner, it)
            res.duration_ms = round((time.monotonic() - t1) * 1000)
            runner.sink(ev.Event("step_finished", step=it.id, text=res.detail, status=res.status))
            report.results.append(res)
            if res.status == "failed":
                failures.append(res)
    except (ev.Cancelled, KeyboardInterrupt, asyncio.CancelledError):
        report.status, report.exit_code, report.message = "interrupted", EXIT_INTERRUPTED, "interrupted"
        _rest(report, items, "not run: interrupted")
    except (TargetUnreachable, TargetError) as e:
        report.status, report.exit_code, report.message = "failed", EXIT_UNREACHABLE, f"a target is unreachable: {e}"
        _rest(report, items, f"not run: {e}")
    else:
        if failures:
            report.status, report.exit_code = "failed", EXIT_FAILED
            report.message = "; ".join(f"{r.item.id}: {r.detail}" for r in failures)
    finally:
        report.elapsed_s = time.monotonic() - t0
    return report


def _rest(report: ReplayReport, items: list[Item], why: str) -> None:
    done = {r.item.id for r in report.results}
    report.results += [ItemResult(it, "planned", why) for it in items if it.id not in done]


async def _undo_one(runner: Runner, item: Item) -> ItemResult:
    from .runner import TAIL_LINES, last_line

    if item.problems:
        return ItemResult(item, "failed", "fill in the recipe first: " + "; ".join(item.problems))
    target = runner.target(item.target)
    if target is None:
        return ItemResult(item, "failed", f"the recipe names no {item.target} target (targets.{item.target})")
    res = await runner.run_argv(item, target)
    if res.rc != 0:
        tail = [ln for ln in (res.stdout + "\n" + res.stderr).splitlines() if ln.strip()][-TAIL_LINES:]
        return ItemResult(item, "failed", f"`{item.command_line}` exited {res.rc}", evidence=tail)
    runner.changed()
    return ItemResult(item, "applied", last_line(res.stdout) or "undone")


__all__ = ["UNDO_PREFIX", "run_undo", "undo_items", "undo_plans"]
