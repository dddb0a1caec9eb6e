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
