"""Plans of the kata-virtcca doers of KATA-1.1–1.7: the guest rootfs image (rootfs.grow, rootfs.mount, rootfs.install_tools, rootfs.enter, rootfs.install_driver, rootfs.add_hook, rootfs.unmount)."""

from __future__ import annotations

from ..registry import ActionSpec

ACTIONS: list[ActionSpec] = []
