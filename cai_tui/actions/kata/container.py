"""Plans of the kata-virtcca doers of KATA-5.x: the confidential container (container.run, container.serve, container.ask)."""

from __future__ import annotations

from ..registry import ActionSpec

ACTIONS: list[ActionSpec] = []
