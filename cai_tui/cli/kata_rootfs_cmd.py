"""``cai-tui kata rootfs grow|mount|enter|install-tools|install-driver|add-hook|unmount|undo (KATA-1.1–1.7)``. Imports of the core stay inside the commands (``--help`` must stay fast)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``cai-tui kata``."""
