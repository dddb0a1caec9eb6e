"""Plans of the kata-virtcca doers of KATA-3.x: the GPU to vfio-pci (gpu.bind_vfio)."""

from __future__ import annotations

from ..registry import ActionSpec

ACTIONS: list[ActionSpec] = []
