"""The devices of the kata lab's fake sysfs (:mod:`cai_tui.lab.kata.sysfs`), per variant.

Values: the H100's come from tests/fixtures/captures/h100-vm-2026-11-22 (0000:00:06.0, 10de:2330, subsystem 10de:16c1,
no IOMMU group); the H200's ID 10de:2335 and the HiSilicon root port 19e5:a120 from tests/fixtures/parsers/
lspci-nn-D-host.txt; the consumer GPU (AD102 10de:2684 with its HD audio 10de:22ba), the NICs (HiSilicon hns3
19e5:a222, Intel X710 8086:1572), the NVMe drive (144d:a80a) and the ASPEED bridge and VGA (1a03:1150, 1a03:2000) are
public PCI IDs. Addresses, subsystem IDs other than the H100's, groups and interface names are made up. Real H100/H200
boards have no audio function: the consumer GPU stands for the group with a companion function to bind.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

VFIO = "vfio-pci"
LAB_GPU_BDF = "0000:01:00.0"
LAB_GPU_GROUP = 81
CONSUMER_GPU_BDF = "0000:05:00.0"
CONSUMER_AUDIO_BDF = "0000:05:00.1"
CONSUMER_GROUP = 17
NONVIABLE_GPU_BDF = "0000:41:00.0"
NONVIABLE_NIC_BDF = "0000:41:00.1"
NONVIABLE_GROUP = 40
NO_IOMMU_GPU_BDF = "0000:00:06.0"
VARIANTS = ("lab", "consumer", "non-viable", "no-iommu", "no-vfio", "all")
VIRTCCA_CMDLINE = "virtcca_cvm_host=1 arm_smmu_v3.disable_ecmdq=1 vfio_pci.disable_idle_d3=1"


@dataclass(frozen=True)
class FakeDevice:
    bdf: str
    vendor: int
    device: int
    class_code: int  # 24 bits, as sysfs shows it
    driver: str | None  # bound when the tree is built
    native: str | None  # the driver whose ID table matches (what drivers_probe binds without an override)
    group: int | None
    parent: str | None = None  # upstream bridge's BDF (the device directory lies under it)
    subsystem: tuple[int, int] = (0, 0)
    boot_vga: bool = False  # written for display-class devices only, as the kernel does
    netdev: tuple[str, str] | None = None  # (interface, operstate) under <dev>/net/
    block: tuple[str, ...] = ()  # disks under <dev>/nvme/nvme0/

    @property
    def is_bridge(self) -> bool:
        return self.class_code >> 16 == 0x06


def _host_devices() -> list[FakeDevice]:
    """What every variant's host has besides the GPU: root ports, the BMC's VGA (the boot VGA), an NVMe disk, a NIC."""
    return [
        FakeDevice("0000:00:02.0", 0x1A03, 0x1150, 0x060400, None, None, 3),  # ASPEED AST1150 PCI-to-PCI bridge
        FakeDevice("0000:02:00.0", 0x1A03, 0x2000, 0x030000, "ast", "ast", 3, "0000:00:02.0", (0x1A03, 0x2000), True),
        FakeDevice("0000:00:03.0", 0x19E5, 0xA120, 0x060400, "pcieport", "pcieport", 4),
        FakeDevice(
            "0000:03:00.0",
            0x144D,
            0xA80A,
            0x010802,
            "nvme",
            "nvme",
            5,
            "0000:00:03.0",
            (0x144D, 0xA812),
            block=("nvme0n1",),
        ),
        FakeDevice(
            "0000:7d:00.0",
            0x19E5,
            0xA222,
            0x020000,
            "hns3",
            "hns3",
            6,
            None,
            (0x19E5, 0x0454),
            netdev=("enp125s0f0", "up"),
        ),
    ]


def _lab_gpu() -> list[FakeDevice]:
    """An H200 behind a root port that shares its IOMMU group (no ACS above it): the group with a bridge."""
    return [
        FakeDevice("0000:00:01.0", 0x19E5, 0xA120, 0x060400, "pcieport", "pcieport", LAB_GPU_GROUP),
        FakeDevice(
            LAB_GPU_BDF, 0x10DE, 0x2335, 0x030200, "nvidia", "nvidia", LAB_GPU_GROUP, "0000:00:01.0", (0x10DE, 0x18BE)
        ),
    ]


def _consumer_gpu() -> list[FakeDevice]:
    """A consumer GPU (AD102, RTX 4090) with its HD audio function in one group: bind both."""
    return [
        FakeDevice("0000:00:05.0", 0x19E5, 0xA120, 0x060400, "pcieport", "pcieport", 16),
        FakeDevice(
            CONSUMER_GPU_BDF,
            0x10DE,
            0x2684,
            0x030000,
            "nvidia",
            "nvidia",
            CONSUMER_GROUP,
            "0000:00:05.0",
            (0x1043, 0x889C),
        ),
        FakeDevice(
            CONSUMER_AUDIO_BDF,
            0x10DE,
            0x22BA,
            0x040300,
            "snd_hda_intel",
            "snd_hda_intel",
            CONSUMER_GROUP,
            "0000:00:05.0",
            (0x1043, 0x889C),
        ),
    ]


def _nonviable_gpu() -> list[FakeDevice]:
    """An H100 PCIe sharing its group with a NIC port the host's network runs on (i40e, link up)."""
    return [
        FakeDevice("0000:40:00.0", 0x19E5, 0xA120, 0x060400, "pcieport", "pcieport", 39),
        FakeDevice(
            NONVIABLE_GPU_BDF,
            0x10DE,
            0x2331,
            0x030200,
            "nvidia",
            "nvidia",
            NONVIABLE_GROUP,
            "0000:40:00.0",
            (0x10DE, 0x1626),
        ),
        FakeDevice(
            NONVIABLE_NIC_BDF,
            0x8086,
            0x1572,
            0x020000,
            "i40e",
            "i40e",
            NONVIABLE_GROUP,
            "0000:40:00.0",
            (0x8086, 0x0007),
            netdev=("ens4f0", "up"),
        ),
    ]


def _no_iommu_gpu() -> list[FakeDevice]:
    """The captured H100 VM (no virtual IOMMU): no group, nvidia bound."""
    return [FakeDevice(NO_IOMMU_GPU_BDF, 0x10DE, 0x2330, 0x030200, "nvidia", "nvidia", None, None, (0x10DE, 0x16C1))]


def variant_devices(variant: str) -> tuple[list[FakeDevice], bool, bool]:
    """(devices, IOMMU on, vfio-pci loaded) of a variant."""
    host = _host_devices()
    if variant == "lab":
        return host + _lab_gpu(), True, True
    if variant == "consumer":
        return host + _consumer_gpu(), True, True
    if variant == "non-viable":
        return host + _nonviable_gpu(), True, True
    if variant == "no-vfio":
        return host + _lab_gpu(), True, False
    if variant == "all":
        return host + _lab_gpu() + _consumer_gpu() + _nonviable_gpu(), True, True
    if variant == "no-iommu":
        return [replace(d, group=None) for d in host] + _no_iommu_gpu(), False, True
    raise ValueError(f"unknown fake sysfs variant {variant!r}: one of {', '.join(VARIANTS)}")
