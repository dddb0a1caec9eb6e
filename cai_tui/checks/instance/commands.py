"""The commands scripts/capture-machine.sh records, verbatim (tests/checks/test_instance_capture.py keeps them
in step), and the files they stand in for."""

from __future__ import annotations

from ...parsers.nvidia_smi import INVENTORY_QUERY

SMI = ("nvidia-smi",)
SMI_INVENTORY = ("nvidia-smi", *INVENTORY_QUERY.split())
CC_F = ("nvidia-smi", "conf-compute", "-f")
CC_Q = ("nvidia-smi", "conf-compute", "-q")
CC_GRS = ("nvidia-smi", "conf-compute", "-grs")
PROC_VERSION = "/proc/driver/nvidia/version"
PROC_VERSION_CMD = ("cat", PROC_VERSION)
SYSFS_PCI = "/sys/bus/pci/devices"
SYSFS_PCI_CMD = (
    "sh",
    "-c",
    'for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor)" = 0x10de ] || continue; echo "== $d"; '
    "for f in vendor device class subsystem_vendor subsystem_device numa_node driver_override; do "
    'printf "%s=%s\\n" $f "$(cat $d/$f 2>&1)"; done; echo "driver=$(readlink $d/driver)"; '
    'echo "iommu_group=$(readlink $d/iommu_group)"; done',
)
TDX_DEVICES = ("/dev/tdx_guest", "/dev/tdx-guest")
TSM_REPORT = "/sys/kernel/config/tsm/report"
TDX_CMD = ("sh", "-c", "ls -l /dev/tdx_guest /dev/tdx-guest; ls /sys/kernel/config/tsm; cat /proc/cmdline")
CPUINFO = "/proc/cpuinfo"
CPUINFO_CMD = ("sh", "-c", 'grep -m1 flags /proc/cpuinfo; grep -m1 "model name" /proc/cpuinfo')
DOCKER_JSON = ("docker", "version", "--format", "{{json .}}")
DOCKER_PLAIN = ("docker", "version")
DOCKER_CAPTURE = ("sh", "-c", "docker version; docker compose version")
COMPOSE = ("docker", "compose", "version")
COMPOSE_V1 = ("docker-compose", "version")


def cc_f_gpu(index: int) -> tuple[str, ...]:
    return ("nvidia-smi", "conf-compute", "-f", "-i", str(index))
