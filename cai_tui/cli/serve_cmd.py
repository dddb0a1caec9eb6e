"""``cai-tui serve``: the wizard in a browser, through textual-serve (every browser tab runs its own wizard process).

textual-serve has no authentication: whoever reaches the port drives the wizard, and the wizard runs commands. So it
binds loopback by default and refuses any other address unless ``--allow-remote``; the way to use it from another
machine is an SSH tunnel (``ssh -L 8000:127.0.0.1:8000 host``). textual-serve is imported only here, when serving
(the ``web`` extra). Exit 0 after Ctrl-C, 2 for bad input, a missing extra or a port that cannot be bound.
"""

from __future__ import annotations

import ipaddress
import shlex
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import typer

EXIT_INPUT = 2
WILDCARDS = ("0.0.0.0", "::", "")
SHUTDOWN_TIMEOUT_S = 10.0  # how long open tabs get to close their wizard (and its lab) on Ctrl-C


def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless --allow-remote)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
    allow_remote: bool = typer.Option(
        False,
        "--allow-remote",
        help="Listen on a non-loopback address. textual-serve has NO authentication: anyone who reaches the port "
        "drives the wizard. Prefer an SSH tunnel.",
    ),
    public_url: str | None = typer.Option(
        None,
        "--public-url",
        help="The address browsers use for this server, when it differs from http://HOST:PORT (a proxy, a tunnel).",
    ),
    recipe: Path | None = typer.Option(None, "--recipe", help="Open each wizard on this recipe file."),
    lang: str = typer.Option("en", "--lang", help="Interface language: en or zh."),
    lab: bool = typer.Option(False, "--lab", help="Each browser tab starts the embedded lab, as `cai-tui --lab`."),
) -> None:
    """Serve the wizard to a web browser (textual-serve; loopback only unless --allow-remote)."""
    raise typer.Exit(
        run_serve(
            host=host,
            port=port,
            allow_remote=allow_remote,
            public_url=public_url,
            recipe=recipe,
            lang=lang,
            lab=lab,
        )
    )


def _err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def tunnel_hint(port: int) -> str:
    p = port or 8000
    return f"ssh -L {p}:127.0.0.1:{p} <this host>"


def is_loopback(host: str) -> bool | None:
    """True when every address ``host`` names is a loopback one; None when it names none (cannot be resolved)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses)


def wizard_command(*, recipe: Path | None, lang: str, lab: bool) -> str:
    """The shell command textual-serve runs for each browser tab: this interpreter, this package, the same options."""
    argv = [sys.executable, "-m", "cai_tui.cli.main"]
    if lab:
        argv.append("--lab")
    if recipe is not None:
        argv += ["--recipe", str(recipe)]
    argv += ["--lang", lang]
    return shlex.join(argv)


def url_for(host: str, port: int) -> str:
    name = host.strip("[]")
    if name in WILDCARDS:
        name = socket.gethostname()
    if ":" in name:
        name = f"[{name}]"
    return f"http://{name}:{port}"


def run_serve(
    *,
    host: str,
    port: int,
    allow_remote: bool,
    public_url: str | None,
    recipe: Path | None,
    lang: str,
    lab: bool,
) -> int:
    if lang not in ("en", "zh"):
        _err(f"--lang: {lang!r} is not a language of cai-tui; use en or zh")
        return EXIT_INPUT
    loopback = is_loopback(host)
    if loopback is None:
        _err(f"--host {host}: not an address and not a name this machine can resolve; use 127.0.0.1 (the default)")
        return EXIT_INPUT
    if not loopback and not allow_remote:
        _err(
            f"--host {host}: not a loopback address, refused. textual-serve has no authentication: anyone who can "
            "reach that address could drive the wizard and the commands it runs.\n"
            f"Keep the default --host 127.0.0.1 and reach it through SSH from your machine: {tunnel_hint(port)}, "
            f"then open http://127.0.0.1:{port or 8000} there.\n"
            "To listen on that address anyway (a trusted network only), add --allow-remote."
        )
        return EXIT_INPUT
    if recipe is not None:
        from .common import load_or_report

        if load_or_report(recipe) is None:
            return EXIT_INPUT
        recipe = recipe.expanduser().resolve()  # each wizard process starts in the server's directory anyway
    try:
        import textual_serve.server  # noqa: F401  (the web extra)
    except ImportError:
        _err("browser mode needs textual-serve, which is not installed: pip install 'cai-tui[web]'")
        return EXIT_INPUT
    if not loopback:
        _err(
            "WARNING: --allow-remote: serving the wizard WITHOUT AUTHENTICATION on "
            f"{host}:{port}. Anyone who reaches this port controls the wizard and what it runs on this machine. "
            f"Prefer the default loopback address and an SSH tunnel: {tunnel_hint(port)}"
        )
    import asyncio

    command = wizard_command(recipe=recipe, lang=lang, lab=lab)
    try:
        return asyncio.run(_serve(command, host=host, port=port, public_url=public_url))
    except KeyboardInterrupt:  # a second Ctrl-C while the tabs close
        _err("interrupted")
        return 130


def _make_server(command: str, host: str, port: int) -> Any:
    import asyncio

    from textual_serve.server import Server

    class QuietServer(Server):  # type: ignore[misc]
        """textual-serve's server without its banner (we print the address once the port is bound), which closes
        the open tabs' wizards at once when it stops instead of waiting for the browsers to go."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.tabs: set[asyncio.Task[Any]] = set()

        async def on_startup(self, app: Any) -> None:
            return None

        async def handle_websocket(self, request: Any) -> Any:
            task = asyncio.current_task()
            if task is not None:
                self.tabs.add(task)
            try:
                return await super().handle_websocket(request)
            finally:
                self.tabs.discard(task)  # type: ignore[arg-type]

        async def on_shutdown(self, app: Any) -> None:
            # textual-serve's handler takes a cancel as "the tab went": it sends the wizard quit and waits for it
            for task in list(self.tabs):
                task.cancel()

    return QuietServer(command, host=host, port=port, title="cai-tui", templates_path=str(offline_templates()))


def offline_templates() -> Path:
    """textual-serve's page template without its web-font link (fonts.googleapis.com): the page then asks nothing of
    any host but this server, and the terminal falls back to the browser's monospace font. Derived from the
    installed textual-serve at each start (written to the cache folder), so it follows that package's version."""
    import re

    import textual_serve

    from ..paths import cache_dir
    from ..recipe.yaml_io import atomic_write

    source = Path(textual_serve.__file__).parent / "templates" / "app_index.html"
    page = re.sub(r"<link[^>]*https?://[^>]*>\s*", "", source.read_text(encoding="utf-8"))
    folder = cache_dir() / "serve-templates"
    target = folder / "app_index.html"
    if not target.is_file() or target.read_text(encoding="utf-8") != page:
        atomic_write(target, page.encode("utf-8"), mode=0o644)
    return folder


async def _serve(command: str, *, host: str, port: int, public_url: str | None) -> int:
    import asyncio
    import logging

    from aiohttp import web

    server = _make_server(command, host, port)
    server.initialize_logging()
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    runner = web.AppRunner(await server._make_app(), handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host or None, port)
        try:
            await site.start()
        except OSError as e:
            _err(f"--port {port}: cannot listen on {host}:{port}: {e.strerror or e}. {_port_fix(e, port)}")
            return EXIT_INPUT
        bound = port or int(runner.addresses[0][1])
        server.port = bound
        server.public_url = (public_url or url_for(host, bound)).rstrip("/")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"cai-tui serve: the wizard is at {server.public_url}  (Ctrl-C stops)", flush=True)
        if is_loopback(host):
            print(f"  from another machine: {tunnel_hint(bound)}, then open http://127.0.0.1:{bound}", flush=True)
        await stop.wait()
        print("cai-tui serve: stopping (closing the open wizards)", flush=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        return 0
    finally:
        await runner.cleanup()


def _port_fix(e: OSError, port: int) -> str:
    import errno

    if e.errno == errno.EADDRINUSE:
        return "Another program uses that port: choose another with --port (0 picks a free one)."
    if e.errno == errno.EACCES:
        return "Ports below 1024 need privileges: choose --port 8000 or above."
    if e.errno == errno.EADDRNOTAVAIL:
        return "That address is not one of this machine's: check --host."
    return "Choose another --port or --host."
