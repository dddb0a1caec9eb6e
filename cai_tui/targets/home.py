"""The home directory of the user a target runs commands as (``~`` in recipe paths means that one, not ours)."""

from __future__ import annotations

import os

from .base import Target


async def home_of(target: Target, timeout: float = 10.0) -> str | None:
    """``$HOME`` on ``target`` (this process's for a local target); None when it cannot be learnt."""
    from .local import LocalTarget

    if isinstance(target, LocalTarget):
        return os.path.expanduser("~")
    try:
        res = await target.run(["sh", "-c", 'printf %s "$HOME"'], timeout=timeout)
    except Exception:  # a target that cannot run the command: the caller says what it could not read
        return None
    return res.stdout.strip() or None if res.rc == 0 else None
