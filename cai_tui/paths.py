"""Every path the tool uses by default, in one place (XDG locations through platformdirs).

``CAI_TUI_HOME`` overrides them all (tests and CI point it at a temporary directory).
"""

from __future__ import annotations

import os
from pathlib import Path


def _base(kind: str) -> Path:
    home = os.environ.get("CAI_TUI_HOME")
    if home:
        return Path(home) / kind
    import platformdirs

    if kind == "config":
        return Path(platformdirs.user_config_dir("cai-tui"))
    if kind == "state":
        return Path(platformdirs.user_state_dir("cai-tui"))
    return Path(platformdirs.user_cache_dir("cai-tui"))


def config_dir() -> Path:
    return _base("config")


def state_dir() -> Path:
    """Checkpoints (uploads), lab state, undo journals."""
    return _base("state")


def cache_dir() -> Path:
    return _base("cache")
