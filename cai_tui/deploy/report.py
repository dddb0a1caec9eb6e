"""What a deployment did, as the ``cai-tui/deploy/v1`` document and as lines for a person.

Neither holds a secret: files are listed by path and mode with their secret *references*, commands by argv (paths
only), containers by state; every string still passes through the redaction set before it is printed.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from .plan import DeployPlan
from .upload import FileOutcome
from .watch import ContainerState

SCHEMA = "cai-tui/deploy/v1"
EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_FOR = {
    "healthy": EXIT_OK,
    "planned": EXIT_OK,
    "failed": EXIT_FAILED,
    "timed_out": EXIT_FAILED,
    "input_error": EXIT_INPUT,
    "declined": EXIT_INPUT,
    "unreachable": EXIT_UNREACHABLE,
}
SYMBOL = {
    "healthy": "✓",
    "running": "✓",
    "completed": "✓",
    "failed": "✗",
    "waiting": "⏸",
    "timed_out": "…",
    "starting": "…",
}


@dataclass
class CommandOutcome:
    step: str
    argv: tuple[str, ...]
    rc: int | None = None  # None: not run
    duration_s: float | None = None


@dataclass
class DeployReport:
    recipe: str | None
    target: str
    plan: DeployPlan | None
    result: str = "planned"  # planned | healthy | failed | timed_out | unreachable | input_error | declined
    message: str | None = None
    faq_id: str | None = None
    files: list[FileOutcome] = field(default_factory=list)
    commands: list[CommandOutcome] = field(default_factory=list)
    containers: list[ContainerState] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    compose_version: str | None = None
    engine_version: str | None = None
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return EXIT_FOR.get(self.result, EXIT_FAILED)

    def troubleshoot_hint(self) -> str:
        recipe = shlex.quote(self.recipe) if self.recipe else "FILE"
        return f"run `cai-tui troubleshoot --recipe {recipe}` to match the failure against the known fixes"


def _file_doc(report: DeployReport, i: int) -> dict[str, Any]:
    assert report.plan is not None
    f = report.plan.files[i]
    out = report.files[i] if i < len(report.files) else None
    return {
        "kind": f.kind,
        "path": f.remote_path,
        "mode": f"{f.mode:04o}",
        "secrets": list(f.secrets),
        "existed": f.exists,
        "written": bool(out and out.written),
        "unchanged": bool(out and out.unchanged),
        "backup": out.backup if out else None,
        "backup_mode": f"{out.backup_mode:04o}" if out and out.backup_mode is not None else None,
        "mode_verified": bool(out and out.mode_verified),
    }


def container_doc(c: ContainerState) -> dict[str, Any]:
    return {
        "name": c.name,
        "project": c.project,
        "service": c.service,
        "state": c.status,
        "health": c.health,
        "exit_code": c.exit_code,
        "restarts": c.restarts,
        "healthy_after_s": c.healthy_after_s,
        "verdict": c.verdict,
        "health_output": c.health_output,
        "logs": c.logs,
    }


def document(report: DeployReport) -> dict[str, Any]:
    """The ``cai-tui/deploy/v1`` document (redact it before printing: see the CLI)."""
    plan = report.plan
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "recipe": report.recipe,
        "target": report.target,
        "deploy_with": plan.deploy_with if plan else None,
        "dry_run": report.dry_run,
        "files": [_file_doc(report, i) for i in range(len(plan.files))] if plan else [],
        "commands": [
            {"step": c.step, "argv": list(c.argv), "rc": c.rc, "duration_s": c.duration_s} for c in report.commands
        ],
        "projects": report.projects,
        "containers": [container_doc(c) for c in report.containers],
        "result": report.result,
        "exit_code": report.exit_code,
        "message": report.message,
        "faq_id": report.faq_id,
        "compose_version": report.compose_version,
        "engine_version": report.engine_version,
        "next": (plan.next_steps if plan else []) if report.result in ("healthy", "planned") else [],
    }
    if report.result in ("failed", "timed_out"):
        doc["next"] = [report.troubleshoot_hint()]
    return doc


def plan_lines(report: DeployReport, *, timeout: float) -> list[str]:
    """The plan as a person reads it before saying yes."""
    plan = report.plan
    assert plan is not None
    lines = [f"deploy plan: {report.recipe or 'recipe'} → {report.target} (deploy_with: {plan.deploy_with})"]
    lines.append("files:")
    width = max(len(f.remote_path) for f in plan.files)
    for f in plan.files:
        if f.exists is None:
            state = ""
        elif f.exists:
            state = f"exists: kept as {f.backup_path} if it differs"
        else:
            state = "new"
        lines.append(f"  {f.remote_path:<{width}}  {f.mode:04o}  {f.kind:<9} {state}".rstrip())
        for s in f.secrets:
            lines.append(f"      {s}  (resolved only when written; never shown)")
    lines.append("commands:")
    for n, c in enumerate(plan.commands, 1):
        lines.append(f"  {n}. {c.step}: {c.text}")
    lines.append(f"then: watch the project's containers until all are healthy, one fails, or {timeout:g}s have passed")
    for note in plan.notes:
        lines.append(f"note: {note}")
    for step in plan.next_steps:
        lines.append(f"afterwards: {step}")
    return lines


def result_lines(report: DeployReport) -> list[str]:
    lines: list[str] = []
    for i, out in enumerate(report.files):
        kind = report.plan.files[i].kind if report.plan else ""
        if out.unchanged:
            lines.append(f"{out.path}: unchanged ({out.mode:04o})")
        elif out.written:
            extra = f"; the previous file is kept as {out.backup}" if out.backup else ""
            lines.append(f"wrote {out.path} ({kind}, mode {out.mode:04o} verified){extra}")
    for cmd in report.commands:
        if cmd.rc is not None:
            lines.append(f"{cmd.step}: `{shlex.join(cmd.argv)}` exited {cmd.rc}")
    if report.containers:
        lines.append(f"containers ({', '.join(report.projects) or 'no project'}):")
        width = max(len(c.name) for c in report.containers)
        for c in report.containers:
            notes: list[str] = []
            if c.healthy_after_s is not None and c.verdict == "healthy":
                notes.append(f"healthy after {c.healthy_after_s:g}s")
            if c.exit_code not in (None, 0):
                notes.append(f"exit code {c.exit_code}")
            if c.verdict == "timed_out":
                notes.append("timed out")
            sym = SYMBOL.get(c.verdict, "?")
            tail = f"  ({'; '.join(notes)})" if notes else ""
            lines.append(f"  {sym} {c.name:<{width}}  {c.service:<22} {c.state}{tail}")
            if not c.ok:
                if c.health_output:
                    lines.append(f"      last healthcheck: {c.health_output.splitlines()[-1]}")
                for ln in c.logs:
                    lines.append(f"      | {ln}")
    if report.result == "healthy":
        lines.append("result: deployed, all containers healthy")
        for step in report.plan.next_steps if report.plan else []:
            lines.append(f"next: {step}")
    elif report.result in ("failed", "timed_out"):
        what = "failed" if report.result == "failed" else "timed out waiting for the containers"
        lines.append(f"result: deployed, but {what}{f': {report.message}' if report.message else ''}")
        lines.append(f"next: {report.troubleshoot_hint()}")
    return lines
