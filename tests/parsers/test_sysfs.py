"""sysfs helpers on the values of the real H100 VM capture (sysfs-pci.txt) and on hand-made edge cases."""

import pytest

from cai_tui.parsers import sysfs
from cai_tui.parsers.errors import ParseError
from tests.parsers._captures import capture


def _dump(body: str) -> dict[str, dict[str, str]]:
    """The capture script's "== /sys/bus/pci/devices/<bdf>" + "key=value" dump → {bdf: {key: raw value}}."""
    devices: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in body.splitlines():
        if line.startswith("== "):
            current = devices.setdefault(line[3:].rsplit("/", 1)[-1], {})
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key] = value
    return devices


def test_real_capture_values():
    dump = _dump(capture("sysfs-pci.txt").body)
    assert list(dump) == ["0000:00:06.0"]
    values = dump["0000:00:06.0"]
    assert sysfs.parse_hex_id(values["vendor"]) == 0x10DE
    assert sysfs.parse_hex_id(values["device"]) == 0x2330
    assert sysfs.parse_class(values["class"]) == "3D controller"
    assert sysfs.driver_from_link(values["driver"]) == "nvidia"
    assert sysfs.group_from_link(values["iommu_group"]) is None  # no IOMMU in that VM: the link is absent
    assert sysfs.parse_driver_override(values["driver_override"]) is None
    assert sysfs.parse_numa_node(values["numa_node"]) is None

    device = sysfs.device_from_values("0000:00:06.0", values)
    assert device == sysfs.PciSysfsDevice(
        bdf="0000:00:06.0",
        vendor_id=0x10DE,
        device_id=0x2330,
        class_code=0x030200,
        driver="nvidia",
        iommu_group=None,
        driver_override=None,
        numa_node=None,
    )
    assert device.is_nvidia and device.is_gpu and not device.is_bridge and device.class_name == "3D controller"
    assert not sysfs.group_viable([device])  # bound to nvidia, not vfio-pci


def test_brief_examples():
    assert sysfs.parse_hex_id("0x10de\n") == 0x10DE
    assert sysfs.driver_from_link("../../../bus/pci/drivers/nvidia") == "nvidia"
    assert sysfs.driver_from_link("../../../bus/pci/drivers/vfio-pci\n") == "vfio-pci"
    assert sysfs.group_from_link("../../../kernel/iommu_groups/81") == 81
    assert sysfs.parse_class(0x030200) == "3D controller"
    assert sysfs.parse_class("0x030000\n") == "VGA compatible controller"
    assert sysfs.parse_class(0x060400) == "PCI bridge"
    assert sysfs.parse_class(0x123456) == "Class 1234"


def test_hex_id_prefix_optional():
    assert sysfs.parse_hex_id("10de") == 0x10DE


@pytest.mark.parametrize("text", ["", "0xZZ", "0x", "-1", "0x123456789"])
def test_hex_id_rejects(text):
    with pytest.raises(ParseError, match="hexadecimal"):
        sysfs.parse_hex_id(text)


def test_links_reject_garbage():
    with pytest.raises(ParseError, match="number"):
        sysfs.group_from_link("../../../kernel/iommu_groups/abc")
    with pytest.raises(ParseError, match="driver link"):
        sysfs.driver_from_link("../../..")
    assert sysfs.driver_from_link("  \n") is None


def test_class_out_of_range():
    with pytest.raises(ParseError, match="24 bits"):
        sysfs.parse_class(0x1000000)


def test_driver_override_and_numa():
    assert sysfs.parse_driver_override("vfio-pci\n") == "vfio-pci"
    assert sysfs.parse_numa_node("1\n") == 1
    with pytest.raises(ParseError, match="decimal"):
        sysfs.parse_numa_node("one")


def test_device_from_values_errors_name_the_file():
    with pytest.raises(ParseError, match=r"'class' is missing"):
        sysfs.device_from_values("0000:81:00.0", {"vendor": "0x10de", "device": "0x2335"})
    with pytest.raises(ParseError, match=r"0000:81:00.0/vendor: expected a hexadecimal"):
        sysfs.device_from_values("0000:81:00.0", {"vendor": "nvidia", "device": "0x2335", "class": "0x030200"})
    with pytest.raises(ParseError, match="not a PCI address"):
        sysfs.device_from_values("81:00", {})


def test_group_viability():
    gpu = sysfs.device_from_values(
        "81:00.0",
        {"vendor": "0x10de", "device": "0x2335", "class": "0x030200", "driver": "../vfio-pci", "iommu_group": "../81"},
    )
    assert gpu.bdf == "0000:81:00.0" and gpu.iommu_group == 81
    bridge = sysfs.device_from_values("0000:80:01.0", {"vendor": "0x8086", "device": "0x1234", "class": "0x060400"})
    audio = sysfs.device_from_values(
        "0000:81:00.1", {"vendor": "0x10de", "device": "0x22ba", "class": "0x040300", "driver": "snd_hda_intel"}
    )
    assert sysfs.group_viable([gpu, bridge])
    assert not sysfs.group_viable([gpu, audio])
    assert not sysfs.group_viable([])
