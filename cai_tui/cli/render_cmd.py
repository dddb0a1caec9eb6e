"""``cai-tui render``: print a generated file or command line, or write it (shown, diffed, confirmed, backed up).

Printing never resolves a secret (placeholders such as ``<from env:NAME>`` are shown). ``--write`` resolves them,
shows the content and the diff redacted, asks, keeps the previous file as ``PATH.bak`` and writes atomically with
the artifact's mode (0600 for cai.env). Exit 0 on success, 1 when the write is declined, 2 for input errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .common import hidden_prompter, load_or_report

EXIT_OK, EXIT_DECLINED, EXIT_USAGE = 0, 1, 2


def render_command(
    kind: str | None = typer.Argument(None, help="Artifact kind (see --list), e.g. cai-env, compose, tng-client."),
    path: Path | None = typer.Argument(None, help="With --write: where to write (default: the artifact's own path)."),
    recipe: Path | None = typer.Option(None, "--recipe", help="The recipe file."),
    write: bool = typer.Option(False, "--write", help="Write the file (secrets resolved) instead of printing it."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before writing."),
    list_kinds: bool = typer.Option(False, "--list", help="List the artifact kinds and exit."),
) -> None:
    """Print or write a generated file: cai.env, compose, TNG client, helm install, CNI conf, …"""
    raise typer.Exit(run_render(kind=kind, path=path, recipe=recipe, write=write, yes=yes, list_kinds=list_kinds))


def _err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def _list() -> int:
    from ..render import registry

    for kind in registry.all_ids():
        r = registry.get(kind)
        typer.echo(f"{kind:<16} {r.flow:<13} {r.default_path or '-':<30} {r.title}")
    return EXIT_OK


def run_render(
    *, kind: str | None, path: Path | None, recipe: Path | None, write: bool, yes: bool, list_kinds: bool
) -> int:
    if list_kinds:
        return _list()
    import difflib
    import os

    from ..recipe import REDACTOR, SecretUnavailable
    from ..recipe.yaml_io import atomic_write
    from ..render import RenderError, registry

    if not kind:
        _err("cai-tui render: name an artifact kind (cai-tui render --list shows them)")
        return EXIT_USAGE
    try:
        renderer = registry.get(kind)
    except KeyError as e:
        _err(f"cai-tui render: {e.args[0]}")
        return EXIT_USAGE
    if path is not None and not write:
        _err(f"cai-tui render: {path}: a path is only taken with --write (cai-tui render {kind} --write PATH)")
        return EXIT_USAGE
    if recipe is None:
        _err("cai-tui render: --recipe FILE is required")
        return EXIT_USAGE
    loaded = load_or_report(recipe)
    if loaded is None:
        return EXIT_USAGE
    try:
        out = renderer.render(loaded.recipe, resolve=write, prompt=hidden_prompter() if write else None)
    except (RenderError, SecretUnavailable) as e:
        _err(f"cai-tui render {kind}: {e}")
        return EXIT_USAGE
    for note in out.notes:
        _err(f"note: {note}")
    if not write:
        sys.stdout.write(REDACTOR.redact(out.text))
        return EXIT_OK

    dest_text = str(path) if path is not None else out.path
    if not dest_text:
        _err(f"cai-tui render {kind}: no default path; give one: cai-tui render {kind} --write PATH")
        return EXIT_USAGE
    dest = Path(os.path.expanduser(dest_text))
    if dest.is_dir():
        _err(f"cai-tui render: {dest} is a directory; name the file")
        return EXIT_USAGE
    old = None
    if dest.exists():
        try:
            old = dest.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            _err(f"cai-tui render: cannot read {dest}: {e.strerror}")
            return EXIT_USAGE
    if old == out.text:
        typer.echo(f"{dest} is up to date (unchanged)")
        return EXIT_OK
    typer.echo(f"--- {kind} → {dest} (mode {out.mode:04o}; secrets shown as ***)")
    typer.echo(REDACTOR.redact(out.text), nl=False)
    if old is not None:
        diff = "".join(
            difflib.unified_diff(
                REDACTOR.redact(old).splitlines(keepends=True),
                REDACTOR.redact(out.text).splitlines(keepends=True),
                fromfile=f"{dest} (current)",
                tofile=f"{dest} (new)",
            )
        )
        typer.echo(f"--- changes against the current {dest}:")
        typer.echo(diff, nl=not diff.endswith("\n"))
    if not yes:
        if not sys.stdin.isatty():
            _err("cai-tui render: not writing without confirmation; run in a terminal or add --yes")
            return EXIT_DECLINED
        if not typer.confirm(f"Write {dest}?", default=False):
            _err("not written")
            return EXIT_DECLINED
    try:
        atomic_write(dest, out.text.encode("utf-8"), mode=out.mode, backup=old is not None)
    except OSError as e:
        _err(f"cai-tui render: cannot write {dest}: {e.strerror or e}")
        return EXIT_USAGE
    backup = f"; the previous file is kept as {dest}.bak" if old is not None else ""
    typer.echo(f"wrote {dest} (mode {out.mode:04o}){backup}")
    return EXIT_OK
