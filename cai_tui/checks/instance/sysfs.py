"""NVIDIA GPUs from sysfs: read through the target, or from the recorded listing on a capture."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...parsers.errors import ParseError
from ...parsers.sysfs import NVIDIA_VENDOR_ID, PciSysfsDevice, device_from_values, parse_hex_id
from ...targets.base import TargetError
from ._common import _cmd, _try_run
from .commands import SYSFS_PCI, SYSFS_PCI_CMD

if TYPE_CHECKING:
    from ...targets.base import Target

# --- sysfs -------------------------------------------------------------------------------------------------------------


def parse_sysfs_pci_listing(text: str) -> list[PciSysfsDevice]:
    """Output of :data:`SYSFS_PCI_CMD` (``== /sys/bus/pci/devices/<bdf>`` then ``key=value`` lines) → devices."""
    blocks: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if line.startswith("== "):
            bdf = line[3:].strip().rstrip("/").rsplit("/", 1)[-1]
            current = blocks.setdefault(bdf, {})
            continue
        if current is None or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if value.startswith(("cat:", "readlink:")):
            continue  # the file is not there (e.g. no driver_override on old kernels)
        current[key.strip()] = value
    devices = []
    for bdf, values in blocks.items():
        try:
            devices.append(device_from_values(bdf, values))
        except ParseError:
            continue
    return devices


async def _sysfs_device(target: Target, base: str, bdf: str) -> PciSysfsDevice | None:
    values: dict[str, str] = {}
    for name in ("vendor", "device", "class", "driver_override", "numa_node"):
        try:
            values[name] = (await target.read_file(f"{base}/{name}", max_bytes=4096)).decode("ascii", "replace")
        except OSError:
            if name in ("vendor", "device", "class"):
                return None
    for link in ("driver", "iommu_group"):
        try:
            values[link] = await target.readlink(f"{base}/{link}") or ""
        except OSError:
            values[link] = ""
    try:
        return device_from_values(bdf, values)
    except ParseError:
        return None


async def sysfs_nvidia_gpus(target: Target, timeout: float) -> tuple[list[PciSysfsDevice] | None, str]:
    """NVIDIA display-class devices from sysfs: ``(devices, source)``, ``(None, why)`` when sysfs cannot be read."""
    entries: list[str] | None = None
    try:
        entries = await target.listdir(SYSFS_PCI)
    except (TargetError, FileNotFoundError):  # no files here: the recorded command may have the listing
        res = await _try_run(target, SYSFS_PCI_CMD, timeout)
        if res is None or res.rc == 127:
            return None, f"{SYSFS_PCI}: not readable on this target, and `{_cmd(SYSFS_PCI_CMD)}` not available"
        return [d for d in parse_sysfs_pci_listing(res.stdout) if d.is_nvidia and d.is_gpu], _cmd(SYSFS_PCI_CMD)
    except OSError as e:
        return None, f"{SYSFS_PCI}: {e.strerror or e}"
    found: list[PciSysfsDevice] = []
    for bdf in entries:
        base = f"{SYSFS_PCI}/{bdf}"
        try:
            vendor = parse_hex_id((await target.read_file(f"{base}/vendor", max_bytes=64)).decode("ascii", "replace"))
        except (OSError, ParseError):
            continue
        if vendor != NVIDIA_VENDOR_ID:
            continue
        device = await _sysfs_device(target, base, bdf)
        if device is not None and device.is_gpu:
            found.append(device)
    return sorted(found, key=lambda d: d.bdf), f"{SYSFS_PCI}/*/vendor"


def _sysfs_line(d: PciSysfsDevice) -> str:
    return (
        f"{d.bdf} vendor=0x{d.vendor_id:04x} device=0x{d.device_id:04x} class=0x{d.class_code:06x} "
        f"({d.class_name}) driver={d.driver or '(none)'}"
    )
