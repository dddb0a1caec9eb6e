"""``cai-tui tng launch|stop``: the TNG client's HTTP CONNECT proxy on this machine (CAI-6.2), from the tng-sdk wheel."""

from __future__ import annotations

import typer

tng_app = typer.Typer(help="The TNG client on this machine (CAI-6.2).", no_args_is_help=True)


def _err(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


@tng_app.command("launch")
def launch(
    recipe: str = typer.Option(..., "--recipe", help="The recipe (trustee.url, trustee.policy, tng.proxy_*)."),
    foreground: bool = typer.Option(False, "--foreground", help="Stay attached (as the document's docker run does)."),
    timeout: float = typer.Option(30.0, "--timeout", min=1.0, help="Seconds to wait for the proxy to listen."),
) -> None:
    """Start the TNG client (tng launch with the recipe's config) and wait until its proxy listens."""
    import json
    import subprocess

    from ..actions import tng_client
    from ..recipe.model import CaiRecipe
    from ..render.base import RenderError
    from .common import load_or_report

    loaded = load_or_report(recipe)
    if loaded is None:
        raise typer.Exit(2)
    if not isinstance(loaded.recipe, CaiRecipe):
        raise _err(f"tng launch: {recipe} is a {loaded.recipe.flow} recipe; the TNG client belongs to the cai flow", 2)
    t = loaded.recipe.answers.tng
    binary = tng_client.find_binary()
    if binary is None:
        raise _err(f"tng launch: the tng binary is not installed here; {tng_client.INSTALL_HINT}")
    current = tng_client.running()
    if current is not None and not foreground:
        if (current.host, current.port) == (str(t.proxy_host), int(t.proxy_port)):
            typer.echo(f"the TNG client already runs (pid {current.pid}), its proxy on {current.host}:{current.port}")
            raise typer.Exit(0)
        raise _err(
            f"tng launch: a TNG client started earlier runs on {current.host}:{current.port} (pid {current.pid}); "
            "stop it first: cai-tui tng stop"
        )
    try:
        config, version = tng_client.config_for(loaded.recipe, tng_client.binary_version(binary))
    except RenderError as e:
        raise _err(f"tng launch: {e}", 2) from None
    proxy = f"http://{t.proxy_host}:{t.proxy_port}"
    if foreground:
        typer.echo(f"starting {binary} launch (config for TNG {version}); its proxy will be {proxy}; Ctrl-C stops it")
        argv = [binary, "launch", "--config-content", json.dumps(config, separators=(",", ":"))]
        try:
            rc = subprocess.run(argv, stdin=subprocess.DEVNULL, check=False).returncode
        except KeyboardInterrupt:
            rc = 130
        raise typer.Exit(rc)
    try:
        info, version = tng_client.launch(loaded.recipe, binary, timeout=timeout)
    except tng_client.TngError as e:
        raise _err(f"tng launch: {e}") from None
    except OSError as e:
        raise _err(f"tng launch: cannot start {binary}: {e.strerror}") from None
    typer.echo(
        f"the TNG client runs (pid {info.pid}, config for TNG {version}), its proxy listens on {proxy}; "
        f"log: {info.log}. Point clients at it: export all_proxy={proxy} (CAI-6.3); stop it: cai-tui tng stop"
    )


@tng_app.command("stop")
def stop() -> None:
    """Stop the TNG client that `cai-tui tng launch` started."""
    from ..actions import tng_client

    info = tng_client.stop()
    if info is None:
        typer.echo("no TNG client started by cai-tui runs (nothing to stop)")
        raise typer.Exit(0)
    typer.echo(f"stopped the TNG client (pid {info.pid}, proxy {info.host}:{info.port})")


@tng_app.command("validate")
def validate(
    file: str = typer.Argument(..., help="A TNG configuration (JSON), as `tng launch --config-file` reads it."),
    tng_version: str = typer.Option(
        None, "--tng-version", help="The TNG release to judge for (default: the installed tng's, else 2.8.0)."
    ),
    judge: str = typer.Option(
        "auto", "--judge", help="auto: the tng binary when it is that release, else the models; binary; models."
    ),
) -> None:
    """Say whether TNG accepts a configuration: exit 0 valid, 2 invalid (each problem with its JSON path and fix)."""
    import json
    from pathlib import Path

    from ..render.base import RenderError
    from ..tng.judge import judge as judge_config

    if judge not in ("auto", "binary", "models"):
        raise _err(f"tng validate: --judge {judge!r}: use auto, binary or models", 2)
    path = Path(file)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise _err(f"tng validate: {file}: no such file", 2) from None
    except (OSError, UnicodeDecodeError) as e:
        raise _err(f"tng validate: {file}: cannot read it ({getattr(e, 'strerror', None) or e})", 2) from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise _err(
            f"tng validate: {file}:{e.lineno}:{e.colno}: not JSON ({e.msg}); TNG reads a JSON document", 2
        ) from None
    try:
        verdict = judge_config(config, tng_version, use_binary=judge != "models")
    except RenderError as e:
        raise _err(f"tng validate: {e}", 2) from None
    except OSError as e:
        raise _err(f"tng validate: the tng binary could not run: {e}", 1) from None
    if judge == "binary" and verdict.judge != "binary":
        for note in verdict.notes:
            typer.echo(f"  {note}", err=True)
        raise _err(f"tng validate: the tng binary cannot judge TNG {verdict.version} here (see above)", 1)
    if verdict.valid:
        typer.echo(f"{file}: valid for TNG {verdict.version} (judged by {verdict.judged_by})")
        for note in verdict.notes:
            typer.echo(f"  note: {note}")
        raise typer.Exit(0)
    typer.echo(f"{file}: invalid for TNG {verdict.version} (judged by {verdict.judged_by})", err=True)
    for p in verdict.problems:
        where = p.path or "(the document)"
        typer.echo(f"  {where}: {p.message}" + (f"\n    fix: {p.fix}" if p.fix else ""), err=True)
    for note in verdict.notes:
        typer.echo(f"  note: {note}", err=True)
    raise typer.Exit(2)
