"""KATA-1.6: the OCI prestart hook the guest rootfs needs, so that containers see the NVIDIA driver (nvidia-smi).

The kata agent runs every executable file in ``<guest_hook_path>/prestart`` (KATA-1.8) with the stage name as its
argument and the container state on stdin — only when guest_hook_path is set and not empty (kata 3.24+ ship it as
``""``, which disables hooks); kata's guest hooks need no JSON descriptor (``hooks.d/*.json`` is a podman/CRI-O
convention). The script is the seed's, with ``"$@"`` quoted so the arguments pass through unchanged.
"""

from __future__ import annotations

from ..recipe import KataRecipe
from .base import Prompter, Rendered, Renderer
from .shell import comment

TOOLKIT = "/usr/bin/nvidia-container-toolkit"  # seed 002 (KATA-1.6); no recipe field: the package installs it there


class KataHook(Renderer):
    kind = "kata-hook"
    title = "OCI prestart hook nvidia-container-toolkit.sh in the guest rootfs (KATA-1.6)"
    flow = "kata-virtcca"
    default_path = "/home/mnt/usr/share/oci/hooks/prestart/nvidia-container-toolkit.sh"
    mode = 0o755

    def render(self, recipe: KataRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        a = recipe.answers
        root = a.kata.guest_hook_path.rstrip("/")
        lines = [
            "#!/bin/bash -x",
            comment(f"KATA-1.6: {a.driver.hook_path} inside the guest rootfs (mounted at {a.rootfs.mount_dir}),"),
            comment(f"mode 0755, Unix line endings. The kata agent runs every executable file in {root}/prestart"),
            comment(f'(guest_hook_path = "{root}" in {a.kata.config_path}, KATA-1.8) before the container starts.'),
            f'{TOOLKIT} -debug "$@"',
        ]
        path = a.rootfs.mount_dir.rstrip("/") + a.driver.hook_path
        return Rendered(text="\n".join(lines) + "\n", mode=self.mode, path=path)


__all__ = ["KataHook"]
