"""Plans of the kata-virtcca doers of KATA-4.x: the CNI network (cni.install_plugins, cni.install_cnitool, cni.write_conf, cni.create_netns, cni.attach)."""

from __future__ import annotations

from ..registry import ActionSpec

ACTIONS: list[ActionSpec] = []
