"""Plans of the kata-virtcca doers of KATA-1.8: the kata configuration in effect (kata.set_hook_path)."""

from __future__ import annotations

from ..registry import ActionSpec

ACTIONS: list[ActionSpec] = []
