"""``cai-tui doctor``: run the checks of a recipe and say what is wrong, with the evidence and the fix.

Exit 0 when no required check fails, 1 when one does (a waived failure does not count), 2 for usage or input errors
(a bad recipe prints its problem lines). Checks change nothing. Heavy imports stay inside the functions so that
``cai-tui --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from .common import hidden_prompter, load_or_report, run_closing

if TYPE_CHECKING:
    from ..checks.base import CheckSpec
    from ..checks.runner import CheckOutcome
    from ..recipe.model import CaiRecipe, KataRecipe
    from ..targets.base import Target

SCHEMA = "cai-tui/doctor/v1"
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
) -> None:
    """Diagnose a set-up: Trustee, OSS, KMS, the model, the instance."""
    raise typer.Exit(
        run_doctor(recipe=recipe, target=target, sysroot=sysroot, only=only, as_json=as_json, timeout=timeout)
    )


def _err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def role_for(flow: str | None, uri: str) -> str:
    """The role ``--target`` stands for: the CAI instance; the kata host (or its guest for a container URI)."""
    if flow == "kata-virtcca":
        return "guest" if uri.startswith(("docker://", "ctr://")) else "host"
    return "instance"


def _recipe_targets(recipe: CaiRecipe | KataRecipe | None) -> dict[str, str]:
    if recipe is None:
        return {}
    out: dict[str, str] = {}
    for role, uri in recipe.targets.model_dump().items():
        if uri and role != "workstation":
            out[role] = str(uri)
    return out


def _waiver_for(check_id: str, waivers: list[Any]) -> str | None:
    import fnmatch

    for w in waivers:
        if fnmatch.fnmatchcase(check_id, w.check):
            return str(w.reason)
    return None


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


def build_targets(
    rec: CaiRecipe | KataRecipe | None, flow: str | None, target: str | None, sysroot: Path | None
) -> dict[str, Target]:
    """The role → Target map doctor (and bundle) use: the recipe's targets, ``--target`` standing for the flow's
    main role (see :func:`role_for`), ``--sysroot`` re-rooting that role's file reads. ValueError for a bad URI."""
    from ..targets.local import LocalTarget
    from ..targets.parse import target_from_uri

    local = LocalTarget()
    targets: dict[str, Target] = {"workstation": local, "local": local}
    for role, uri in _recipe_targets(rec).items():
        targets[role] = local if uri == "local" else target_from_uri(uri)
    role = role_for(flow, target or "")
    if target is not None:
        targets[role] = local if target.strip() == "local" else target_from_uri(target)
    if sysroot is not None:
        from ..targets.capture import target_for_sysroot

        if not sysroot.is_dir():
            raise ValueError(f"--sysroot {sysroot}: not a directory")
        inner = targets.get(role) if target is not None else None
        targets[role] = target_for_sysroot(sysroot, inner=inner)
    return targets


# --------------------------------------------------------------------------------------------- output


def _outcome_doc(o: CheckOutcome, waived: dict[str, str]) -> dict[str, Any]:
    r = o.result
    doc: dict[str, Any] = {
        "id": o.id,
        "title": o.spec.title,
        "stage": o.spec.stage,
        "status": r.status,
        "required": o.spec.required,
        "summary": r.summary,
        "evidence": [{"observed": e.observed, "source": e.source, "target": e.target, "at": e.at} for e in r.evidence],
        "fix": {"faq_id": r.fix.faq_id, "text": r.fix.text} if r.fix is not None else None,
        "duration_ms": o.duration_ms,
        "target": o.target_name,
    }
    if o.id in waived:
        doc["waived"] = waived[o.id]
    return doc


def doctor_document(outcomes: list[CheckOutcome], waived: dict[str, str], source: str | None) -> dict[str, Any]:
    """The ``cai-tui/doctor/v1`` document of a run (what ``doctor --json`` prints)."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.result.status] = counts.get(o.result.status, 0) + 1
    return {
        "schema": SCHEMA,
        "recipe": source,
        "counts": counts,
        "checks": [_outcome_doc(o, waived) for o in outcomes],
    }


def waived_failures(outcomes: list[CheckOutcome], waivers: list[Any]) -> dict[str, str]:
    """check id → waiver reason, for the failed checks a recipe waiver covers."""
    return {o.id: w for o in outcomes if o.result.status == "fail" and (w := _waiver_for(o.id, waivers))}


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
