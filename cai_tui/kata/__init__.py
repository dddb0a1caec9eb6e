"""The kata-virtcca procedure's doers (core: no UI): the guest rootfs image, the kata configuration, the vLLM image,
the GPU on vfio-pci, the CNI network and the container. Each works through a :class:`~cai_tui.targets.base.Target`
(sysfs through the target's root), reports through :mod:`cai_tui.events`, and records what it changed under
:func:`cai_tui.kata.state.state_dir` so that its undo puts the host back."""
