"""``doctor --hosts``: Ansible gathers each host's facts in parallel (:mod:`.capture`), and the checks judge each
host's capture here with the same code as ``doctor --target`` (the capture standing for the flow's main role), as
soon as that host's capture arrives. The result is the ``cai-tui/fleet/v1`` document.
"""

from __future__ import annotations

import asyncio
import fnmatch
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ansible import FleetInputError, HostEvent, PlaybookRun, private_dir, run_in_thread, run_playbook
from .capture import CaptureStreamError, capture_script, split_capture, write_capture
from .inventory import InventoryHost, env_secret_names, load_base_recipe, load_inventory, recipe_for_host

if TYPE_CHECKING:
    from ..checks.base import CheckSpec
    from ..checks.runner import CheckOutcome
    from ..recipe import LoadedRecipe

SCHEMA = "cai-tui/fleet/v1"
CAPTURE_TASK = "cai-tui capture"


@dataclass
class HostResult:
    name: str
    address: str
    status: str = "pending"  # ok | failed | unreachable (pending while it runs)
    error: str = ""  # why a host could not be judged (unreachable, the capture task failed)
    outcomes: list[CheckOutcome] = field(default_factory=list)
    waived: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed_checks(self) -> list[CheckOutcome]:
        """The required checks that failed or are unknown, not waived (as ``doctor`` judges)."""
        from ..engine.session import blocking_outcomes

        return blocking_outcomes(self.outcomes, self.waived)

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "ok" else 1

    def to_json(self) -> dict[str, Any]:
        from ..engine.session import doctor_document

        doc: dict[str, Any] = {
            "name": self.name,
            "address": self.address,
            "status": self.status,
            "exit_code": self.exit_code,
            "checks": doctor_document(self.outcomes, self.waived, None)["checks"] if self.outcomes else [],
        }
        if self.error:
            doc["error"] = self.error
        return doc


@dataclass
class FleetReport:
    inventory: str
    recipe: str | None
    hosts: list[HostResult]
    seconds: float = 0.0
    ansible: PlaybookRun | None = None

    def summary(self) -> dict[str, int]:
        out = {"ok": 0, "failed": 0, "unreachable": 0}
        for h in self.hosts:
            out[h.status if h.status in out else "failed"] += 1
        return out

    @property
    def exit_code(self) -> int:
        return 0 if all(h.status == "ok" for h in self.hosts) else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "inventory": self.inventory,
            "recipe": self.recipe,
            "hosts": [h.to_json() for h in self.hosts],
            "summary": self.summary(),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class DoctorPlan:
    """What a fleet doctor will do, checked before anything runs (input errors are FleetInputError)."""

    inventory: Path
    hosts: list[InventoryHost]
    recipes: dict[str, LoadedRecipe | None]
    specs: list[CheckSpec]
    globs: list[str]
    role: str
    recipe: Path | None


def prepare(inventory: Path, recipe: Path | None, limit: str | None, only: str | None) -> DoctorPlan:
    """Read the inventory (Ansible's reading), each host's recipe with its overrides, and the checks to run."""
    from ..checks.registry import all_checks
    from ..engine.session import role_for

    hosts = load_inventory(inventory, limit)
    recipes: dict[str, LoadedRecipe | None] = {}
    base = load_base_recipe(recipe) if recipe is not None else None
    for h in hosts:
        recipes[h.name] = recipe_for_host(recipe, h, base) if recipe is not None else None
        if recipe is None and h.answers:
            raise FleetInputError(
                f"host {h.name} sets cai_tui_answers, which needs --recipe (the recipe they override)"
            )
    first = next(iter(recipes.values()))
    flow = first.recipe.flow if first is not None else None
    specs = [s for s in all_checks().values() if flow is None or flow in s.flows]
    globs = [g.strip() for g in (only or "").split(",") if g.strip()]
    for g in globs:
        if not any(fnmatch.fnmatchcase(s.id, g) for s in specs):
            raise FleetInputError(
                f"--only {g!r} matches no check; known checks: {', '.join(sorted(s.id for s in specs))}"
            )
    return DoctorPlan(inventory, hosts, recipes, specs, globs, role_for(flow, ""), recipe)


async def judge(plan: DoctorPlan, host: HostResult, capture_dir: Path, timeout: float, prompt: Any = None) -> None:
    """Run the checks for ``host`` with its capture as the flow's main role; fills outcomes, waived and status."""
    from ..checks.base import CheckContext
    from ..checks.runner import run_checks
    from ..engine.session import build_targets, waived_failures
    from ..recipe import REDACTOR
    from ..targets.capture import CaptureTarget

    loaded = plan.recipes.get(host.name)
    rec = loaded.recipe if loaded is not None else None
    targets = build_targets(rec, rec.flow if rec is not None else None, None, None)
    targets[plan.role] = CaptureTarget(capture_dir, name=f"{host.name} (Ansible capture)")
    ctx = CheckContext(
        recipe=rec, targets=targets, redactor=REDACTOR, timeout=timeout, sysroot=str(capture_dir), prompt=prompt
    )
    try:
        host.outcomes = await run_checks(plan.specs, ctx, only=plan.globs or None, timeout=timeout)
    finally:
        for t in {id(t): t for t in targets.values()}.values():
            try:
                await t.close()
            except Exception:  # a failing close must not hide results
                pass
    host.waived = waived_failures(host.outcomes, list(rec.waivers) if rec is not None else [])
    host.status = "failed" if host.failed_checks else "ok"


def _capture_play(script: Path) -> list[dict[str, Any]]:
    return [
        {
            "name": "cai-tui doctor: gather the facts cai-tui's checks read",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {
                    "name": CAPTURE_TASK,
                    "script": {"cmd": str(script), "executable": "/bin/sh"},
                    "changed_when": False,
                    "tags": ["cai-tui", "capture"],
                }
            ],
        }
    ]


def run_fleet_doctor(
    plan: DoctorPlan,
    *,
    forks: int,
    limit: str | None,
    timeout: float,
    keep_captures: Path | None = None,
    on_host: Callable[[HostResult], None] | None = None,
    prompt: Any = None,
) -> FleetReport:
    """Gather every host's capture through Ansible and judge each as it arrives; one host never stops the others."""
    t0 = time.monotonic()
    results = {h.name: HostResult(h.name, h.address) for h in plan.hosts}
    report = FleetReport(str(plan.inventory), str(plan.recipe) if plan.recipe else None, list(results.values()))
    arrived: queue.Queue[HostEvent | None] = queue.Queue()
    with private_dir() as work:
        text, boundary = capture_script()
        script = work / "cai-tui-capture.sh"
        script.write_text(text)
        script.chmod(0o700)
        thread, done = run_in_thread(
            lambda: _run_and_close(
                lambda: run_playbook(
                    _capture_play(script),
                    plan.inventory,
                    work,
                    forks=forks,
                    limit=limit,
                    on_event=arrived.put,
                    secret_env=frozenset().union(*(env_secret_names(r) for r in plan.recipes.values())),
                ),
                arrived,
            )
        )
        captures = keep_captures if keep_captures is not None else work / "captures"

        async def consume() -> None:
            loop = asyncio.get_running_loop()
            pending: list[asyncio.Task[None]] = []
            while True:
                event = await loop.run_in_executor(None, arrived.get)
                if event is None:
                    break
                host = results.get(event.host)
                if host is None or event.task != CAPTURE_TASK or host.status != "pending":
                    continue
                host.seconds = time.monotonic() - t0
                if event.kind == "unreachable":
                    host.status, host.error = "unreachable", event.message or "Ansible could not reach it"
                elif event.kind != "ok":
                    host.status, host.error = "failed", f"the capture task {event.kind}: {event.message}"
                else:
                    try:
                        files = split_capture(str(event.res.get("stdout") or ""), boundary)
                    except CaptureStreamError as e:
                        host.status, host.error = "failed", f"the capture from this host is unusable: {e}"
                    else:
                        d = write_capture(files, captures / host.name)
                        pending.append(asyncio.create_task(_judged(plan, host, d, timeout, prompt, on_host)))
                        continue
                if on_host is not None:
                    on_host(host)
            await asyncio.gather(*pending)

        asyncio.run(consume())
        thread.join()
        outcome = done.get()
    if isinstance(outcome, BaseException):
        raise outcome
    report.ansible = outcome
    for host in report.hosts:
        if host.status == "pending":
            host.status = "failed"
            host.error = "Ansible gave no result for this host" + (
                f" (ansible-playbook ended {outcome.status}, rc {outcome.rc}: {outcome.stderr_tail})"
                if outcome.stderr_tail
                else f" (ansible-playbook ended {outcome.status}, rc {outcome.rc})"
            )
            if on_host is not None:
                on_host(host)
    report.seconds = time.monotonic() - t0
    return report


def _run_and_close(fn: Callable[[], PlaybookRun], arrived: queue.Queue[HostEvent | None]) -> PlaybookRun:
    try:
        return fn()
    finally:
        arrived.put(None)


async def _judged(
    plan: DoctorPlan,
    host: HostResult,
    capture: Path,
    timeout: float,
    prompt: Any,
    on_host: Callable[[HostResult], None] | None,
) -> None:
    try:
        await judge(plan, host, capture, timeout, prompt)
    except Exception as e:  # one host's judging error is that host's failure, never the fleet's
        host.status, host.error = "failed", f"judging the capture failed: {type(e).__name__}: {e}"
    if on_host is not None:
        on_host(host)
