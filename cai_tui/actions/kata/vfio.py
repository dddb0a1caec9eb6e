"""Plans of the kata-virtcca doers of KATA-3.x: the GPU to vfio-pci (gpu.bind_vfio)."""

from __future__ import annotations

from typing import Any

from ..registry import ActionSpec, PlanStep
from ._common import CLI, kata_answers, recipe_path


def plan_bind_vfio(loaded: Any) -> list[PlanStep]:
    """``cai-tui kata vfio apply --recipe R --yes``: it prints the plan (GPU, group, members, writes) first and exits 1
    with the blocking reason when binding cannot work; undo gives the functions back to their previous drivers."""
    gpu = kata_answers(loaded).gpu
    notes: list[str] = []
    recipe = recipe_path(loaded, notes)
    which = f"the GPU {gpu.bdf}" if gpu.bdf else "every NVIDIA GPU found (answers.gpu.bdf is empty)"
    root = f" under {gpu.sysroot}" if gpu.sysroot else ""
    return [
        PlanStep(
            "bind the GPU and the rest of its IOMMU group to vfio-pci (KATA-3.1)",
            [CLI, "kata", "vfio", "apply", "--recipe", recipe, "--yes"],
            where="host",
            changes=f"hands {which} and the other members of its IOMMU group (bridges aside) to vfio-pci{root} "
            "(driver_override, unbind, drivers_probe); the host cannot use them until undone or rebooted",
            notes=tuple(notes),
            undo=(CLI, "kata", "vfio", "undo", "--recipe", recipe),
        )
    ]


ACTIONS: list[ActionSpec] = [
    ActionSpec("gpu.bind_vfio", "Bind the GPU to vfio-pci", "kata-virtcca", plan_bind_vfio),
]
