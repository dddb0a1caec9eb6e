"""The machine facts a bundle captures: the same names and commands as ``scripts/capture-machine.sh`` (a test keeps
the two in step), so a bundle's ``facts/`` reads like a capture and the parsers (``cai_tui/parsers``) take both."""

from __future__ import annotations

_SYSFS_PCI = (
    'for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor)" = 0x10de ] || continue; echo "== $d"; '
    "for f in vendor device class subsystem_vendor subsystem_device numa_node driver_override; do "
    'printf "%s=%s\\n" $f "$(cat $d/$f 2>&1)"; done; echo "driver=$(readlink $d/driver)"; '
    'echo "iommu_group=$(readlink $d/iommu_group)"; done'
)
_KCONFIG = (
    "ls /proc/config.gz /boot/config-$(uname -r) /lib/modules/$(uname -r)/config; "
    "(zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r)) | "
    'grep -E "CONFIG_VFIO|CONFIG_IOMMU|CONFIG_INTEL_TDX|CONFIG_TSM"'
)
_MODULES = (
    'ls /sys/module | grep -i -E "vfio|nvidia"; ls /lib/modules/$(uname -r)/kernel/drivers/vfio; '
    "grep vfio /lib/modules/$(uname -r)/modules.builtin"
)

FACTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("nvidia-smi", ("nvidia-smi",)),
    ("nvidia-smi-L", ("nvidia-smi", "-L")),
    (
        "nvidia-smi-query-csv",
        (
            "nvidia-smi",
            "--query-gpu=index,name,pci.bus_id,driver_version,memory.total",
            "--format=csv,noheader,nounits",
        ),
    ),
    (
        "nvidia-smi-query-csv-header",
        (
            "nvidia-smi",
            "--query-gpu=index,name,uuid,pci.bus_id,driver_version,memory.total,memory.used,compute_mode,"
            "persistence_mode",
            "--format=csv",
        ),
    ),
    ("nvidia-smi-q", ("nvidia-smi", "-q")),
    ("conf-compute-f", ("nvidia-smi", "conf-compute", "-f")),
    ("conf-compute-grs", ("nvidia-smi", "conf-compute", "-grs")),
    ("conf-compute-q", ("nvidia-smi", "conf-compute", "-q")),
    ("conf-compute-help", ("nvidia-smi", "conf-compute", "-h")),
    ("nvidia-smi-version", ("nvidia-smi", "--version")),
    ("proc-driver-version", ("cat", "/proc/driver/nvidia/version")),
    (
        "proc-driver-gpus",
        ("sh", "-c", 'for d in /proc/driver/nvidia/gpus/*; do echo "== $d"; cat "$d/information"; done'),
    ),
    ("lspci-nn-D", ("lspci", "-nn", "-D")),
    ("sysfs-pci", ("sh", "-c", _SYSFS_PCI)),
    ("iommu", ("sh", "-c", "ls /sys/kernel/iommu_groups/ | head; ls /sys/class/iommu/; ls -l /dev/vfio")),
    ("uname", ("uname", "-a")),
    ("cpuinfo-flags", ("sh", "-c", 'grep -m1 flags /proc/cpuinfo; grep -m1 "model name" /proc/cpuinfo')),
    ("tdx", ("sh", "-c", "ls -l /dev/tdx_guest /dev/tdx-guest; ls /sys/kernel/config/tsm; cat /proc/cmdline")),
    ("kernel-config", ("sh", "-c", _KCONFIG)),
    ("modules", ("sh", "-c", _MODULES)),
    ("docker-version", ("sh", "-c", "docker version; docker compose version")),
    ("os-release", ("cat", "/etc/os-release")),
)
"""(file name without .txt, argv) — in capture-machine.sh's order."""

EXTRA_FACTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("proc-cmdline", ("cat", "/proc/cmdline")),
    ("iommu-groups", ("sh", "-c", "find /sys/kernel/iommu_groups -mindepth 3 -maxdepth 3 -type l | sort")),
)
"""Facts the bundle adds on top of the capture script's: the full IOMMU group listing and the kernel command line."""
