"""The check runner with real checks that run real commands on the local target."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from cai_tui.checks.base import CheckContext, CheckSpec, Evidence, Fix, Result
from cai_tui.checks.runner import CheckOutcome, run_checks
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.base import TargetError
from cai_tui.targets.local import LocalTarget
from tests.targets.proclib import pid_alive, wait_gone

SECRET = "s3cr3t-Value-42"


def spec(
    id: str,
    fn: Callable[[CheckContext], Awaitable[Result]],
    *,
    depends: tuple[str, ...] = (),
    runs_on: str = "workstation",
    timeout: float | None = None,
) -> CheckSpec:
    return CheckSpec(id=id, title=id, stage="test", run=fn, runs_on=runs_on, depends=depends, timeout=timeout)


@pytest.fixture
def ctx() -> CheckContext:
    redactor = Redactor()
    redactor.add(SECRET)
    return CheckContext(recipe=None, targets={"local": LocalTarget()}, redactor=redactor, timeout=10.0)


def sleeper(seconds: float, status: str = "pass") -> Callable[[CheckContext], Awaitable[Result]]:
    async def run(ctx: CheckContext) -> Result:
        target = ctx.target("workstation")
        assert target is not None
        r = await target.run(["sleep", str(seconds)])
        return Result(status, f"slept rc={r.rc}")  # type: ignore[arg-type]

    return run


def fixed(status: str, summary: str = "") -> Callable[[CheckContext], Awaitable[Result]]:
    async def run(ctx: CheckContext) -> Result:
        return Result(status, summary or status)  # type: ignore[arg-type]

    return run


async def test_independent_checks_run_concurrently(ctx: CheckContext) -> None:
    specs = [spec(f"t.sleep{i}", sleeper(1)) for i in range(3)]
    t0 = time.monotonic()
    outcomes = await run_checks(specs, ctx)
    elapsed = time.monotonic() - t0
    assert [o.result.status for o in outcomes] == ["pass"] * 3
    assert 0.95 <= elapsed < 1.8, f"three 1-s checks took {elapsed:.2f}s"
    assert all(o.target_name == "local" and o.duration_ms >= 950 for o in outcomes)


async def test_a_hung_check_costs_its_own_timeout(ctx: CheckContext) -> None:
    async def hang(ctx: CheckContext) -> Result:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    specs = [spec("t.hung", hang, timeout=0.5), spec("t.quick", fixed("pass"))]
    t0 = time.monotonic()
    outcomes = await run_checks(specs, ctx)
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0, f"a 0.5 s timeout cost {elapsed:.2f}s"
    hung = outcomes[0].result
    assert hung.status == "unknown" and hung.summary == "timed out after 0.5s"
    assert outcomes[1].result.status == "pass"


async def test_run_timeout_applies_and_kills_the_command(ctx: CheckContext) -> None:
    pids: list[int] = []

    async def slow(ctx: CheckContext) -> Result:
        target = ctx.target("local")
        assert target is not None
        await target.run(["sh", "-c", "echo $$; exec sleep 30"], on_line=lambda s, line: pids.append(int(line)))
        return Result("pass", "never")

    t0 = time.monotonic()
    [outcome] = await run_checks([spec("t.slow", slow)], ctx, timeout=0.5)
    assert time.monotonic() - t0 < 1.5
    assert outcome.result.summary == "timed out after 0.5s"
    assert len(pids) == 1 and wait_gone(pids) == [], "the timed-out check's subprocess is still running"


async def test_dependencies_skip_naming_them(ctx: CheckContext) -> None:
    order: list[str] = []

    def tracked(name: str, status: str, delay: float = 0.0) -> Callable[[CheckContext], Awaitable[Result]]:
        async def run(ctx: CheckContext) -> Result:
            await asyncio.sleep(delay)
            order.append(name)
            return Result(status, name)  # type: ignore[arg-type]

        return run

    specs = [
        spec("oss.upload", tracked("oss.upload", "pass"), depends=("oss.bucket",)),
        spec("oss.bucket", tracked("oss.bucket", "fail", 0.2)),
        spec("oss.listing", tracked("oss.listing", "pass"), depends=("oss.upload",)),
        spec("kms.secret", tracked("kms.secret", "pass"), depends=("kms.reachable",)),
        spec("kms.reachable", tracked("kms.reachable", "warn", 0.2)),
        spec("x.orphan", tracked("x.orphan", "pass"), depends=("not.in.this.run",)),
    ]
    outcomes = await run_checks(specs, ctx)
    by_id = {o.id: o.result for o in outcomes}
    assert [o.id for o in outcomes] == [s.id for s in specs], "results are not in the order of the specs"
    assert by_id["oss.upload"].status == "skip" and by_id["oss.upload"].summary == "skipped: oss.bucket failed"
    assert by_id["oss.listing"].summary == "skipped: oss.upload was skipped"
    assert by_id["kms.secret"].status == "pass"  # warn is good enough
    assert order.index("kms.reachable") < order.index("kms.secret")
    assert "oss.upload" not in order and "oss.listing" not in order
    assert by_id["x.orphan"].status == "skip" and "not.in.this.run was not run" in by_id["x.orphan"].summary
    assert ctx.results["oss.bucket"].status == "fail"


async def test_cycles_are_unknown_not_a_hang(ctx: CheckContext) -> None:
    specs = [
        spec("a", fixed("pass"), depends=("b",)),
        spec("b", fixed("pass"), depends=("a",)),
        spec("c", fixed("pass")),
    ]
    outcomes = await asyncio.wait_for(run_checks(specs, ctx), 5)
    assert outcomes[0].result.status == "unknown" and "dependency cycle" in outcomes[0].result.summary
    assert outcomes[1].result.status == "unknown"
    assert outcomes[2].result.status == "pass"


async def test_exceptions_become_unknown_and_are_redacted(ctx: CheckContext) -> None:
    async def boom(ctx: CheckContext) -> Result:
        raise ValueError(f"token {SECRET} rejected")

    async def target_gone(ctx: CheckContext) -> Result:
        raise TargetError("docker://x: the container is not running; start it first")

    async def not_a_result(ctx: CheckContext) -> Result:
        return "pass"  # type: ignore[return-value]

    outcomes = await run_checks([spec("t.boom", boom), spec("t.gone", target_gone), spec("t.bad", not_a_result)], ctx)
    boom_result = outcomes[0].result
    assert boom_result.status == "unknown"
    assert boom_result.summary == "check raised ValueError: token *** rejected"
    assert outcomes[1].result.summary == "docker://x: the container is not running; start it first"
    assert outcomes[2].result.status == "unknown" and "not a Result" in outcomes[2].result.summary


async def test_evidence_summary_fix_and_data_are_redacted(ctx: CheckContext) -> None:
    async def leaky(ctx: CheckContext) -> Result:
        return Result(
            "fail",
            f"login with {SECRET} failed",
            [Evidence(observed=f"Authorization: {SECRET}", source=f"curl -u ak:{SECRET}", target="local")],
            Fix("faq.x", f"rotate {SECRET}"),
            {"nested": [{"k": SECRET}], "n": 3},
        )

    [outcome] = await run_checks([spec("t.leaky", leaky)], ctx)
    text = repr(outcome.result)
    assert SECRET not in text
    assert outcome.result.summary == "login with *** failed"
    assert outcome.result.evidence[0].observed == "Authorization: ***"
    assert outcome.result.evidence[0].source == "curl -u ak:***"
    assert outcome.result.fix == Fix("faq.x", "rotate ***")
    assert outcome.result.data == {"nested": [{"k": "***"}], "n": 3}


async def test_missing_target_is_a_skip_with_the_reason(ctx: CheckContext) -> None:
    ran: list[str] = []

    async def inside(ctx: CheckContext) -> Result:
        ran.append("inside")
        return Result("pass", "")

    [outcome] = await run_checks([spec("gpu.cc_mode", inside, runs_on="instance")], ctx)
    assert outcome.result.status == "skip"
    assert outcome.result.summary == "runs inside the instance; no target given (--target ssh://…)"
    assert outcome.target_name == "" and ran == []


async def test_only_globs_pull_in_dependencies_and_on_result_streams(ctx: CheckContext) -> None:
    specs = [
        spec("oss.bucket", fixed("pass")),
        spec("oss.upload", fixed("pass"), depends=("oss.bucket",)),
        spec("kms.secret", fixed("pass")),
        spec("trustee.auth", fixed("pass")),
    ]
    seen: list[CheckOutcome] = []
    outcomes = await run_checks(specs, ctx, only=["oss.up*", "trustee.*"], on_result=seen.append)
    assert [o.id for o in outcomes] == ["oss.bucket", "oss.upload", "trustee.auth"]
    assert sorted(o.id for o in seen) == sorted(o.id for o in outcomes)


async def test_cancelling_the_run_kills_running_commands(ctx: CheckContext) -> None:
    pids: asyncio.Queue[int] = asyncio.Queue()

    def long_command(n: int) -> Callable[[CheckContext], Awaitable[Result]]:
        async def run(ctx: CheckContext) -> Result:
            target = ctx.target("local")
            assert target is not None
            await target.run(["sh", "-c", "echo $$; exec sleep 30"], on_line=lambda s, line: pids.put_nowait(int(line)))
            return Result("pass", "")

        return run

    specs = [spec(f"t.long{i}", long_command(i)) for i in range(2)]
    task = asyncio.ensure_future(run_checks(specs, ctx, timeout=60))
    started = [await asyncio.wait_for(pids.get(), 5) for _ in specs]
    assert all(pid_alive(p) for p in started)
    t0 = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - t0 < 3
    assert wait_gone(started, timeout=0.5) == [], "cancelled checks left their subprocesses running"
