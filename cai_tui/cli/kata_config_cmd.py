"""``cai-tui kata config FILE --set KEY=VALUE… / --restore (KATA-1.8)``. Imports of the core stay inside the commands (``--help`` must stay fast).

Exit codes: 0 done (the diff shown, written, restored, or nothing to do); 1 a failed write or restore; 2 bad input
(file, key, value, recipe).
"""

from __future__ import annotations

from typing import Any

import typer


def _view() -> Any:
    from .events_view import EventsView

    return EventsView(out="stdout")


def _target(file: str | None, recipe: str | None, view: Any) -> tuple[str, Any]:
    """(the file to edit, the loaded recipe or None)."""
    from ..events import note
    from ..kata.config_edit import ConfigEditError
    from ..kata.config_find import ConfigNotFound, find_config

    loaded = None
    if recipe is not None:
        from .common import load_or_report

        loaded = load_or_report(recipe)
        if loaded is None:
            raise typer.Exit(2)
        if loaded.recipe.flow != "kata-virtcca":
            raise ConfigEditError(f"{recipe}: a recipe of the {loaded.recipe.flow} flow; give a kata-virtcca recipe")
        answers = loaded.recipe.answers
        if file is None:
            try:
                found = find_config(answers.kata.config_path)
            except ConfigNotFound as e:
                raise ConfigEditError(str(e)) from None
            view(note(f"kata configuration: {found.path} ({found.why})"))
            for n in found.notes:
                view(note(n, level="warn"))
            return found.path, loaded
    if file is None:
        raise ConfigEditError("name the configuration file (FILE) or give --recipe R (its kata.config_path)")
    return file, loaded


def config(
    file: str | None = typer.Argument(
        None, help="The kata configuration.toml; default with --recipe: kata.config_path, else the file in effect."
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="KEY=VALUE (repeatable). KEY bare (guest_hook_path) when one table has it, else by table path "
        "(hypervisor.qemu.default_memory). Strings are quoted, integers and booleans written as TOML.",
    ),
    write: bool = typer.Option(False, "--write", help="Write the change (atomically, the original kept as FILE.bak)."),
    restore: bool = typer.Option(False, "--restore", help="Put FILE.bak back, byte for byte (the undo)."),
    force: bool = typer.Option(False, "--force", help="With --restore: also without a record, or over later edits."),
    recipe: str | None = typer.Option(
        None, "--recipe", help="Kata recipe: its kata.config_path, and guest_hook_path=kata.guest_hook_path by default."
    ),
) -> None:
    """Set keys of kata's configuration.toml in place (comments, order, CRLF kept): shows the unified diff;
    --write writes it and keeps FILE.bak; --restore puts FILE.bak back. A second run changes nothing."""
    from ..events import line as line_event
    from ..events import note
    from ..kata import config_edit as ce
    from ..kata import config_write as cw

    with _view() as view:
        try:
            path, loaded = _target(file, recipe, view)
            if restore:
                if set_ or write:
                    raise ce.ConfigEditError("--restore takes no --set or --write")
                done = cw.restore(path, force=force)
                for d in done.diff:
                    view(line_event(d))
                view(note(done.message))
                return
            settings = [ce.parse_setting(s) for s in set_]
            if not settings and loaded is not None:
                hook = loaded.recipe.answers.kata.guest_hook_path.rstrip("/") or "/"
                settings = [("guest_hook_path", hook)]
            if not settings:
                raise ce.ConfigEditError("nothing to set: give --set KEY=VALUE (or --restore)")
            old, text = ce.read_config(path)
            result = ce.edit(text, settings, path)
            for c in result.changes:
                was = f"was {c.before.strip()!r}" if c.before is not None else "added under its table's header"
                view(note(f"{c.path}: line {c.line}: {c.after.strip()} ({was})"))
            if not result.changed:
                view(note(f"{path} already has {', '.join(k for k, _ in settings)} as asked: nothing changed"))
                return
            for d in ce.unified_diff(result.old, result.new, path):
                view(line_event(d))
            if not write:
                view(note("not written: add --write to write it (the original kept as FILE.bak)"))
                return
            bak = cw.write(path, old, result.new)
            view(note(f"wrote {path} (the original is {bak}; undo: cai-tui kata config {path} --restore)"))
        except ce.ConfigEditError as e:
            view(note(e.message, level="error"))
            raise typer.Exit(e.exit_code) from None
        except Exception as e:  # the state record, an OS error: a message, never a traceback
            from ..kata.state import StateError

            if not isinstance(e, (StateError, OSError)):
                raise
            view(note(str(e), level="error"))
            raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``cai-tui kata``."""
    app.command("config")(config)
