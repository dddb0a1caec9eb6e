"""``cai-tui replay RECIPE --hosts INVENTORY``: the fleet replay's front end — input checks, the confirmation, a
per-host summary table, the ``cai-tui/replay/v1`` document (one entry per host) and JUnit (a testsuite per host).
Exit 0 when every host succeeded, 1 when one failed or was unreachable, 2 for input errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from .replay_cmd import EXIT_INPUT, STYLES, _check_out, write_json_doc

if TYPE_CHECKING:
    from ..fleet.replay import FleetReplay, HostRun

HOST_STYLE = {"ok": "green", "failed": "bold red", "unreachable": "magenta"}


def _err(message: str) -> None:
    sys.stderr.write("cai-tui replay: " + message.rstrip("\n") + "\n")
    sys.stderr.flush()


def run_fleet_replay_cli(
    *,
    recipe: Path,
    inventory: Path,
    limit: str | None,
    forks: int,
    plan: bool,
    yes: bool,
    start: str | None,
    only: str | None,
    json_out: Path | None,
    junit_out: Path | None,
    timeout: float,
    export_playbook: Path | None = None,
) -> int:
    from ..fleet.ansible import FleetInputError, FleetUnavailable, require_ansible

    if not timeout > 0:
        _err(f"--timeout must be a positive number of seconds, not {timeout:g}")
        return EXIT_INPUT
    if forks < 1:
        _err(f"--forks must be 1 or more, not {forks}")
        return EXIT_INPUT
    for path, option in ((json_out, "--json"), (junit_out, "--junit")):
        problem = _check_out(path, option)
        if problem:
            _err(problem)
            return EXIT_INPUT
    try:
        require_ansible()
    except FleetUnavailable as e:
        _err(str(e))
        return EXIT_INPUT
    from ..fleet.replay import prepare_replay, run_fleet_replay

    stages = [s.strip() for s in (only or "").split(",") if s.strip()] or None
    try:
        runs, role, recipe_path = prepare_replay(
            inventory, recipe, limit, start, stages, resolve=export_playbook is None
        )
    except FleetInputError as e:
        _err(str(e))
        return EXIT_INPUT
    if export_playbook is not None:
        from ..fleet.export import ExportError
        from ..fleet.export import export_playbook as write_export

        try:
            written = write_export(export_playbook.expanduser(), inventory, recipe_path, runs, role)
        except (ExportError, OSError) as e:
            _err(str(e))
            return EXIT_INPUT
        sys.stderr.write(f"wrote {len(written)} file(s) to {export_playbook} (see its README.md)\n")
        return 0
    changing = sum(1 for p in runs[0].plans for it in p.items if it.applies and it.changing)
    if not plan and changing and not yes:
        tty = sys.stdout.isatty() and sys.stdin.isatty()
        if not tty:
            _err(f"{changing} item(s) per host may change things (see --plan); add --yes to apply without a terminal")
            return EXIT_INPUT
        if not typer.confirm(f"Apply {len(runs[0].plans)} stage(s) on {len(runs)} host(s), {changing} item(s) each?"):
            _err("nothing was changed")
            return 1
    console = _console()

    def progress(stage: str, hosts: list[HostRun]) -> None:
        if console is not None:
            states = ", ".join(f"{h.name} {h.status}" for h in hosts)
            console.print(f"[bold]{stage}[/]: {states}", highlight=False)

    try:
        fleet = run_fleet_replay(
            inventory, recipe_path, runs, role, forks=forks, plan_only=plan, timeout=timeout, on_stage=progress
        )
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    _write_outputs(fleet, json_out, junit_out)
    _print(fleet)
    return fleet.exit_code


def _console():  # type: ignore[no-untyped-def]
    if not sys.stdout.isatty():
        return None
    from rich.console import Console

    return Console(highlight=False)


def _write_outputs(fleet: FleetReplay, json_out: Path | None, junit_out: Path | None) -> None:
    if json_out is not None:
        write_json_doc(fleet.to_json(), json_out)
    if junit_out is not None:
        from ..fleet.junit import write_replay_junit

        write_replay_junit(fleet, junit_out.expanduser())


def _print(fleet: FleetReplay) -> None:
    import io

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..recipe import REDACTOR

    buf = io.StringIO()
    console = Console(file=buf, width=120, force_terminal=sys.stdout.isatty(), highlight=False, soft_wrap=False)
    table = Table(title=f"cai-tui replay --hosts ({'plan' if fleet.plan_only else 'apply'})", title_justify="left")
    for col in ("host", "status", "changes", "applied", "skipped", "failed", "planned", "why"):
        table.add_column(col, ratio=3 if col == "why" else None, overflow="fold")
    for h in fleet.hosts:
        counts = h.report.counts()
        table.add_row(
            escape(h.name),
            f"[{HOST_STYLE.get(h.status, '')}]{h.status}[/]",
            str(h.report.changes),
            *(str(counts.get(s, 0)) for s in ("applied", "skipped", "failed", "planned")),
            escape(h.error),
        )
    console.print(table)
    for h in fleet.hosts:
        for r in h.report.results:
            if r.status in ("failed", "applied") or (fleet.plan_only and r.detail.startswith("would")):
                style = STYLES.get(r.status) or "default"
                console.print(f"{escape(h.name)} [{style}]{r.status}[/] {escape(r.item.id)}: {escape(r.detail)}")
    s = fleet.summary()
    console.print(
        f"{len(fleet.hosts)} host(s): {s['ok']} ok, {s['failed']} failed, {s['unreachable']} unreachable; "
        f"{s['changes']} change(s); {fleet.seconds:.1f} s"
    )
    sys.stdout.write(REDACTOR.redact(buf.getvalue()))
    sys.stdout.flush()
