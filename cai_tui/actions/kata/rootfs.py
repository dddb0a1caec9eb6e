"""Plans of the kata-virtcca doers of KATA-1.1–1.7: the guest rootfs image (rootfs.grow, rootfs.mount,
rootfs.install_tools, rootfs.enter, rootfs.install_driver, rootfs.add_hook, rootfs.unmount).

Each is one ``cai-tui kata rootfs <step> --recipe R`` line run on the host; the commands it runs are in
:mod:`cai_tui.kata.rootfs_steps`. A step that cannot run here (no dnf with repositories; a chroot into an image of
another architecture without binfmt_misc) is planned ``manual`` with the command for a person, before anything
starts. The undo of every changing step is ``cai-tui kata rootfs undo``: it unmounts what is recorded and restores
rootfs.img from the grow's backup (which also takes back what the later steps wrote into the image); run again, it
says "nothing to undo".
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from ..registry import ActionSpec, PlanStep
from ._common import CLI, kata_answers, recipe_path

_WHAT = {
    "grow": ("grow rootfs.img by {grow} GiB: backup, qemu-img resize, e2fsck -f, resize2fs (KATA-1.3)", "KATA-1.3"),
    "mount": ("mount rootfs.img on {dir} with sys, proc, tmp, dev, dev/pts (KATA-1.1, KATA-1.4)", ""),
    "install-tools": ("install {packages} into the rootfs with dnf --installroot (KATA-1.1)", ""),
    "enter": ("check that a chroot into {dir} runs /bin/sh (KATA-1.4)", ""),
    "install-driver": ("run the NVIDIA {version} installer in the chroot (KATA-1.5)", ""),
    "add-hook": ("write the OCI prestart hook {hook} in the rootfs, mode 0755 (KATA-1.6)", ""),
    "unmount": ("unmount the rootfs and its pseudo-filesystems, last first (KATA-1.7)", ""),
}


def _changes(step: str, a: Any, commands: list[str]) -> str:
    r = a.rootfs
    if step == "enter":
        return f"nothing: runs /bin/sh -c 'echo ok' in the chroot {r.mount_dir} (mounting it for the run if needed)"
    what = {
        "grow": f"keeps {r.image}.bak, then grows {r.image} by {r.grow_gib} GiB",
        "mount": f"mounts {r.image} on {r.mount_dir} and 5 pseudo-filesystems under it (recorded for unmount)",
        "install-tools": f"installs {', '.join(r.packages)} into {r.image}",
        "install-driver": f"installs the NVIDIA {a.driver.version} driver into {r.image}",
        "add-hook": f"writes {a.driver.hook_path} into {r.image}",
        "unmount": f"unmounts what is mounted under {r.mount_dir}",
    }[step]
    return f"{what}: " + "; ".join(commands) if commands else what


def _plan(step: str) -> Callable[[Any], list[PlanStep]]:
    def plan(loaded: Any) -> list[PlanStep]:
        from ...kata import rootfs_steps

        a = kata_answers(loaded)
        notes: list[str] = []
        recipe = recipe_path(loaded, notes)
        p = rootfs_steps.plan(step, a)
        title = _WHAT[step][0].format(
            grow=a.rootfs.grow_gib,
            dir=a.rootfs.mount_dir,
            packages=", ".join(a.rootfs.packages),
            version=a.driver.version,
            hook=a.driver.hook_path,
        )
        undo: tuple[str, ...] = ()
        if step != "enter" and step != "unmount":
            undo = (CLI, "kata", "rootfs", "undo", "--recipe", recipe)
        if p.manual:
            cmd = [c for c in p.commands if c[0] not in ("mount", "umount", "fuse2fs")]
            return [
                PlanStep(
                    title,
                    ["sh", "-c", " && ".join(shlex.join(c) for c in cmd)] if len(cmd) > 1 else cmd[0],
                    where="host",
                    changes=_changes(step, a, []),
                    notes=tuple(notes + p.notes),
                    manual=p.manual + f"; with the rootfs mounted on {a.rootfs.mount_dir} (rootfs.mount)",
                )
            ]
        return [
            PlanStep(
                title,
                [CLI, "kata", "rootfs", step, "--recipe", recipe],
                where="host",
                changes=_changes(step, a, p.lines()),
                notes=tuple(notes + p.notes),
                undo=undo,
            )
        ]

    return plan


ACTIONS: list[ActionSpec] = [
    ActionSpec(f"rootfs.{step.replace('-', '_')}", title.split(" (")[0], "kata-virtcca", _plan(step))
    for step, (title, _x) in _WHAT.items()
]
