"""``cai-tui deploy``: put cai.env and the compose file (or vllm-run.sh) on the instance, start the stack, watch it.

The plan (files with modes, paths with ~ expanded on the target, commands) is printed before anything is written;
secrets appear only as references. ``--dry-run`` stops there. Without ``--yes`` it asks on a terminal and refuses
(exit 2) when stdin is not one. Exit 0 deployed and healthy, 1 deployed but a container failed or timed out,
2 input error (bad recipe, missing secret, unknown target), 3 cannot reach the target, Docker or Compose.
Heavy imports stay inside the functions so that ``cai-tui --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer

from .common import hidden_prompter, load_or_report

if TYPE_CHECKING:
    from ..recipe import CaiRecipe, KataRecipe
    from ..targets.base import Target

EXIT_INPUT = 2


def deploy_command(
    recipe: Path | None = typer.Option(None, "--recipe", help="The recipe (YAML)."),
    target: str | None = typer.Option(
        None,
        "--target",
        help="Where to deploy: instance=ssh://user@host[:port] or instance=local (default: the recipe's "
        "targets.instance).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and exit; nothing is written or started."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before deploying."),
    timeout: float = typer.Option(900.0, "--timeout", help="Seconds for compose up and the healthy wait together."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable: schema cai-tui/deploy/v1 on stdout."),
    project: str | None = typer.Option(None, "--project", help="Compose project name (docker compose -p NAME)."),
    compose_cmd: str | None = typer.Option(
        None,
        "--compose-cmd",
        help="The Compose command on the target (default 'docker compose'; e.g. docker-compose for a host with "
        "only the standalone v2 binary).",
    ),
) -> None:
    """Deploy the CAI stack (and vLLM) to the instance and wait until it is healthy."""
    raise typer.Exit(
        run_deploy(
            recipe=recipe,
            target=target,
            dry_run=dry_run,
            yes=yes,
            timeout=timeout,
            as_json=as_json,
            project=project,
            compose_cmd=compose_cmd,
        )
    )


def _err(message: str) -> None:
    from ..recipe import REDACTOR

    sys.stderr.write(REDACTOR.redact(message.rstrip("\n")) + "\n")
    sys.stderr.flush()


def _say(stream: TextIO, text: str) -> None:
    from ..recipe import REDACTOR

    stream.write(REDACTOR.redact(text) + "\n")
    stream.flush()


def resolve_target(spec: str | None, rec: CaiRecipe | KataRecipe) -> Target:
    """``--target instance=URI`` (or a bare URI), else the recipe's ``targets.instance``; DeployInputError if none."""
    from ..deploy.plan import DeployInputError
    from ..targets.local import LocalTarget
    from ..targets.parse import target_from_uri

    uri: str | None
    if spec is not None:
        role, sep, rest = spec.partition("=")
        if sep and "://" not in role and ":" not in role:
            if role.strip() != "instance":
                raise DeployInputError(
                    f"--target {spec}: unknown role {role.strip()!r}; deploy runs on the instance: "
                    "--target instance=ssh://root@HOST or --target instance=local"
                )
            uri = rest.strip()
        else:
            uri = spec.strip()
    else:
        uri = getattr(rec.targets, "instance", None)
        if not uri:
            raise DeployInputError(
                "no instance to deploy to: set targets.instance in the recipe (e.g. ssh://root@203.0.113.7) or give "
                "--target instance=ssh://root@HOST (or instance=local)"
            )
    if uri != "local" and not uri.startswith("ssh://"):
        raise DeployInputError(
            f"--target {uri}: deploy writes files and runs docker on the instance; give local or ssh://user@host[:port]"
        )
    if uri == "local":
        return LocalTarget()
    try:
        return target_from_uri(uri)
    except ValueError as e:
        raise DeployInputError(str(e).splitlines()[0]) from None


def run_deploy(
    *,
    recipe: Path | None,
    target: str | None,
    dry_run: bool,
    yes: bool,
    timeout: float,
    as_json: bool,
    project: str | None,
    compose_cmd: str | None,
) -> int:
    import asyncio

    from ..deploy.plan import DeployInputError, build_plan, check_project, parse_compose_cmd

    if recipe is None:
        _err("cai-tui deploy: --recipe FILE is required")
        return EXIT_INPUT
    if not timeout > 0:
        _err(f"cai-tui deploy: --timeout must be a positive number of seconds, not {timeout:g}")
        return EXIT_INPUT
    loaded = load_or_report(recipe)
    if loaded is None:
        return EXIT_INPUT
    rec = loaded.recipe
    try:
        words = parse_compose_cmd(compose_cmd)
        check_project(project)
        build_plan(rec, compose_cmd=words, project=project)  # the flow and the renderers' needs, before any I/O
        tgt = resolve_target(target, rec)
    except DeployInputError as e:
        _err(f"cai-tui deploy: {e}")
        return EXIT_INPUT
    if not dry_run and not yes and not sys.stdin.isatty():
        _err(
            "cai-tui deploy: not deploying without confirmation: stdin is not a terminal; review the plan with "
            "--dry-run, then add --yes"
        )
        return EXIT_INPUT
    from ..deploy.execute import DeployOptions

    options = DeployOptions(timeout=timeout, compose_cmd=words, project=project)
    try:
        return asyncio.run(_deploy(tgt, rec, options, str(recipe), dry_run=dry_run, yes=yes, as_json=as_json))
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


async def _deploy(
    target: Target,
    rec: Any,
    options: Any,
    source: str,
    *,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> int:
    import asyncio

    from ..deploy.execute import execute, prepare
    from ..deploy.plan import DeployInputError
    from ..deploy.report import plan_lines, result_lines
    from ..deploy.watch import engine_for

    out = sys.stderr if as_json else sys.stdout
    engine = engine_for(target)
    try:
        try:
            report = await prepare(target, rec, options, engine, recipe_source=source)
        except DeployInputError as e:
            _err(f"cai-tui deploy: {e}")
            return EXIT_INPUT
        for line in plan_lines(report, timeout=options.timeout):
            _say(out, line)
        if report.result == "unreachable":
            faq = f" (FAQ: {report.faq_id})" if report.faq_id else ""
            _err(f"cai-tui deploy: {report.message}{faq}")
            report.dry_run = dry_run
            return _finish(report, as_json)
        if dry_run:
            report.dry_run = True
            _say(out, "dry run: nothing written, nothing started")
            return _finish(report, as_json)
        if not yes:
            confirmed = await asyncio.to_thread(typer.confirm, f"Deploy to {target.name}?", default=False, err=True)
            if not confirmed:
                report.result, report.message = "declined", "not confirmed"
                _err("cai-tui deploy: not deployed")
                return _finish(report, as_json)
        from .events_view import EventsView

        with EventsView(out="stderr" if as_json else "stdout") as view:  # compose's lines as [target] …, notes as → …
            report = await execute(target, rec, report, options, engine, prompt=hidden_prompter(), on_event=view)
        for line in result_lines(report):
            _say(out, line)
        if report.result in ("unreachable", "input_error"):
            faq = f" (FAQ: {report.faq_id})" if report.faq_id else ""
            _err(f"cai-tui deploy: {report.message}{faq}")
        return _finish(report, as_json)
    finally:
        await engine.close()
        try:
            await target.close()
        except Exception:  # a failing close must not hide the result
            pass


def _finish(report: Any, as_json: bool) -> int:
    if as_json:
        import json

        from ..deploy.report import document
        from ..recipe import REDACTOR

        text = json.dumps(document(report), indent=2, ensure_ascii=False)
        sys.stdout.write(REDACTOR.redact(text) + "\n")
        sys.stdout.flush()
    return int(report.exit_code)
