"""kata-virtcca host and guest checks (seed 002, KATA-*): the Arm host, its OLK-6.6 kernel and VFIO options, the IOMMU,
the GPU's IOMMU group and its vfio-pci binding, /dev/vfio/N, the kata configuration in effect, the OCI hook inside the
guest rootfs, the CNI network, and nvidia-smi inside the confidential container.

Files are read through the host Target (a sysroot works: a capture or a mounted disk); commands run only where the target
can run them, and a sysroot without a machine behind it gives "unknown" for what needs one, never a guess.

One module a topic. Importing the package imports them all, in the order the checks register (doctor runs them in it).
"""

# isort: off
# Kept in the order the checks register in (doctor runs them in it), so not sorted.
from . import host, kernel_config, vfio, kata_config, hook, cni, guest, container
# isort: on

__all__ = ["cni", "container", "guest", "hook", "host", "kata_config", "kernel_config", "vfio"]
