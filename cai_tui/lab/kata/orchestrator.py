"""The kata lab as one piece: every lab part started under one folder, and a kata-virtcca recipe that points at them.

:func:`start_kata_lab` makes the small ext4 rootfs.img and the stand-in driver installer, writes the kata
configuration derived from kata's own template, builds the fake sysfs tree and starts its emulator, starts a private
containerd, writes the vLLM stand-in's build context (its base, the labstack image, is built or reused now), picks a
free subnet and unique names for the CNI network, and writes ``kata-lab.yaml``. ``cai-tui replay kata-lab.yaml --yes``
then runs the whole kata-virtcca flow on this machine, and ``--undo --yes`` puts it back.

The environment the doers and checks need (:attr:`KataLab.env`): ``CAI_TUI_STATE_DIR`` (the undo records stay in the
lab's folder) and ``KATA_CONF_FILE`` (the lab's configuration is the one in effect). What is not the real thing:
:mod:`cai_tui.lab.kata.not_real`. The checks that cannot pass on this machine are waived in the recipe, each with why.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...events import EventSink
from .cni import lab_cni_answers, remove_lab_network
from .containerd import LabContainerd, lab_container_answers, lab_guest_target, start_containerd
from .kata_config import lab_env, write_kata_config
from .rootfs_image import lab_rootfs_answers
from .sysfs import FakeSysfs, build_fake_sysfs
from .vllm_image import lab_image_answers

RECIPE_NAME = "kata-lab.yaml"

# Checks of the kata flow that this machine cannot pass, and why (the recipe carries them as waivers).
LAB_WAIVERS: tuple[tuple[str, str], ...] = (
    ("host.arch", "the kata lab runs on this machine (not an Arm virtCCA host)"),
    ("kernel.version", "the kata lab runs on this machine's kernel, not openEuler OLK-6.6"),
    ("kernel.config", "the kata lab runs on this machine's kernel (its VFIO/virtCCA options are not the host's)"),
    ("iommu.enabled", "the kata lab's GPU is in a fake sysfs tree; this machine's own IOMMU is not used"),
)


@dataclass
class KataLab:
    """A started kata lab; :meth:`stop` ends its processes and removes what a run left on the host."""

    dir: Path
    recipe: Path
    env: dict[str, str]
    sysfs: FakeSysfs
    containerd: LabContainerd
    answers: dict[str, Any] = field(repr=False)

    def stop(self) -> list[str]:
        """Stop the emulator and containerd, and remove what an unfinished run left (network, mounts, loop devices);
        returns what was still there."""
        left: list[str] = []
        with contextlib.suppress(Exception):
            left += remove_lab_network(self.answers["cni"])
        left += _release_mounts(self.dir)
        self.containerd.stop()
        self.sysfs.stop()
        return left

    def __enter__(self) -> KataLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_kata_lab(directory: str | os.PathLike[str], *, on_event: EventSink | None = None) -> KataLab:
    """Start the kata lab under ``directory`` (made if missing, must not hold another lab) and write its recipe."""
    root = Path(directory).resolve()
    root.mkdir(parents=True, exist_ok=True)
    recipe = root / RECIPE_NAME
    if recipe.exists():
        raise FileExistsError(f"{root} already holds a kata lab ({recipe}); use another folder or remove it")
    answers: dict[str, Any] = lab_rootfs_answers(root / "rootfs")
    config = write_kata_config(root / "kata")
    answers["kata"] = {"config_path": str(config), "guest_hook_path": "/usr/share/oci/hooks"}
    image = lab_image_answers(root / "image", on_event=on_event)
    answers.update(image)
    answers["cni"] = lab_cni_answers(root / "cni")
    sysfs = build_fake_sysfs(root / "sysroot", "lab").start()
    try:
        ctrd = start_containerd(root / "ctrd")
    except Exception:
        sysfs.stop()
        raise
    container = lab_container_answers(ctrd)
    answers["kata"].update(container["kata"])
    answers["container"] = container["container"]
    answers["gpu"] = sysfs.gpu_answers()
    doc = {
        "schema_version": 1,
        "flow": "kata-virtcca",
        "name": "kata-lab",
        "description": "The kata lab on this machine (cai-tui lab kata); not the real thing: cai_tui/lab/kata/not_real.py",
        "answers": answers,
        "targets": {"host": "local", "guest": lab_guest_target(ctrd)},
        "waivers": [{"check": c, "reason": r} for c, r in LAB_WAIVERS],
    }
    recipe.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")  # JSON is YAML
    env = {"CAI_TUI_STATE_DIR": str(root / "state"), **lab_env(config)}
    return KataLab(root, recipe, env, sysfs, ctrd, answers)


def _release_mounts(folder: Path) -> list[str]:
    """Unmount (lazily, deepest first) what is mounted below ``folder`` and detach loop devices of its images."""
    prefix = str(folder) + "/"
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            mp = line.split()[1].replace("\\040", " ")
            if mp.startswith(prefix):
                points.append(mp)
    for mp in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True, check=False)
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=False).stdout
    for line in loops.splitlines():
        if prefix in line:
            subprocess.run(["losetup", "-d", line.split(":", 1)[0]], capture_output=True, check=False)
            points.append(line.split(":", 1)[0])
    return [f"mount {p}" for p in points]


__all__ = ["LAB_WAIVERS", "RECIPE_NAME", "KataLab", "start_kata_lab"]
