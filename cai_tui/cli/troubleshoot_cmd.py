"""``cai-tui troubleshoot``: the CAI stack's failing containers, the FAQ fix that applies and the line that proves it.

Exit 0 when nothing fails, 1 when a container fails (or no CAI container exists), 2 for input errors (a bad recipe,
target, project or service), 3 when the Docker engine cannot be asked. Heavy imports stay inside the functions so
that ``cai-tui --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from .common import load_or_report, run_closing

if TYPE_CHECKING:
    from ..targets.base import Target

EXIT_USAGE, EXIT_ENGINE = 2, 3
ROLES = ("workstation", "local", "instance", "client", "host", "guest")


def troubleshoot_command(
    recipe: Path | None = typer.Option(None, "--recipe", help="The recipe: its instance target, secrets, checks."),
    target: list[str] = typer.Option(
        [],
        "--target",
        help="ROLE=URI (e.g. instance=ssh://root@host); a bare URI stands for the instance. Repeatable.",
    ),
    project: str | None = typer.Option(
        None, "--project", help="The compose project (default: cai-docker, else the one holding the CAI services)."
    ),
    service: list[str] = typer.Option([], "--service", help="Only this compose service (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable: schema cai-tui/troubleshoot/v1."),
    lang: str = typer.Option("en", "--lang", help="Language of causes and fixes: en or zh."),
    tail: int = typer.Option(300, "--tail", help="Log lines read per container."),
    no_confirm: bool = typer.Option(False, "--no-confirm", help="Do not run the related doctor checks."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds per Docker call and per check."),
) -> None:
    """Find the failing CAI containers and the known fix, with the log line that proves it."""
    raise typer.Exit(
        run_troubleshoot(
            recipe=recipe,
            targets=list(target or []),
            project=project,
            services=list(service or []),
            as_json=as_json,
            lang=lang,
            tail=tail,
            confirm=not no_confirm,
            timeout=timeout,
        )
    )


def _err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def parse_target_args(values: list[str], flow: str | None) -> list[tuple[str, str]]:
    """``ROLE=URI`` (or a bare URI for the flow's main role) → (role, uri); ValueError naming the bad one."""
    from ..engine.session import role_for

    out: list[tuple[str, str]] = []
    for v in values:
        role, sep, uri = v.partition("=")
        if sep and "://" not in role and ":" not in role:
            role, uri = role.strip(), uri.strip()
            if role not in ROLES:
                raise ValueError(f"--target {v}: unknown role {role!r}; roles: {', '.join(ROLES)}")
        else:
            uri = v.strip()
            role = role_for(flow, uri)
        if not uri:
            raise ValueError(f"--target {v}: no URI after {role}= (local, ssh://user@host[:port], docker://NAME)")
        out.append((role, uri))
    return out


def _targets(rec, flow: str | None, args: list[str]) -> dict[str, Target]:  # type: ignore[no-untyped-def]
    from ..engine.session import build_targets, with_overrides

    return with_overrides(build_targets(rec, flow, None, None), parse_target_args(args, flow))


def run_troubleshoot(
    *,
    recipe: Path | None,
    targets: list[str],
    project: str | None,
    services: list[str],
    as_json: bool,
    lang: str,
    tail: int,
    confirm: bool,
    timeout: float,
) -> int:

    from ..recipe import REDACTOR
    from ..troubleshoot import InputError, TroubleshootError, TroubleshootOptions, troubleshoot

    name = "cai-tui troubleshoot"
    try:  # the options are checked once, here, before the recipe is read (the same check for every caller)
        opts = TroubleshootOptions(
            project=project, services=services, lang=lang, tail=tail, confirm=confirm, timeout=timeout
        )
    except InputError as e:
        _err(f"{name}: {e}")
        return EXIT_USAGE
    loaded = None
    if recipe is not None:
        loaded = load_or_report(recipe)
        if loaded is None:
            return EXIT_USAGE
    rec = loaded.recipe if loaded is not None else None
    flow = rec.flow if rec is not None else None
    try:
        built = _targets(rec, flow, targets)
    except ValueError as e:
        _err(f"{name}: {e}")
        return EXIT_USAGE
    opts.loaded, opts.targets = loaded, built

    try:
        report = run_closing(troubleshoot(opts), built)
    except TroubleshootError as e:
        _err(f"{name}: {REDACTOR.redact(str(e))}")
        return EXIT_ENGINE if e.exit_code == EXIT_ENGINE else EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    text = report.to_json() + "\n" if as_json else report.to_text()
    sys.stdout.write(REDACTOR.redact(text))
    sys.stdout.flush()
    return report.exit_code
