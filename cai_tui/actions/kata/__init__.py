"""The kata-virtcca flow's doers: one module per stage, each with its ``ACTIONS`` (plans of ``cai-tui kata …`` lines).

Every changing step's :class:`~cai_tui.actions.registry.PlanStep` carries its ``undo`` command line, which
``cai-tui replay --undo`` runs in reverse order.
"""

from __future__ import annotations

from ..registry import ActionSpec
from . import cni, config, container, image, rootfs, vfio

ACTIONS: list[ActionSpec] = [
    *rootfs.ACTIONS,
    *config.ACTIONS,
    *image.ACTIONS,
    *vfio.ACTIONS,
    *cni.ACTIONS,
    *container.ACTIONS,
]
