"""The deployment itself: ask the target what the plan needs (home, existing files, Compose, the engine), then write
the files, run compose with its output streamed, and watch the containers.

:func:`prepare` changes nothing on the target (``--dry-run`` stops after it); :func:`execute` resolves the secrets
(only now), writes, runs and watches. Both fill in a :class:`~cai_tui.deploy.report.DeployReport` instead of
raising, so the caller always has something to print.
"""

from __future__ import annotations

import posixpath
import re
import time
from dataclasses import dataclass

from ..events import EventSink, note
from ..recipe import CaiRecipe
from ..render.base import Prompter
from ..targets.base import Target, TargetError
from .compose_run import (
    ComposeUnavailable,
    missing_compose,
    probe_compose,
    project_container_ids,
    project_services,
    run_streaming,
)
from .plan import DEFAULT_COMPOSE, DeployInputError, PlannedCommand, build_plan, render_files
from .report import CommandOutcome, DeployReport
from .upload import UploadError, remote_home, upload_file
from .watch import POLL_S, Engine, EngineUnavailable, from_inspect, watch

DEFAULT_TIMEOUT = 900.0  # compose may pull the vLLM image (tens of GB) before anything starts


@dataclass(frozen=True)
class DeployOptions:
    timeout: float = DEFAULT_TIMEOUT
    compose_cmd: tuple[str, ...] = DEFAULT_COMPOSE
    project: str | None = None
    poll_s: float = POLL_S


def default_project_name(compose_file: str) -> str:
    """Compose's default project: the file's directory name, lowercased, without the characters it forbids."""
    base = posixpath.basename(posixpath.dirname(compose_file.rstrip("/"))).lower()
    return re.sub(r"[^a-z0-9_-]", "", base).lstrip("_-") or "default"


def _file_arg(cmd: PlannedCommand) -> str:
    base = list(cmd.base)
    return base[base.index("-f") + 1] if "-f" in base else ""


def _unreachable(report: DeployReport, message: str, faq_id: str | None = None) -> DeployReport:
    report.result, report.message, report.faq_id = "unreachable", message, faq_id
    return report


async def prepare(
    target: Target, recipe: CaiRecipe, options: DeployOptions, engine: Engine, *, recipe_source: str | None = None
) -> DeployReport:
    """The plan with ~ expanded on the target, which files already exist, Compose's and the engine's versions.

    DeployInputError (exit 2) for a recipe that cannot be deployed; unreachable targets, a missing Compose or
    engine come back as ``result == "unreachable"`` (exit 3) with the plan as far as it is known."""
    plan = build_plan(recipe, compose_cmd=options.compose_cmd, project=options.project)
    report = DeployReport(recipe=recipe_source, target=target.name, plan=plan)
    report.commands = [CommandOutcome(c.step, c.argv) for c in plan.commands]
    try:
        if plan.needs_home:
            plan = build_plan(
                recipe, home=await remote_home(target), compose_cmd=options.compose_cmd, project=options.project
            )
            report.plan = plan
            report.commands = [CommandOutcome(c.step, c.argv) for c in plan.commands]
        for f in plan.files:
            f.exists = await target.exists(f.remote_path)
        info = await probe_compose(target, options.compose_cmd, need_include=plan.deploy_with == "compose")
        report.compose_version = info.version
        report.engine_version = await engine.ping()
    except ComposeUnavailable as e:
        return _unreachable(report, str(e), e.faq_id)
    except EngineUnavailable as e:
        return _unreachable(
            report, f"{e}; start the Docker daemon (systemctl start docker) and check that this user may use it"
        )
    except (TargetError, UploadError, OSError) as e:
        return _unreachable(report, f"cannot reach {target.name}: {e}")
    return report


async def _learn_projects(
    target: Target, engine: Engine, ran: list[PlannedCommand], options: DeployOptions
) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """(projects, container ids, project → services compose expects) of the commands that ran."""
    projects: list[str] = []
    ids: list[str] = []
    expected: dict[str, list[str]] = {}
    for cmd in ran:
        cmd_ids = await project_container_ids(target, cmd.base)
        ids += cmd_ids
        names = sorted({s.project for s in map(from_inspect, await engine.inspect(cmd_ids)) if s.project})
        project = options.project or (names[0] if len(names) == 1 else default_project_name(_file_arg(cmd)))
        for p in [*names, project]:
            if p not in projects:
                projects.append(p)
        services = await project_services(target, cmd.base)
        if services:
            expected.setdefault(project, []).extend(s for s in services if s not in expected.get(project, []))
    return projects, ids, expected


async def execute(
    target: Target,
    recipe: CaiRecipe,
    report: DeployReport,
    options: DeployOptions,
    engine: Engine,
    *,
    prompt: Prompter | None = None,
    on_event: EventSink | None = None,
) -> DeployReport:
    """Write the planned files, run the planned commands (streamed), watch the containers; fills in ``report``.

    ``on_event`` receives compose's output as ``line`` events (``source`` the target, ``step`` the command's step)
    and what happens as ``note`` events: each file written or unchanged, each command started, the projects
    watched, each container's change of state."""
    plan = report.plan
    assert plan is not None

    def say(text: str, step: str = "") -> None:
        if on_event is not None:
            on_event(note(text, step=step))

    started = time.monotonic()
    try:
        data = render_files(recipe, plan, prompt)
    except DeployInputError as e:
        report.result, report.message = "input_error", str(e)
        return report
    try:
        for f in plan.files:
            out = await upload_file(target, f.remote_path, data[f.kind], f.mode)
            report.files.append(out)
            if out.unchanged:
                say(f"{f.remote_path}: unchanged")
            else:
                kept = f" (previous file kept as {out.backup})" if out.backup else ""
                say(f"wrote {f.remote_path} (mode {f.mode:04o}){kept}")
    except (UploadError, TargetError) as e:
        return _unreachable(report, str(e))
    finally:
        data.clear()

    ran: list[PlannedCommand] = []
    compose_rc = 0
    compose_error: str | None = None
    try:
        for i, cmd in enumerate(plan.commands):
            remaining = options.timeout - (time.monotonic() - started)
            say(f"{cmd.step}: {cmd.text}", step=cmd.step)
            r = await run_streaming(target, cmd.argv, on_event=on_event, timeout=max(1.0, remaining), step=cmd.step)
            report.commands[i].rc, report.commands[i].duration_s = r.rc, round(r.duration_s, 1)
            missing = missing_compose(r, options.compose_cmd, target.name)
            if missing is not None:
                return _unreachable(report, str(missing), missing.faq_id)
            ran.append(cmd)
            compose_rc = r.rc
            if r.rc != 0:
                lines = [ln.strip() for ln in r.stderr.splitlines() if ln.strip()]
                compose_error = (
                    f"timed out after {options.timeout:g}s"
                    if r.rc == 124
                    else f"{cmd.step} exited {r.rc}" + (f": {lines[-1]}" if lines else "")
                )
                break
        projects, ids, expected = await _learn_projects(target, engine, ran, options)
        report.projects = projects
        say(f"watching project(s) {', '.join(projects)}")
        result = await watch(
            engine,
            projects,
            ids=ids,
            expected=expected,
            timeout=max(0.0, options.timeout - (time.monotonic() - started)),
            compose_done=compose_rc != 124,
            poll_s=options.poll_s,
            on_event=on_event,
        )
    except EngineUnavailable as e:
        return _unreachable(report, str(e))
    except TargetError as e:
        return _unreachable(report, f"lost {target.name}: {e}")
    report.containers = result.containers
    report.result = result.outcome
    if compose_rc == 124 and report.result == "healthy":
        report.result = "timed_out"
    elif compose_rc != 0 and report.result == "healthy":
        report.result = "failed"  # compose said no although every container it made is fine: its message says why
    if report.result != "healthy":
        bad = [c for c in result.containers if not c.ok]
        parts = [f"{c.service or c.name} {c.state}" for c in bad]
        report.message = "; ".join([*parts, *([compose_error] if compose_error else [])]) or "no container started"
    return report
