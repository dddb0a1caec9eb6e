"""``cai-tui doctor``: run the checks of a recipe and say what is wrong, with the evidence and the fix.

Exit 0 when every required check passes, 1 when one fails or could not be judged (``unknown``: a mistyped secret
file, ``prompt`` without a terminal, a timeout) unless the recipe waives it, 2 for usage or input errors (a bad recipe
prints its problem lines) and when nothing was checked (every check skipped: it says what to give). The verdict is
:func:`cai_tui.engine.session.doctor_verdict`, the one ``--json`` carries. Results are printed as they land, in stage
order (:mod:`.doctor_output`). Checks change nothing. Heavy imports stay inside the functions so that
``cai-tui --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..engine.session import build_targets, doctor_document, doctor_verdict, waived_failures, waiver_for
from .common import hidden_prompter, load_or_report, run_closing
from .doctor_output import STYLES, SYMBOLS
from .doctor_texts import LANGS, text

if TYPE_CHECKING:
    from ..checks.base import CheckContext, CheckSpec
    from ..checks.runner import CheckOutcome
    from ..targets.base import Target

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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
    lang: str = typer.Option(
        "en",
        "--lang",
        help="Language of the report (stage titles, FAQ fixes, the summary): en or zh. --json and --hosts keep "
        "their documents as they are.",
    ),
) -> None:
    """Diagnose a set-up: Trustee, OSS, KMS, the model, the instance."""
    if lang not in LANGS:
        _err(f"cai-tui doctor: --lang {lang}: en or zh")
        raise typer.Exit(EXIT_USAGE)
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
        run_doctor(
            recipe=recipe, target=target, sysroot=sysroot, only=only, as_json=as_json, timeout=timeout, lang=lang
        )
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
    lang: str = "en",
) -> int:
    import fnmatch

    from ..checks.base import CheckContext
    from ..checks.registry import all_checks
    from ..checks.runner import run_checks, select_specs
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

    source = loaded.source if loaded is not None else None
    waivers = list(rec.waivers) if rec is not None else []
    printer = None
    if not as_json:
        from .doctor_output import LivePrinter

        selected = select_specs(specs, globs or None)
        printer = LivePrinter(
            selected,
            flow=flow,
            target_names=_target_names(selected, ctx),
            waiver=lambda cid: waiver_for(cid, waivers),
            lang=lang,
            redact=REDACTOR.redact,
        )
        printer.header(source)
    try:
        outcomes = run_closing(
            run_checks(specs, ctx, only=globs or None, timeout=timeout, on_result=printer.land if printer else None),
            targets,
        )
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    waived = waived_failures(outcomes, waivers)
    verdict = doctor_verdict(outcomes, waived)
    if printer is not None:
        printer.summary(outcomes, verdict)
    else:
        _print_json(outcomes, waived, source)
    if verdict.state == "nothing-checked":
        _err(_nothing_checked(outcomes, recipe=recipe, target=target, sysroot=sysroot, lang=lang))
    return verdict.exit_code


def _target_names(specs: list[CheckSpec], ctx: CheckContext) -> dict[str, str]:
    """check id → the name of the target it will run on ("" when it has none), as the runner names it."""
    from ..recipe import REDACTOR

    out: dict[str, str] = {}
    for s in specs:
        t: Target | None = ctx.target(s.runs_on)
        out[s.id] = REDACTOR.redact(t.name) if t is not None else ""
    return out


def _nothing_checked(
    outcomes: list[CheckOutcome], *, recipe: Path | None, target: str | None, sysroot: Path | None, lang: str
) -> str:
    """What to give when every check was skipped: the inputs that are missing, and the checks' own reasons."""
    lines = [text("nothing_head", lang, n=len(outcomes))]
    if recipe is None:
        lines.append(text("nothing_recipe", lang))
    if target is None and sysroot is None:
        lines += [text("nothing_target", lang), text("nothing_sysroot", lang), text("nothing_hosts", lang)]
    reasons = list(dict.fromkeys(o.result.summary for o in outcomes if not o.result.summary.startswith("skipped:")))
    if reasons and (recipe is not None or target is not None or sysroot is not None):  # what was given fell short
        shown = "; ".join(reasons[:4]) + ("; …" if len(reasons) > 4 else "")
        lines.append(text("nothing_why", lang, reasons=shown))
    return "\n".join(lines)


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


__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "STYLES", "SYMBOLS", "doctor_command", "run_doctor"]
