"""``replay RECIPE --hosts INVENTORY``: the engine's plan, stage by stage, as Ansible plays over many hosts.

Each stage is one play (:mod:`.playbook`) run by ansible-runner on the hosts still going; the items that run on the
controller (checks, manual steps, the host's capture judged by the engine's own code) follow it; a host whose stage
failed (or that Ansible could not reach) stops there and never stops the others. ``--plan`` runs the plays in
Ansible's check mode with diffs. Per host, the result is a ``cai-tui/replay/v1`` report.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine.items import ItemResult
from ..engine.replay import SCHEMA, ReplayReport
from ..engine.runner import TargetUnreachable
from .ansible import FleetInputError, HostEvent, private_dir, run_playbook
from .capture import CaptureStreamError, split_capture, write_capture
from .inventory import InventoryHost, env_secret_names, load_inventory
from .playbook import CAPTURE, HOST_CHECKS, StagePlay, TaskRef, compile_stage

if TYPE_CHECKING:
    from ..engine.items import Item
    from ..engine.replay import StagePlan
    from ..recipe import LoadedRecipe


@dataclass
class HostRun:
    host: InventoryHost
    loaded: LoadedRecipe
    plans: list[StagePlan]
    report: ReplayReport
    status: str = "ok"  # ok | failed | unreachable
    error: str = ""

    @property
    def name(self) -> str:
        return self.host.name

    def to_json(self) -> dict[str, Any]:
        doc = self.report.to_json()
        doc.pop("schema", None)
        out: dict[str, Any] = {
            "name": self.name,
            "address": self.host.address,
            **doc,
            "status": self.status,  # ok | failed | unreachable (the report's own status says failed for both)
            "exit_code": 0 if self.status == "ok" else 1,
        }
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class FleetReplay:
    inventory: str
    recipe: str
    role: str
    hosts: list[HostRun]
    plan_only: bool = False
    seconds: float = 0.0
    stages: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        out = {"ok": 0, "failed": 0, "unreachable": 0, "changes": 0}
        for h in self.hosts:
            out[h.status] += 1
            out["changes"] += h.report.changes
        return out

    @property
    def exit_code(self) -> int:
        return 0 if all(h.status == "ok" for h in self.hosts) else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "recipe": self.recipe,
            "inventory": self.inventory,
            "mode": "plan" if self.plan_only else "apply",
            "stages": self.stages,
            "status": "ok" if self.exit_code == 0 else "failed",
            "summary": self.summary(),
            "elapsed_s": round(self.seconds, 3),
            "hosts": [h.to_json() for h in self.hosts],
        }


def prepare_replay(
    inventory: Path,
    recipe: Path,
    limit: str | None,
    start: str | None,
    only: list[str] | None,
    *,
    resolve: bool = True,
) -> tuple[list[HostRun], str, str]:
    """(hosts with their recipe and plans, the hosts' role, the recipe's absolute path); FleetInputError for bad
    input, a secret that cannot be resolved included (nothing has run). ``resolve=False``: leave the secrets (an
    export renders them at its own run time)."""
    import os

    from ..engine.replay import (
        ReplayInputError,
        created_key_files,
        plan_recipe,
        resolve_secrets,
        stage_secret_fields,
    )
    from ..engine.session import role_for
    from .inventory import load_base_recipe, recipe_for_host

    hosts = load_inventory(inventory, limit)
    base = load_base_recipe(recipe)
    resolved: set[int] = set()  # hosts without overrides share the base recipe: its secrets are resolved once
    runs: list[HostRun] = []
    for h in hosts:
        loaded = recipe_for_host(recipe, h, base)
        try:
            plans = plan_recipe(loaded, start=start, only=only)
        except ReplayInputError as e:
            raise FleetInputError(str(e)) from None
        fields = stage_secret_fields(plans) if (start or only) else None
        problems = []
        if resolve and id(loaded) not in resolved:
            problems = resolve_secrets(loaded, created_key_files(plans, loaded), None, fields=fields)
            resolved.add(id(loaded))
        if problems:
            raise FleetInputError(f"host {h.name}: " + "; ".join(problems) + " (nothing was changed)")
        runs.append(HostRun(h, loaded, plans, ReplayReport(recipe=loaded.source)))
    flow = runs[0].loaded.recipe.flow
    return runs, role_for(flow, ""), os.path.abspath(os.fspath(recipe))


def run_fleet_replay(
    inventory: Path,
    recipe_path: str,
    runs: list[HostRun],
    role: str,
    *,
    forks: int,
    plan_only: bool,
    timeout: float,
    on_stage: Callable[[str, list[HostRun]], None] | None = None,
) -> FleetReplay:
    t0 = time.monotonic()
    fleet = FleetReplay(str(inventory), recipe_path, role, runs, plan_only)
    fleet.stages = [p.stage.id for p in runs[0].plans] if runs else []
    secret_env = frozenset().union(*(env_secret_names(r.loaded) for r in runs))
    with private_dir("cai-tui-replay-") as work:
        for si, stage in enumerate(fleet.stages):
            going = [r for r in runs if r.status == "ok"]
            for r in runs:
                if r.status != "ok":
                    why = "not run: " + (
                        "the host is unreachable" if r.status == "unreachable" else "an earlier stage failed"
                    )
                    r.report.results += [ItemResult(it, "planned", why) for it in r.plans[si].items]
            if not going:
                continue
            swork = work / f"stage{si:02d}"
            play = compile_stage(
                stage,
                {r.name: (r.loaded, r.plans[si].items, r.host.vars) for r in going},
                role,
                recipe_path,
                swork,
                capture=not plan_only,
            )
            events: dict[str, dict[str, HostEvent]] = {r.name: {} for r in going}

            def collect(e: HostEvent, events: dict[str, dict[str, HostEvent]] = events) -> None:
                if e.host in events:
                    events[e.host][e.task] = e

            run_playbook(
                [play.play],
                inventory,
                swork,
                forks=forks,
                limit=",".join(r.name for r in going),
                on_event=collect,
                cmdline="--check --diff" if plan_only else None,
                secret_env=secret_env,
            )
            asyncio.run(_finish_stage(going, si, play, events, role, plan_only, timeout, swork))
            if on_stage is not None:
                on_stage(stage, runs)
    for r in runs:
        r.report.elapsed_s = time.monotonic() - t0
        if r.status != "ok":
            r.report.status, r.report.exit_code = "failed", 1 if r.status == "failed" else 3
    fleet.seconds = time.monotonic() - t0
    return fleet


async def _finish_stage(
    going: list[HostRun],
    si: int,
    play: StagePlay,
    events: dict[str, dict[str, HostEvent]],
    role: str,
    plan_only: bool,
    timeout: float,
    work: Path,
) -> None:
    await asyncio.gather(*(_finish_host(r, si, play, events[r.name], role, plan_only, timeout, work) for r in going))


async def _finish_host(
    run: HostRun,
    si: int,
    play: StagePlay,
    seen: dict[str, HostEvent],
    role: str,
    plan_only: bool,
    timeout: float,
    work: Path,
) -> None:
    from ..engine.runner import Runner
    from ..engine.session import Session
    from ..targets.capture import CaptureTarget

    plan = run.plans[si]
    by_item: dict[str, dict[str, HostEvent]] = {}
    for task, e in seen.items():
        ref = play.tasks.get(task, TaskRef("setup"))
        by_item.setdefault(ref.item_id, {})[ref.kind] = e
        if e.kind == "unreachable":
            run.status, run.error = "unreachable", e.message or "Ansible could not reach it"
        elif e.kind == "failed" and ref.kind in ("setup", "capture", "folder") and run.status == "ok":
            run.status, run.error = "failed", f"{task}: {e.message}"
    results: list[ItemResult] = []
    if run.status != "ok":
        why = "not run: " + ("the host is unreachable" if run.status == "unreachable" else run.error)
        for it in plan.items:
            evs = by_item.get(it.id, {})
            results.append(_task_result(it, evs, plan_only) if evs else ItemResult(it, "planned", why))
        run.report.results += results
        if run.status == "failed":
            run.report.stopped_at = plan.stage.id
            run.report.message = run.error
        return
    session: Session | None = None
    runner: Runner | None = None
    if not plan_only:
        session = Session(run.loaded, timeout=timeout)
        for other in [r for r in session.targets if r not in ("workstation", "local")]:
            del session.targets[other]  # the recipe's own targets are not this host: its checks come from it
        cap = seen.get(CAPTURE)
        if cap is not None and cap.kind == "ok" and play.capture_boundary:
            try:
                files = split_capture(str(cap.res.get("stdout") or ""), play.capture_boundary)
            except CaptureStreamError as e:
                run.status, run.error = "failed", f"the capture from this host is unusable: {e}"
            else:
                session.targets[role] = CaptureTarget(
                    write_capture(files, work / "captures" / run.name), name=f"{run.name} (Ansible capture)"
                )
        runner = Runner(session, lambda _e: None, files_dir=work / "workstation-files")
        if play.host_checks:
            told = seen.get(HOST_CHECKS)
            told_results, problem = _host_results(told, play.host_checks)
            if problem:
                run.status, run.error = "failed", problem
            runner.preset(told_results)
    try:
        for it in plan.items:
            if it.id in play.compiled:
                res = _task_result(it, by_item.get(it.id, {}), plan_only)
            elif plan_only:
                detail = it.not_applicable or "; ".join(it.problems) or it.changes
                res = ItemResult(it, "planned", detail)
            elif it.kind in ("action", "file") and it.target != role and it.applies:
                res = ItemResult(
                    it,
                    "skipped",
                    f"runs on the {it.target}, once, not on each host: cai-tui replay RECIPE --only {it.stage}",
                )
            else:
                assert runner is not None
                try:
                    res = await runner.run_item(it)
                except TargetUnreachable as e:  # a target this item needs (not the host): that item fails, here
                    res = ItemResult(it, "failed", str(e))
            results.append(res)
    finally:
        if session is not None:
            await session.aclose()
    run.report.results += results
    failed = next((r for r in results if r.status == "failed"), None)
    if failed is not None and run.status == "ok":
        run.status = "failed"
        run.error = f"{failed.item.id}: {failed.detail}"
    if run.status != "ok":
        run.report.stopped_at = plan.stage.id
        run.report.message = run.error


def _stdout_note(stdout: str) -> str:
    """The text of the doer's "already done" note (its JSON-lines events), else its last note or plain line."""
    last_note = last_plain = ""
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        doc: Any = None
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                doc = None
        if not isinstance(doc, dict):
            last_plain = line
            continue
        if doc.get("kind") in ("note", "line") and doc.get("text"):
            if (doc.get("data") or {}).get("outcome") == "unchanged":
                return str(doc["text"])
            last_note = str(doc["text"])
    return last_note or last_plain


def _task_result(it: Item, evs: dict[str, HostEvent], plan_only: bool) -> ItemResult:
    """What Ansible's events say of a compiled item (a guard task, then the item's own task)."""
    guard = evs.get("guard")
    main = evs.get("file") or evs.get("action")
    folder = evs.get("folder")
    if main is None and folder is not None and folder.kind == "failed":
        return ItemResult(it, "failed", f"cannot make the folder of {it.text}: {folder.message}")
    if main is None:
        if guard is not None and guard.kind == "ok" and guard.res.get("rc") == 0:
            return ItemResult(it, "skipped", "already done: its checks pass on the host")
        return ItemResult(it, "planned", "not run: an earlier item failed on this host")
    res = main.res
    if main.kind == "unreachable":
        return ItemResult(it, "failed", f"unreachable: {main.message}")
    if main.kind == "failed":
        tail = [ln for ln in str(res.get("stdout") or "").splitlines() if ln.strip() and not ln.startswith("{")][-8:]
        if it.kind == "action":
            rc = res.get("rc")
            return ItemResult(it, "failed", f"`{it.command_line}` exited {rc}: {main.message}", evidence=tail)
        return ItemResult(it, "failed", main.message or "the copy failed")
    if main.kind == "skipped":
        if guard is not None and guard.kind == "ok" and guard.res.get("rc") == 0:
            return ItemResult(it, "skipped", "already done: its checks pass on the host")
        if plan_only and it.kind == "action":
            return ItemResult(it, "planned", f"would run {it.command_line}")
        return ItemResult(it, "skipped", "does not apply to this host")
    changed = bool(res.get("changed"))
    if it.kind == "file":
        told = evs.get("file_result")
        said = told.res.get("msg") if told is not None else None
        if isinstance(said, dict):  # the copy's own result is hidden (no_log) when the file holds a secret
            changed = str(said.get("changed")).lower() == "true"
            res = {**res, "backup_file": said.get("backup_file") or None}
        dest = str(res.get("dest") or it.text)
        if plan_only:
            return ItemResult(it, "planned", f"would change {dest}" if changed else f"{dest} is up to date")
        if not changed:
            return ItemResult(it, "skipped", f"{dest} is up to date")
        backup = res.get("backup_file")
        return ItemResult(
            it, "applied", f"{dest} written" + (f" (the previous file kept as {backup})" if backup else "")
        )
    text = _stdout_note(str(res.get("stdout") or ""))
    if not changed:
        return ItemResult(it, "skipped", f"already done: {text}" if text else "already done")
    return ItemResult(it, "applied", text or "done")


def _host_results(told: HostEvent | None, ids: list[str]) -> tuple[dict[str, Any], str]:
    """The results of the host's ``cai-tui doctor --json`` (doctor/v1), and what went wrong getting them."""
    from ..checks.base import Evidence, Fix, Result

    if told is None or told.kind != "ok":
        return {}, f"{HOST_CHECKS}: " + (told.message if told is not None else "no result")
    stdout = str(told.res.get("stdout") or "")
    try:
        doc = json.loads(stdout)
        checks = doc["checks"]
    except (ValueError, KeyError, TypeError):
        tail = " | ".join([ln for ln in (stdout + "\n" + str(told.res.get("stderr") or "")).splitlines() if ln][-3:])
        return {}, f"the host's cai-tui doctor gave no JSON (exit {told.res.get('rc')}): {tail}"
    out: dict[str, Any] = {}
    for c in checks:
        fix = c.get("fix")
        out[str(c["id"])] = Result(
            c["status"],
            str(c.get("summary") or ""),
            [
                Evidence(e["observed"], e["source"], e.get("target") or "", e.get("at") or "")
                for e in c.get("evidence") or []
            ],
            Fix(fix["faq_id"], fix["text"]) if fix else None,
        )
    missing = [i for i in ids if i not in out]
    return out, (f"the host's cai-tui doctor did not run {', '.join(missing)}" if missing else "")
