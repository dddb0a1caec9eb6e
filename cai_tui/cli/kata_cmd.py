"""``cai-tui kata …``: the kata-virtcca procedure's doers, one module per stage (each adds its commands here)."""

from __future__ import annotations

import typer

from . import kata_config_cmd, kata_container_cmd, kata_image_cmd, kata_net_cmd, kata_rootfs_cmd, kata_vfio_cmd

kata_app = typer.Typer(
    help="The kata-virtcca steps: guest rootfs, kata configuration, vLLM image, GPU to vfio-pci, CNI network, "
    "the confidential container. Each shows its plan first and has an undo where it changes the host.",
    no_args_is_help=True,
)
for _module in (kata_rootfs_cmd, kata_config_cmd, kata_image_cmd, kata_vfio_cmd, kata_net_cmd, kata_container_cmd):
    _module.register(kata_app)
