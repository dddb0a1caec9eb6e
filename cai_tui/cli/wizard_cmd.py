"""Open the Textual wizard (optionally on the embedded lab)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def run_wizard(*, lab: bool, recipe: str | None, lang: str, bare: bool = False) -> int:
    if lang not in ("en", "zh"):
        sys.stderr.write(f"--lang: {lang!r} is not a language of cai-tui; use en or zh\n")
        return 2
    if recipe is not None:
        from ..recipe import RecipeError, load_recipe

        try:
            load_recipe(recipe)
        except RecipeError as e:
            sys.stderr.write(str(e) + "\n")
            return 2
    from ..tui.app import run_app

    if not lab:
        return run_app(lang=lang, recipe_path=recipe)
    if bare and recipe is not None:
        sys.stderr.write("--bare: the bare lab writes its own recipe; leave out --recipe\n")
        return 2
    from ..lab.orchestrator import Lab, LabError

    running = Lab(instance=True, seed="bare" if bare else "demo")
    sys.stderr.write("starting the lab (Trustee, OSS, KMS and, where this machine can, the lab instance)…\n")
    try:
        running.start()
    except LabError as e:
        sys.stderr.write(f"cannot start the lab: {e}\n")
        return 2
    try:
        sys.stderr.write(lab_status(running))
        with _hangup_interrupts():
            return run_app(
                lang=lang, recipe_path=recipe or str(running.recipe_path), lab_info=running.ready_info(), lab=running
            )
    except KeyboardInterrupt:
        return 130
    finally:
        running.stop()
        sys.stderr.write(lab_status(running))  # the "running" lines above stay on the terminal: say it stopped


def lab_status(lab: Any) -> str:
    """What the terminal says about the wizard's lab: its endpoints while it runs (written before the wizard opens),
    and that it stopped once it has (written after the wizard closed, so the last word is true)."""
    if lab.running:
        return (
            f"lab running: Trustee {lab.trustee_url}, OSS {lab.oss_endpoint}, KMS {lab.kms_endpoint}\n"
            + (f"  {lab.side_by_side_note}\n" if lab.side_by_side_note else "")
            + f"  recipe {lab.recipe_path}\n  instance: {lab.instance_info['message']}\n"
        )
    return (
        f"lab stopped: Trustee, OSS and KMS are no longer served; its recipe {lab.recipe_path} stays "
        "(`cai-tui --lab` starts the lab again)\n"
    )


@contextmanager
def _hangup_interrupts() -> Iterator[None]:
    """A closed terminal (SIGHUP) or a kill (SIGTERM) ends the wizard like Ctrl-C, so the lab is stopped and its
    mounts and containers go with it."""
    wanted = [s for s in (getattr(signal, "SIGHUP", None), signal.SIGTERM) if s is not None]
    previous = {s: signal.signal(s, signal.default_int_handler) for s in wanted}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
