"""``cai-tui tools …``: the workstation's prerequisites of model encryption — gocryptfs (CAI-1.3), the key file (CAI-1.4)."""

from __future__ import annotations

import typer

tools_app = typer.Typer(help="Workstation tools for model encryption (gocryptfs, the key file).", no_args_is_help=True)


def _err(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _installed() -> tuple[str, str, tuple[int, int, int] | None] | None:
    """(path, first line of ``gocryptfs -version``, version) of the gocryptfs on PATH; None when there is none."""
    import shutil
    import subprocess

    from ..actions.gocryptfs_tool import parse_version

    path = shutil.which("gocryptfs")
    if path is None:
        return None
    try:
        res = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return path, f"cannot run it: {e}", None
    out = (res.stdout + "\n" + res.stderr).strip()
    return path, (out.splitlines() or ["(no output)"])[0], parse_version(out)


def _report(found: tuple[str, str, tuple[int, int, int] | None], prefix: str) -> int:
    from ..actions.gocryptfs_tool import judge

    path, line, version = found
    typer.echo(f"{prefix}{path}: {line}")
    status, words = judge(version)
    if status == "fail":
        typer.echo(f"{words}; install v2.4.0 (see below) or set model.gocryptfs_engine to native", err=True)
        return 1
    typer.echo(words if status == "pass" else f"note: {words}")
    if status == "pass":
        from ..actions.gocryptfs_tool import FORMAT_NOTE

        typer.echo(f"this instance supports the v2.4.0 default format: {FORMAT_NOTE}")
    return 0


@tools_app.command("install-gocryptfs")
def install_gocryptfs(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the package manager's commands; run nothing."),
) -> None:
    """Install gocryptfs (and FUSE) through the system's package manager, for the fuse engine (CAI-1.3)."""
    import shutil
    import subprocess

    from ..actions.gocryptfs_tool import DOCUMENTED_INSTALL, install_commands, os_release, package_manager

    found = _installed()
    if found is not None:
        raise typer.Exit(_report(found, "already installed: "))
    release = os_release()
    manager = package_manager(release)
    name = release.get("PRETTY_NAME") or release.get("ID") or "this system (no /etc/os-release)"
    if manager is None:
        raise _err(
            f"install-gocryptfs: no known package manager for {name}; install the document's static binary: "
            f"{DOCUMENTED_INSTALL}"
        )
    commands = install_commands(manager)
    if commands[0][0] == "sudo" and shutil.which("sudo") is None:
        raise _err(f"install-gocryptfs: installing packages needs root, and sudo is missing; run as root: {manager} …")
    import shlex

    for argv in commands:
        typer.echo(f"$ {shlex.join(argv)}")
        if dry_run:
            continue
        try:
            rc = subprocess.run(argv, check=False).returncode
        except OSError as e:
            raise _err(f"install-gocryptfs: cannot run {argv[0]}: {e.strerror}") from None
        if rc != 0:
            raise _err(
                f"install-gocryptfs: `{shlex.join(argv)}` failed (exit {rc}); {name} may not package gocryptfs: "
                f"install the document's static v2.4.0 binary: {DOCUMENTED_INSTALL}"
            )
    if dry_run:
        raise typer.Exit(0)
    found = _installed()
    if found is None:
        raise _err(f"install-gocryptfs: {manager} finished but gocryptfs is not on PATH; install: {DOCUMENTED_INSTALL}")
    raise typer.Exit(_report(found, "installed: "))


@tools_app.command("key-file")
def key_file(
    recipe: str = typer.Option(..., "--recipe", help="The recipe naming the key (model.password or model.sam.key)."),
) -> None:
    """Create the model's key file when the recipe points at a file that does not exist yet (CAI-1.4).

    A fresh random password (32 characters, one line), mode 0600; an existing file is never overwritten. The password
    is never printed."""
    from pathlib import Path

    from ..actions.key_file import create, inspect, key_ref
    from ..recipe.model import CaiRecipe
    from .common import load_or_report

    loaded = load_or_report(recipe)
    if loaded is None:
        raise typer.Exit(2)
    if not isinstance(loaded.recipe, CaiRecipe):
        raise _err(f"key-file: {recipe} is a {loaded.recipe.flow} recipe; the model key belongs to the cai flow", 2)
    key = key_ref(loaded.recipe.answers)
    if key.ref is None:
        raise _err(
            f"key-file: {key.field} is not set; set it to file:~/cachefs-password (or env:NAME, prompt) in {recipe}", 2
        )
    path = key.path
    if path is None:
        typer.echo(f"{key.field} is {key.ref}: nothing to write (the key comes from there at run time)")
        raise typer.Exit(0)
    state, words = inspect(path)
    if state == "ok":
        typer.echo(f"already there: {words} (kept as it is)")
        raise typer.Exit(0)
    if state != "absent":
        raise _err(f"key-file: {key.field}: {words} (the file is kept; fix it or point {key.field} elsewhere)")
    try:
        n = create(Path(path))
    except FileExistsError:
        raise _err(f"key-file: {path} appeared while writing; it is kept as it is, run again to check it") from None
    except OSError as e:
        raise _err(f"key-file: cannot write {path}: {e.strerror}") from None
    typer.echo(
        f"wrote a new random {key.method} key ({n} characters, one line) to {path} (mode 0600); it is the model's key: "
        "keep it, and store the same value in KMS (CAI-2.6)"
    )
