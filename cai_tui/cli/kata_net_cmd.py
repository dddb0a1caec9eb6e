"""``cai-tui kata cni install-plugins|install-cnitool|write-conf|create-netns|attach|undo (KATA-4)``. Imports of the core stay inside the commands (``--help`` must stay fast)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``cai-tui kata``."""
