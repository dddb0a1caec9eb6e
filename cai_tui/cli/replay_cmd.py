"""``cai-tui replay RECIPE``: run a saved recipe's stages headlessly, end to end, through the stage engine.

``--plan`` prints every item of every stage with its target and guard and changes nothing; ``--export-script``
writes the plan as POSIX shell. Applying resolves every secret reference first, asks once (or needs ``--yes``), then
runs stage by stage: an item whose checks already pass is skipped; the first failure stops the run with the FAQ fix
and the evidence; ``--from STAGE`` resumes. On a terminal progress is shown with rich; without one, events are JSON
lines on stdout. Exit 0 success, 1 a required item or check failed, 2 input error, 3 a target unreachable,
130 interrupted (resumable with ``--from``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from .common import hidden_prompter, load_or_report

if TYPE_CHECKING:
    from ..engine.replay import ReplayReport, StagePlan

EXIT_INPUT = 2
STYLES = {"applied": "green", "skipped": "dim", "failed": "bold red", "waived": "cyan", "planned": ""}


def replay_command(
    recipe: Path = typer.Argument(..., help="The recipe to replay (YAML)."),
    plan: bool = typer.Option(False, "--plan", help="Print every item of every stage; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking (needed without a terminal)."),
    start: str | None = typer.Option(None, "--from", help="Resume at this stage (id, number or a CAI-x.y it covers)."),
    only: str | None = typer.Option(None, "--only", help="Only these stages, comma-separated."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the summary (cai-tui/replay/v1) to this file."),
    junit_out: Path | None = typer.Option(None, "--junit", help="Write a JUnit XML report to this file."),
    script_out: Path | None = typer.Option(
        None, "--export-script", help="Write the plan as a POSIX shell script (no secret values) and exit."
    ),
    files_dir: Path | None = typer.Option(
        None,
        "--files-dir",
        help="Where generated files for the workstation go (default: RECIPE's folder/<name>.files).",
    ),
    timeout: float = typer.Option(15.0, "--timeout", help="Seconds each check may take."),
    undo: bool = typer.Option(
        False,
        "--undo",
        help="Reverse what the doers changed on the hosts: each undo command, last stage first "
        "(with --only/--from: those stages; with --plan: show them).",
    ),
    hosts: Path | None = typer.Option(
        None,
        "--hosts",
        help="An Ansible inventory: each stage runs as an Ansible play on its hosts (the fleet extra: "
        "pip install 'cai-tui[fleet]').",
    ),
    limit: str | None = typer.Option(None, "--limit", "-l", help="With --hosts: Ansible's host pattern."),
    forks: int = typer.Option(10, "--forks", help="With --hosts: how many hosts Ansible works on at once."),
    export_playbook: Path | None = typer.Option(
        None,
        "--export-playbook",
        help="With --hosts: write the plays, host vars, recipes (references only) and a README to DIR, and exit.",
    ),
) -> None:
    """Replay a recipe headlessly: plan, apply, resume, undo; JSON lines, JSON summary and JUnit."""
    if hosts is not None:
        from .fleet_replay import run_fleet_replay_cli

        if undo or script_out is not None or files_dir is not None:
            _err("cai-tui replay: --hosts does not take --undo, --export-script or --files-dir")
            raise typer.Exit(EXIT_INPUT)
        raise typer.Exit(
            run_fleet_replay_cli(
                recipe=recipe,
                inventory=hosts,
                limit=limit,
                forks=forks,
                plan=plan,
                yes=yes,
                start=start,
                only=only,
                json_out=json_out,
                junit_out=junit_out,
                timeout=timeout,
                export_playbook=export_playbook,
            )
        )
    if limit is not None or export_playbook is not None:
        _err("cai-tui replay: --limit and --export-playbook go with --hosts INVENTORY")
        raise typer.Exit(EXIT_INPUT)
    raise typer.Exit(
        run_replay(
            recipe=recipe,
            plan=plan,
            undo=undo,
            yes=yes,
            start=start,
            only=only,
            json_out=json_out,
            junit_out=junit_out,
            script_out=script_out,
            files_dir=files_dir,
            timeout=timeout,
        )
    )


def _err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def _check_out(path: Path | None, option: str) -> str | None:
    if path is None:
        return None
    p = path.expanduser()
    if p.is_dir():
        return f"{option} {p}: is a directory; name the file"
    if not p.parent.is_dir():
        return f"{option} {p}: the directory {p.parent} does not exist"
    return None


def run_replay(
    *,
    recipe: Path,
    plan: bool,
    yes: bool,
    start: str | None,
    only: str | None,
    json_out: Path | None,
    junit_out: Path | None,
    script_out: Path | None,
    files_dir: Path | None,
    timeout: float,
    undo: bool = False,
) -> int:
    import asyncio

    from ..engine.replay import ReplayInputError, plan_recipe

    name = "cai-tui replay"
    if not timeout > 0:
        _err(f"{name}: --timeout must be a positive number of seconds, not {timeout:g}")
        return EXIT_INPUT
    for path, option in ((json_out, "--json"), (junit_out, "--junit"), (script_out, "--export-script")):
        problem = _check_out(path, option)
        if problem:
            _err(f"{name}: {problem}")
            return EXIT_INPUT
    loaded = load_or_report(recipe)
    if loaded is None:
        return EXIT_INPUT
    stages = [s for s in (only or "").split(",") if s.strip()] or None
    try:
        plans = plan_recipe(loaded, start=start, only=stages)
    except ReplayInputError as e:
        _err(f"{name}: {e}")
        return EXIT_INPUT
    recipe_path = str(Path(loaded.path or recipe).expanduser().resolve())
    if script_out is not None:
        if undo:
            _err(f"{name}: --export-script writes the apply plan; it cannot be combined with --undo")
            return EXIT_INPUT
        return _write_script(plans, recipe_path, script_out.expanduser())
    if undo:
        from ..engine.undo import undo_plans

        plans = undo_plans(plans)
        if not plans:
            _err(f"{name}: nothing in the selected stages can be undone (no doer changes a host there)")
            return 0
    out_dir = (files_dir or Path(recipe_path).with_name(Path(recipe_path).stem + ".files")).expanduser()
    return asyncio.run(
        _run(
            loaded,
            plans,
            plan=plan,
            yes=yes,
            json_out=json_out,
            junit_out=junit_out,
            files_dir=out_dir,
            timeout=timeout,
            part=bool(start or stages),
            undo=undo,
        )
    )


def _write_script(plans: list[StagePlan], recipe_path: str, dest: Path) -> int:
    from ..engine.exports import export_script
    from ..recipe import REDACTOR
    from ..recipe.yaml_io import atomic_write

    text = REDACTOR.redact(export_script(plans, recipe_path))
    atomic_write(dest, text.encode("utf-8"), mode=0o755)
    _err(f"wrote {dest}")
    return 0


async def _run(
    loaded: Any,
    plans: list[StagePlan],
    *,
    plan: bool,
    yes: bool,
    json_out: Path | None,
    junit_out: Path | None,
    files_dir: Path,
    timeout: float,
    part: bool = False,
    undo: bool = False,
) -> int:
    """``part``: only some stages are run (--from/--only): only the secrets those stages take are resolved."""
    from ..engine.replay import (
        EXIT_INTERRUPTED,
        add_diffs,
        created_key_files,
        planned_report,
        replay,
        resolve_secrets,
        stage_secret_fields,
    )
    from ..engine.runner import Runner
    from ..engine.session import Session
    from ..engine.undo import run_undo
    from ..events import CancelToken
    from ..targets.base import TargetError

    name = "cai-tui replay"
    tty = sys.stdout.isatty()
    view = _View(tty)
    try:
        session = Session(loaded, prompt=hidden_prompter(), timeout=timeout)
    except ValueError as e:
        _err(f"{name}: {e}")
        return EXIT_INPUT
    try:
        if plan:
            try:
                if not undo:
                    await add_diffs(Runner(session, view.event, files_dir=files_dir), plans)
            except TargetError as e:
                _err(f"{name}: {e} (file diffs left out)")
            report = planned_report(loaded, plans)
            view.event.close()
            view.plan(plans)
            _write_outputs(report, json_out, junit_out)
            return 0
        selected = stage_secret_fields(plans) if part else None
        problems = resolve_secrets(loaded, created_key_files(plans, loaded), session.prompt, fields=selected)
        if problems:
            for p in problems:
                _err(f"{loaded.source}: {p}")
            _err(f"{name}: nothing was changed; fix the references above and run again")
            return EXIT_INPUT
        changing = sum(1 for p in plans for it in p.items if it.applies and it.changing)
        verb = "undo" if undo else "apply"
        if changing and not yes:
            if not (tty and sys.stdin.isatty()):
                _err(
                    f"{name}: {changing} item(s) may change things (see --plan); add --yes to {verb} without a terminal"
                )
                return EXIT_INPUT
            if not typer.confirm(
                f"{verb.capitalize()} {len(plans)} stage(s), {changing} item(s) that may change things?"
            ):
                _err("nothing was changed")
                return 1
        if undo:
            report = await run_undo(Runner(session, view.event, files_dir=files_dir, cancel=CancelToken()), plans)
        else:
            report = await replay(session, plans, view.event, files_dir=files_dir, cancel=CancelToken())
        if report.exit_code == EXIT_INTERRUPTED and not undo:
            _err(f"{name}: interrupted at stage {report.stopped_at}; resume with --from {report.stopped_at}")
        view.event.close()  # the progress bars end before the summary
        view.summary(report)
        _write_outputs(report, json_out, junit_out)
        return report.exit_code
    finally:
        view.event.close()
        await session.aclose()


def write_json_doc(doc: dict[str, Any], path: Path) -> None:
    """A summary document (``--json``), redacted, written atomically."""
    from ..recipe import REDACTOR
    from ..recipe.yaml_io import atomic_write

    text = REDACTOR.redact(json.dumps(doc, indent=2, ensure_ascii=False)) + "\n"
    atomic_write(path.expanduser(), text.encode("utf-8"), mode=0o644)


def _write_outputs(report: ReplayReport, json_out: Path | None, junit_out: Path | None) -> None:
    if json_out is not None:
        write_json_doc(report.to_json(), json_out)
    if junit_out is not None:
        from ..engine.exports import write_junit

        write_junit(report, junit_out.expanduser())


class _View:
    """Events through :class:`~.events_view.EventsView`; the plan and the summary with rich on a terminal, else as
    JSON lines on stdout."""

    def __init__(self, tty: bool) -> None:
        from rich.console import Console

        from .events_view import EventsView

        self.tty = tty
        self.console = Console(highlight=False, soft_wrap=True) if tty else None
        # the CLI's one event renderer: JSON lines without a terminal, lines, notes and progress bars on one
        self.event = EventsView(json_mode=not tty, live=tty)

    def _json(self, doc: dict[str, Any]) -> None:
        from ..recipe import REDACTOR

        sys.stdout.write(REDACTOR.redact(json.dumps(doc, ensure_ascii=False, separators=(",", ":"))) + "\n")
        sys.stdout.flush()

    def plan(self, plans: list[StagePlan]) -> None:
        from ..recipe import REDACTOR

        if self.console is None:
            for p in plans:
                for it in p.items:
                    self._json(
                        {
                            "schema": "cai-tui/replay-plan/v1",
                            **it.to_json(),
                            "changes": it.changes,
                            "applies": it.applies,
                            "not_applicable": it.not_applicable,
                            "problems": it.problems,
                            "diff": it.diff,
                        }
                    )
            return
        from rich.markup import escape

        for p in plans:
            self.console.rule(f"{p.stage.order:02d} {p.stage.id} — {escape(p.stage.title.en)}", align="left")
            for it in p.items:
                style = "dim" if not it.applies else ""
                guard = f" [dim]guard: {', '.join(it.guard)}[/]" if it.guard and it.kind != "check" else ""
                self.console.print(
                    f"[{style}]{it.covers:<8} {it.kind:<7} {escape(it.name):<28} on {it.target}[/]{guard}"
                )
                detail = it.not_applicable or it.command_line or it.title
                self.console.print(f"           [{style}]{escape(REDACTOR.redact(detail))}[/]")
                for problem in it.problems:
                    self.console.print(f"           [yellow]! {escape(problem)}[/]")
                if it.diff:
                    for line in REDACTOR.redact(it.diff).splitlines():
                        self.console.print(f"           [dim]{escape(line)}[/]")

    def summary(self, report: ReplayReport) -> None:
        doc = {
            "schema": "cai-tui/replay-summary/v1",
            "status": report.status,
            "changes": report.changes,
            "counts": report.counts(),
            "stopped_at": report.stopped_at,
            "message": report.message,
            "elapsed_s": round(report.elapsed_s, 1),
        }
        if self.console is None:
            self._json(doc)
            return
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="cai-tui replay: items not skipped", show_lines=False, expand=True)
        for col in ("stage", "item", "kind", "target", "status", "detail"):
            table.add_column(col, overflow="fold", ratio=3 if col == "detail" else None)
        for r in report.results:
            if r.status == "skipped":  # each was shown as it ran; the table holds what changed, failed or is left
                continue
            it = r.item
            detail = r.detail + (f" [{r.faq_id}]" if r.faq_id else "")
            table.add_row(
                it.stage,
                it.name,
                it.kind,
                it.target,
                f"[{STYLES.get(r.status, '')}]{r.status}[/]",
                escape(detail),
            )
        self.console.print(table)
        counts = ", ".join(f"{n} {s}" for s, n in sorted(report.counts().items()))
        self.console.print(
            f"[bold]{report.status}[/] — {report.changes} change(s); {counts}; {report.elapsed_s:.1f} s"
            + (
                f"\nstopped at stage {report.stopped_at}: resume with --from {report.stopped_at}"
                if report.stopped_at
                else ""
            )
        )
