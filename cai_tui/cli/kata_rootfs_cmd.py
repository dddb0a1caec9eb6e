"""``cai-tui kata rootfs grow|mount|install-tools|enter|install-driver|add-hook|unmount|undo --recipe R [--plan]``
(KATA-1.1–1.7). Imports of the core stay inside the commands (``--help`` must stay fast).

Each command prints its plan (the exact commands) first; ``--plan`` stops there. Exit codes: 0 done (or nothing to
do), 1 failed or refused, 2 bad input (recipe, image), 3 manual (the step cannot run here: the command for a person
is printed as ``manual: run this yourself: …``), 130 interrupted (Ctrl-C/SIGTERM; every mount made by the run is
undone first).
"""

from __future__ import annotations

import sys
from typing import Any

import typer

EXIT_MANUAL = 3
EXIT_INTERRUPTED = 130

_HELP = {
    "grow": "Grow rootfs.img by rootfs.grow_gib (KATA-1.3): backup IMAGE.bak, qemu-img resize, e2fsck -f, resize2fs.",
    "mount": "Mount rootfs.img on rootfs.mount_dir (loop or fuse2fs) with sys, proc, tmp, dev, dev/pts (KATA-1.1/1.4).",
    "install-tools": "dnf --installroot the rootfs.packages into the mounted image (KATA-1.1).",
    "enter": "Check that the chroot works (/bin/sh -c 'echo ok'); a shell: chroot DIR /bin/bash (KATA-1.4).",
    "install-driver": "Run the NVIDIA .run installer in the chroot against /home/kernel (KATA-1.5).",
    "add-hook": "Write the OCI prestart hook at <mount_dir><driver.hook_path>, mode 0755 (KATA-1.6).",
    "unmount": "Unmount what mount recorded, last first (KATA-1.7).",
    "undo": "Unmount anything recorded and restore rootfs.img from IMAGE.bak when grow made it.",
}


def _say(text: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text.rstrip("\n") + "\n")
    stream.flush()


def _load(recipe: str) -> Any:
    from ..recipe import RecipeError, load_recipe

    try:
        loaded = load_recipe(recipe)
    except RecipeError as exc:
        _say(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if loaded.recipe.flow != "kata-virtcca":
        _say(f"error: {recipe}: flow is {loaded.recipe.flow!r}; the rootfs steps belong to kata-virtcca", err=True)
        raise typer.Exit(2)
    return loaded


def run_step(step: str, recipe: str, plan_only: bool, method: str) -> None:
    from ..events import Cancelled, CancelToken
    from ..kata import rootfs_steps
    from ..kata.rootfs_run import RootfsError
    from ..kata.state import StateError
    from .events_view import EventsView, cancel_on_signals

    loaded = _load(recipe)
    a = loaded.recipe.answers
    try:
        p = rootfs_steps.plan(step, a, method=method)
    except (RootfsError, StateError) as exc:
        _say(f"error: {exc}", err=True)
        raise typer.Exit(getattr(exc, "exit_code", 1)) from None
    out = sys.stderr if not plan_only else sys.stdout
    out.write(f"plan of `cai-tui kata rootfs {step}`:\n")
    for line in p.lines():
        out.write(f"  $ {line}\n")
    for note in p.notes:
        out.write(f"  note: {note}\n")
    if p.manual:
        out.write(f"  manual: {p.manual}\n")
    out.flush()
    if plan_only:
        return
    if p.manual:
        _say(f"manual: {p.manual}", err=True)
        _say("manual: run this yourself: " + " && ".join(p.lines()))
        raise typer.Exit(EXIT_MANUAL)

    def render_hook() -> str:
        from ..render import registry

        return registry.get("kata-hook").render(loaded.recipe).text

    try:
        with EventsView(out="stderr") as view, cancel_on_signals(CancelToken()) as token:
            import signal

            signal.signal(signal.SIGHUP, lambda _s, _f: token.cancel("interrupted (SIGHUP)"))  # a closed terminal
            said = rootfs_steps.run(step, a, render_hook, method=method, sink=view, cancel=token)
    except RootfsError as exc:
        _say(f"error: {exc.message}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except StateError as exc:
        _say(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except (Cancelled, KeyboardInterrupt):
        extra = "; `cai-tui kata rootfs undo` restores the image from its backup" if step == "grow" else ""
        _say(f"interrupted: rootfs {step} stopped; the mounts it made are undone{extra}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    _say(said)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``cai-tui kata``."""
    rootfs_app = typer.Typer(
        help="The guest rootfs.img (KATA-1.1–1.7): grow, mount, install, hook, unmount, undo. "
        "Exit 3: the step cannot run here (the command for a person is printed).",
        no_args_is_help=True,
    )

    def make(step: str) -> None:
        def command(
            recipe: str = typer.Option(..., "--recipe", help="The kata-virtcca recipe."),
            plan: bool = typer.Option(False, "--plan", help="Print the commands and stop."),
            method: str = typer.Option(
                "auto", "--method", help="How to mount: auto (loop, else fuse2fs), loop, fuse2fs."
            ),
        ) -> None:
            run_step(step, recipe, plan, method)

        command.__doc__ = _HELP[step]
        rootfs_app.command(step)(command)

    for step in _HELP:
        make(step)
    app.add_typer(rootfs_app, name="rootfs")
