"""``cai-tui kata config FILE --set KEY=VALUE… / --restore (KATA-1.8)``. Imports of the core stay inside the commands (``--help`` must stay fast)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``cai-tui kata``."""
