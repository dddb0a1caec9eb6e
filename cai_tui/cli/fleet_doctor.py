"""``cai-tui doctor --hosts INVENTORY``: the fleet doctor's front end — input checks, the live hosts × stages table on
a terminal, the ``cai-tui/fleet/v1`` JSON, JUnit. Exit 0 when every host passes, 1 when one fails or is unreachable,
2 for input errors."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .doctor_cmd import EXIT_FAILED, EXIT_OK, EXIT_USAGE, STYLES, SYMBOLS

if TYPE_CHECKING:
    from ..fleet.doctor import DoctorPlan, FleetReport, HostResult

HOST_STYLE = {"ok": "green", "failed": "bold red", "unreachable": "magenta", "pending": "dim"}


def _err(message: str) -> None:
    sys.stderr.write("cai-tui doctor: " + message.rstrip("\n") + "\n")
    sys.stderr.flush()


def run_fleet_doctor_cli(
    *,
    inventory: Path,
    recipe: Path | None,
    target: str | None,
    sysroot: Path | None,
    only: str | None,
    as_json: bool,
    timeout: float,
    limit: str | None,
    forks: int,
    junit: Path | None,
    captures: Path | None,
) -> int:
    from ..fleet.ansible import FleetInputError, FleetUnavailable, require_ansible

    if target is not None or sysroot is not None:
        _err("--hosts takes the place of --target and --sysroot: each inventory host is the instance")
        return EXIT_USAGE
    if not timeout > 0:
        _err(f"--timeout must be a positive number of seconds, not {timeout:g}")
        return EXIT_USAGE
    if forks < 1:
        _err(f"--forks must be 1 or more, not {forks}")
        return EXIT_USAGE
    if captures is not None and captures.exists() and not captures.is_dir():
        _err(f"--captures {captures}: not a directory")
        return EXIT_USAGE
    try:
        require_ansible()
    except FleetUnavailable as e:
        _err(str(e))
        return EXIT_USAGE
    from ..fleet.doctor import prepare, run_fleet_doctor

    try:
        plan = prepare(inventory, recipe, limit, only)
    except FleetInputError as e:
        _err(str(e))
        return EXIT_USAGE
    live = _LiveTable(plan) if sys.stdout.isatty() and not as_json else None
    from .common import hidden_prompter

    try:
        if live is not None:
            live.start()
        report = run_fleet_doctor(
            plan,
            forks=forks,
            limit=limit,
            timeout=timeout,
            keep_captures=captures,
            on_host=live.update if live is not None else None,
            prompt=hidden_prompter() if live is None else None,
        )
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    finally:
        if live is not None:
            live.stop()
    if junit is not None:
        from ..fleet.junit import write_fleet_junit

        try:
            write_fleet_junit(report, junit)
        except OSError as e:
            _err(f"--junit {junit}: {e.strerror or e}")
            return EXIT_USAGE
    if as_json:
        _print_json(report)
    else:
        _print_human(report, plan, final=live is None)
    return EXIT_OK if report.exit_code == 0 else EXIT_FAILED


def _print_json(report: FleetReport) -> None:
    import json

    from ..recipe import REDACTOR

    text = REDACTOR.redact(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _stages(plan: DoctorPlan) -> list[str]:
    from .doctor_output import stage_order

    flow = next((r.recipe.flow for r in plan.recipes.values() if r is not None), None)
    order = stage_order(flow)
    import fnmatch

    chosen = [s for s in plan.specs if not plan.globs or any(fnmatch.fnmatchcase(s.id, g) for g in plan.globs)]
    stages = {s.stage for s in chosen}
    return sorted(stages, key=lambda s: (order.get(s, (999, s))[0], s))


def _host_row(host: HostResult, stages: list[str]) -> list[str]:
    from rich.markup import escape

    cells = [escape(host.name), f"[{HOST_STYLE.get(host.status, '')}]{host.status}[/]"]
    for stage in stages:
        mine = [o for o in host.outcomes if o.spec.stage == stage]
        if not mine:
            cells.append("[dim]·[/]" if host.status == "pending" else "")
            continue
        worst = _worst([o.result.status for o in mine if o.id not in host.waived] or ["pass"])
        cells.append(f"[{STYLES.get(worst, '')}]{SYMBOLS.get(worst, '?')}[/]")
    detail = host.error
    if not detail and host.failed_checks:
        detail = ", ".join(o.id for o in host.failed_checks)
    cells.append(escape(detail))
    return cells


def _worst(statuses: list[str]) -> str:
    rank = {"fail": 0, "unknown": 1, "warn": 2, "pass": 3, "skip": 4}
    return min(statuses, key=lambda s: rank.get(s, 5))


def _table(plan: DoctorPlan, hosts: list[HostResult], stages: list[str]) -> Any:
    from rich.table import Table

    table = Table(title="cai-tui doctor --hosts", title_justify="left", box=None, pad_edge=False)
    table.add_column("host", style="bold", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for s in stages:
        table.add_column(s, justify="center", no_wrap=True)
    table.add_column("why", ratio=1)
    for h in hosts:
        table.add_row(*_host_row(h, stages))
    return table


class _LiveTable:
    """The hosts × stages table, filled in as each host is judged (on a terminal only)."""

    def __init__(self, plan: DoctorPlan) -> None:
        from rich.console import Console
        from rich.live import Live

        from ..fleet.doctor import HostResult

        self.plan = plan
        self.stages = _stages(plan)
        self.hosts = {h.name: HostResult(h.name, h.address) for h in plan.hosts}
        self.lock = threading.Lock()
        self.live = Live(_table(plan, list(self.hosts.values()), self.stages), console=Console(), auto_refresh=False)

    def start(self) -> None:
        self.live.start()

    def stop(self) -> None:
        self.live.stop()

    def update(self, host: HostResult) -> None:
        with self.lock:
            self.hosts[host.name] = host
            self.live.update(_table(self.plan, list(self.hosts.values()), self.stages), refresh=True)


def _print_human(report: FleetReport, plan: DoctorPlan, *, final: bool) -> None:
    import io

    from rich.console import Console
    from rich.markup import escape

    from ..recipe import REDACTOR

    buf = io.StringIO()
    console = Console(file=buf, width=120, force_terminal=sys.stdout.isatty(), highlight=False, soft_wrap=False)
    if final:
        console.print(_table(plan, report.hosts, _stages(plan)))
    for h in report.hosts:
        for o in h.failed_checks:
            r = o.result
            sym = SYMBOLS.get(r.status, "?")  # ✗ a failure, ? a required check that could not be judged
            console.print(f"[bold]{escape(h.name)}[/] {sym} {escape(o.id)}: {escape(r.summary)}")
            for e in r.evidence[:3]:
                console.print(f"  [dim]evidence: {escape(e.observed)}  ({escape(e.source)})[/]")
            if r.fix is not None:
                console.print("  fix " + escape(f"[{r.fix.faq_id}]") + ": " + escape(r.fix.text))
    s = report.summary()
    console.print(
        f"{len(report.hosts)} host(s): {s['ok']} ok, {s['failed']} failed, {s['unreachable']} unreachable "
        f"({report.seconds:.1f} s)"
    )
    sys.stdout.write(REDACTOR.redact(buf.getvalue()))
    sys.stdout.flush()
