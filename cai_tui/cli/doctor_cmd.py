"""``cai-tui doctor``: run the checks of a recipe and say what is wrong, with the evidence and the fix.

Exit 0 when no required check fails, 1 when one does (a waived failure does not count), 2 for usage or input errors
(a bad recipe prints its problem lines). Checks change nothing. Heavy imports stay inside the functions so that
``cai-tui --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..engine.session import build_targets, doctor_document, waived_failures
from .common import hidden_prompter, load_or_report, run_closing

if TYPE_CHECKING:
    from ..checks.base import CheckSpec
    from ..checks.runner import CheckOutcome

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SYMBOLS = {"pass": "✓", "fail": "✗", "warn": "!", "skip": "–", "unknown": "?"}
STYLES = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim", "unknown": "magenta"}


def doctor_command(
    recipe: Path | None = typer.Option(None, "--recipe", help="The recipe to check (YAML)."),
    target: str | None = typer.Option(
        None,
        "--target",
        help="Where instance checks run: local, ssh://user@host[:port], docker://CONTAINER or ctr://TASK "
        "(the workstation is always this machine).",
    ),
    sysroot: Path | None = typer.Option(
        None, "--sysroot", help="Read the instance's files under this directory (a mounted rootfs or a capture)."
    ),
    only: str | None = typer.Option(None, "--only", help="Comma-separated check id globs, e.g. 'oss.*,trustee.url'."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable: schema cai-tui/doctor/v1."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds each check may take."),
    hosts: Path | None = typer.Option(
        None,
        "--hosts",
        help="An Ansible inventory (INI or YAML): Ansible gathers each host's facts, the checks judge each host "
        "(needs the fleet extra: pip install 'cai-tui[fleet]').",
    ),
    limit: str | None = typer.Option(None, "--limit", "-l", help="With --hosts: Ansible's host pattern."),
    forks: int = typer.Option(10, "--forks", help="With --hosts: how many hosts Ansible works on at once."),
    junit: Path | None = typer.Option(None, "--junit", help="With --hosts: write JUnit XML (a testsuite per host)."),
    captures: Path | None = typer.Option(
        None, "--captures", help="With --hosts: keep each host's capture in DIR/<host> (doctor --sysroot reads it)."
    ),
) -> None:
    """Diagnose a set-up: Trustee, OSS, KMS, the model, the instance."""
    if hosts is not None:
        from .fleet_doctor import run_fleet_doctor_cli

        raise typer.Exit(
            run_fleet_doctor_cli(
                inventory=hosts,
                recipe=recipe,
                target=target,
                sysroot=sysroot,
                only=only,
                as_json=as_json,
                timeout=timeout,
                limit=limit,
                forks=forks,
                junit=junit,
                captures=captures,
            )
        )
    stray = [name for name, v in (("--limit", limit), ("--junit", junit), ("--captures", captures)) if v is not None]
    if stray:
        _err(f"cai-tui doctor: {', '.join(stray)} go with --hosts INVENTORY")
        raise typer.Exit(EXIT_USAGE)
    raise typer.Exit(
        run_doctor(recipe=recipe, target=target, sysroot=sysroot, only=only, as_json=as_json, timeout=timeout)
    )


def _err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def run_doctor(
    *,
    recipe: Path | None,
    target: str | None,
    sysroot: Path | None,
    only: str | None,
    as_json: bool,
    timeout: float,
) -> int:
    import fnmatch

    from ..checks.base import CheckContext
    from ..checks.registry import all_checks
    from ..checks.runner import run_checks
    from ..recipe import REDACTOR

    if not timeout > 0:
        _err(f"cai-tui doctor: --timeout must be a positive number of seconds, not {timeout:g}")
        return EXIT_USAGE
    loaded = None
    if recipe is not None:
        loaded = load_or_report(recipe)
        if loaded is None:
            return EXIT_USAGE
    rec = loaded.recipe if loaded is not None else None
    flow = rec.flow if rec is not None else None

    specs: list[CheckSpec] = [s for s in all_checks().values() if flow is None or flow in s.flows]
    globs = [g.strip() for g in (only or "").split(",") if g.strip()]
    for g in globs:
        if not any(fnmatch.fnmatchcase(s.id, g) for s in specs):
            known = ", ".join(sorted(s.id for s in specs))
            _err(f"cai-tui doctor: --only {g!r} matches no check; known checks: {known}")
            return EXIT_USAGE

    try:
        targets = build_targets(rec, flow, target, sysroot)
    except ValueError as e:
        _err(f"cai-tui doctor: {e}")
        return EXIT_USAGE

    ctx = CheckContext(
        recipe=rec,
        targets=targets,
        redactor=REDACTOR,
        timeout=timeout,
        sysroot=str(sysroot) if sysroot is not None else None,
        prompt=hidden_prompter(),
    )

    try:
        outcomes = run_closing(run_checks(specs, ctx, only=globs or None, timeout=timeout), targets)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    waivers = list(rec.waivers) if rec is not None else []
    waived = waived_failures(outcomes, waivers)
    failed_required = [o for o in outcomes if o.result.status == "fail" and o.spec.required and o.id not in waived]
    if as_json:
        _print_json(outcomes, waived, loaded.source if loaded is not None else None)
    else:
        _print_human(outcomes, waived, flow, loaded.source if loaded is not None else None)
    return EXIT_FAILED if failed_required else EXIT_OK


# --------------------------------------------------------------------------------------------- output


def _print_json(outcomes: list[CheckOutcome], waived: dict[str, str], source: str | None) -> None:
    import json

    from ..recipe import REDACTOR

    doc = doctor_document(outcomes, waived, source)
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    if len(REDACTOR) and text in REDACTOR:  # belt and braces: the runner redacted every string already
        doc = json.loads(REDACTOR.redact(text))
        text = json.dumps(doc, indent=2, ensure_ascii=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _stage_order(flow: str | None) -> dict[str, tuple[int, str]]:
    from ..stages import StageSpecError, load_all

    try:
        flows = load_all()
    except StageSpecError:
        return {}
    out: dict[str, tuple[int, str]] = {}
    for name in [flow] if flow else list(flows):
        if name not in flows:
            continue
        for s in flows[name].stages:
            out.setdefault(s.id, (s.order, s.title.en))
    return out


def _print_human(outcomes: list[CheckOutcome], waived: dict[str, str], flow: str | None, source: str | None) -> None:
    import io

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..recipe import REDACTOR

    buf = io.StringIO()
    console = Console(
        file=buf,
        width=max(100, Console().width) if sys.stdout.isatty() else 120,
        force_terminal=sys.stdout.isatty(),
        highlight=False,
        soft_wrap=False,
    )
    order = _stage_order(flow)
    stages: dict[str, list[CheckOutcome]] = {}
    for o in outcomes:
        stages.setdefault(o.spec.stage, []).append(o)
    ranked = sorted(stages, key=lambda s: (order.get(s, (999, s))[0], s))
    if source:
        console.print(f"cai-tui doctor: {escape(source)}")
    for stage in ranked:
        num, title = order.get(stage, (0, stage))
        heading = f"{num:02d} {stage} — {title}" if num else stage
        table = Table(
            title=escape(heading), title_justify="left", show_header=False, expand=True, box=None, pad_edge=False
        )
        table.add_column("", width=1, no_wrap=True)
        table.add_column("check", style="bold", no_wrap=True, min_width=22)
        table.add_column("result", ratio=1)
        table.add_column("target", style="dim", no_wrap=True)
        for o in stages[stage]:
            r = o.result
            sym = SYMBOLS.get(r.status, "?")
            lines = [escape(r.summary)]
            if o.id in waived:
                lines.append(f"[cyan]waived: {escape(waived[o.id])}[/]")
            if r.status in ("fail", "warn", "unknown"):
                for e in r.evidence:
                    where = f"{e.source} @ {e.target}" if e.target else e.source
                    lines.append(f"[dim]evidence: {escape(e.observed)}  ({escape(where)})[/]")
                if r.fix is not None:
                    lines.append("fix " + escape(f"[{r.fix.faq_id}]") + ": " + escape(r.fix.text))
            optional = "" if o.spec.required else " [dim](optional)[/]"
            table.add_row(
                f"[{STYLES.get(r.status, '')}]{sym}[/]",
                escape(o.id) + optional,
                "\n".join(lines),
                escape(o.target_name),
            )
        console.print(table)
        console.print()
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.result.status] = counts.get(o.result.status, 0) + 1
    blocking = sum(1 for o in outcomes if o.result.status == "fail" and o.spec.required and o.id not in waived)
    parts = [f"{counts[s]} {s}" for s in ("pass", "warn", "fail", "skip", "unknown") if counts.get(s)]
    console.print(
        ", ".join(parts) + (f" — {blocking} required check(s) failed" if blocking else " — no required check failed")
    )
    sys.stdout.write(REDACTOR.redact(buf.getvalue()))
    sys.stdout.flush()
