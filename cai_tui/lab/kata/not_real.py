"""The one place that says which pieces of the kata lab are not the real thing, and why (banners and docs read it).

Real: qemu-img, e2fsck, resize2fs and the loop/fuse2fs mount of an ext4 image; Debian's CNI plugins (bridge,
host-local, loopback) run in network namespaces; containerd and ``ctr``; the kata configuration file (derived from
kata-containers' own templates).
"""

from __future__ import annotations

KATA_NOT_REAL: tuple[tuple[str, str], ...] = (
    (
        "kata runtime",
        "ctr run uses runc (io.containerd.runc.v2) where the host runs io.containerd.kata.v2: no virtCCA (Arm CCA) "
        "hardware here, so the container is not a confidential VM; everything else on the ctr line is the same",
    ),
)


def describe() -> str:
    """One line per stand-in, for banners and docs."""
    return "\n".join(f"- {what}: {why}" for what, why in KATA_NOT_REAL)
