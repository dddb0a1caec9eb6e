"""Run checks: independent ones at once, each within its own timeout, dependents after what they need.

A hung check costs its own timeout and no more; a check that raises is ``unknown`` with the reason; a missing target
or a failed dependency is a ``skip`` naming it. Cancelling the run cancels every check (their commands are killed by
the targets). Everything a result says passes through the context's redactor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..targets.base import TargetError
from .base import CheckContext, CheckSpec, Fix, Result

CLEANUP_GRACE_S = 5.0  # how long a timed-out or cancelled check may take to kill what it started

ROLE_WHERE = {
    "workstation": ("runs on this workstation", "local"),
    "local": ("runs on this machine", "local"),
    "instance": ("runs inside the instance", "ssh://…"),
    "client": ("runs on the client machine", "ssh://…"),
    "host": ("runs on the host", "ssh://…"),
    "guest": ("runs inside the guest", "ctr://TASK"),
}

_DEP_WORDS = {"fail": "failed", "skip": "was skipped", "unknown": "was unknown"}


@dataclass(frozen=True)
class CheckOutcome:
    spec: CheckSpec
    result: Result
    duration_ms: int
    target_name: str  # Target.name it ran on, "" when it had none

    @property
    def id(self) -> str:
        return self.spec.id


def missing_target_reason(role: str) -> str:
    where, form = ROLE_WHERE.get(role, (f"runs on the {role!r} target", "…"))
    return f"{where}; no target given (--target {form})"


def select_specs(specs: list[CheckSpec], only: list[str] | None) -> list[CheckSpec]:
    """The specs whose id matches a glob of ``only``, plus (transitively) what they depend on, in ``specs`` order."""
    if not only:
        return list(specs)
    by_id = {s.id: s for s in specs}
    wanted: set[str] = set()
    todo = [s.id for s in specs if any(fnmatch.fnmatchcase(s.id, g) for g in only)]
    if not todo:
        raise ValueError(f"no check id matches {' '.join(only)} (ids look like trustee.auth_nonce; globs: 'oss.*')")
    while todo:
        cid = todo.pop()
        if cid in wanted:
            continue
        wanted.add(cid)
        todo.extend(d for d in by_id[cid].depends if d in by_id)
    return [s for s in specs if s.id in wanted]


def _cycles(specs: list[CheckSpec]) -> dict[str, str]:
    """id → "a → b → a" for every check on a dependency cycle (those cannot run)."""
    by_id = {s.id: s for s in specs}
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    found: dict[str, str] = {}

    def visit(cid: str, stack: list[str]) -> None:
        state[cid] = 1
        stack.append(cid)
        for dep in by_id[cid].depends:
            if dep not in by_id:
                continue
            if state.get(dep) == 1:
                loop = [*stack[stack.index(dep) :], dep]
                for member in loop:
                    found.setdefault(member, " → ".join(loop))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[cid] = 2

    for s in specs:
        if s.id not in state:
            visit(s.id, [])
    return found


def _redact_value(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(v, redact) for v in value)
    return value


def redact_result(result: Result, redact: Callable[[str], str]) -> Result:
    return Result(
        status=result.status,
        summary=redact(result.summary),
        evidence=[
            dataclasses.replace(e, observed=redact(e.observed), source=redact(e.source), target=redact(e.target))
            for e in result.evidence
        ],
        fix=Fix(result.fix.faq_id, redact(result.fix.text)) if result.fix is not None else None,
        data=_redact_value(result.data, redact),
    )


def _dep_skip_reason(spec: CheckSpec, results: dict[str, Result], run_ids: set[str]) -> str | None:
    reasons = []
    for dep in spec.depends:
        res = results.get(dep)
        if res is None:
            reasons.append(f"{dep} was not run" if dep not in run_ids else f"{dep} did not finish")
        elif res.status not in ("pass", "warn"):
            reasons.append(f"{dep} {_DEP_WORDS.get(res.status, res.status)}")
    return "skipped: " + "; ".join(reasons) if reasons else None


async def _run_one(spec: CheckSpec, ctx: CheckContext, timeout: float, lingering: set[asyncio.Task[Any]]) -> Result:
    """The check within ``timeout``; a check that ignores its cancellation is left to finish cleaning up later."""
    task: asyncio.Task[Result] = asyncio.ensure_future(spec.run(ctx))
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        lingering.add(task)
        raise
    if not done:
        task.cancel()
        lingering.add(task)
        return Result("unknown", f"timed out after {timeout:g}s")
    exc = task.exception() if not task.cancelled() else asyncio.CancelledError("the check cancelled itself")
    if isinstance(exc, TargetError):  # the target's own words say what is wrong and what to do
        return Result("unknown", str(exc).strip() or type(exc).__name__)
    if exc is not None:
        text = str(exc).strip()
        return Result(
            "unknown", f"check raised {type(exc).__name__}: {text}" if text else f"check raised {type(exc).__name__}"
        )
    result = task.result()
    if not isinstance(result, Result):
        return Result("unknown", f"check returned {type(result).__name__}, not a Result")
    return result


async def _settle(tasks: Iterable[asyncio.Task[Any]], grace: float) -> None:
    pending = [t for t in tasks if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending, timeout=grace)
    for t in tasks:
        if t.done() and not t.cancelled():
            t.exception()  # retrieved, so asyncio does not complain about it later


async def run_checks(
    specs: list[CheckSpec],
    ctx: CheckContext,
    *,
    only: list[str] | None = None,
    timeout: float | None = None,
    on_result: Callable[[CheckOutcome], None] | None = None,
) -> list[CheckOutcome]:
    """Run ``specs`` (those matching the ``only`` globs and what they depend on); outcomes in ``specs`` order.

    Each check gets ``spec.timeout``, else ``timeout``, else ``ctx.timeout`` seconds from when it starts (waiting for
    dependencies does not count). ``on_result`` is called on the event loop as each check finishes. Results also land
    in ``ctx.results`` so dependents can read their ``data``.
    """
    selected = select_specs(specs, only)
    ids = [s.id for s in selected]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"check ids given more than once: {', '.join(dupes)}")
    run_ids = set(ids)
    cycles = _cycles(selected)
    default_timeout = timeout if timeout is not None else ctx.timeout
    redact = ctx.redactor.redact
    finished: dict[str, asyncio.Future[None]] = {s.id: asyncio.get_running_loop().create_future() for s in selected}
    outcomes: dict[str, CheckOutcome] = {}
    lingering: set[asyncio.Task[Any]] = set()

    async def one(spec: CheckSpec) -> None:
        target = ctx.target(spec.runs_on)
        target_name = target.name if target is not None else ""
        started = time.monotonic()
        try:
            if spec.id in cycles:
                result = Result("unknown", f"dependency cycle: {cycles[spec.id]}")
            else:
                deps = [finished[d] for d in spec.depends if d in finished]
                if deps:
                    await asyncio.wait(deps)
                started = time.monotonic()
                reason = _dep_skip_reason(spec, ctx.results, run_ids)
                if reason is not None:
                    result = Result("skip", reason)
                elif target is None:
                    result = Result("skip", missing_target_reason(spec.runs_on))
                else:
                    result = await _run_one(spec, ctx, spec.timeout or default_timeout, lingering)
            result = redact_result(result, redact)
            ctx.results[spec.id] = result
            outcome = CheckOutcome(spec, result, round((time.monotonic() - started) * 1000), redact(target_name))
            outcomes[spec.id] = outcome
            if on_result is not None:
                on_result(outcome)
        finally:
            if not finished[spec.id].done():
                finished[spec.id].set_result(None)

    tasks = [asyncio.ensure_future(one(s)) for s in selected]
    try:
        await asyncio.gather(*tasks)
    finally:
        # cancelled (Ctrl-C), or on_result raised: stop every check, and give each a moment to kill its commands
        await _settle(tasks, CLEANUP_GRACE_S)
        await _settle(lingering, CLEANUP_GRACE_S)
    return [outcomes[s.id] for s in selected]


__all__ = ["CheckOutcome", "missing_target_reason", "redact_result", "run_checks", "select_specs"]
