"""``cai-tui kata vfio plan|apply|undo (KATA-3)``. Imports of the core stay inside the commands (``--help`` must stay fast)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``cai-tui kata``."""
