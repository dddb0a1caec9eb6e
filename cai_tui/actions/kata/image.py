"""Plans of the kata-virtcca doers of KATA-2.x: the vLLM image (image.install_buildx, image.build, image.import)."""

from __future__ import annotations

from ..registry import ActionSpec

ACTIONS: list[ActionSpec] = []
