"""The kata lab's fake sysfs: its layout is what the kata checks and the doer read, and its emulator reacts to writes
as the kernel's PCI driver core does (and refuses what the kernel refuses)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cai_tui.lab.kata.sysfs import (
    CONSUMER_AUDIO_BDF,
    CONSUMER_GPU_BDF,
    LAB_GPU_BDF,
    LAB_GPU_GROUP,
    NO_IOMMU_GPU_BDF,
    VARIANTS,
    FakeSysfs,
    build_fake_sysfs,
)
from cai_tui.lab.kata.sysfs_devices import variant_devices


def write(fake: FakeSysfs, path: str, data: str) -> None:
    """``echo DATA > PATH`` under the fake root, one write, as the doer and a shell do it."""
    fd = os.open(fake.root / path.lstrip("/"), os.O_WRONLY | os.O_NONBLOCK | os.O_TRUNC)
    try:
        os.write(fd, (data + "\n").encode())
    finally:
        os.close(fd)


@pytest.fixture
def consumer(tmp_path: Path) -> Iterator[FakeSysfs]:
    with build_fake_sysfs(tmp_path / "root", "consumer") as fake:
        yield fake


echo = write


def test_layout_as_sysfs(tmp_path: Path) -> None:
    fake = build_fake_sysfs(tmp_path / "root", "lab")
    dev = fake.root / "sys/bus/pci/devices" / LAB_GPU_BDF
    assert os.readlink(dev) == f"../../../devices/pci0000:00/0000:00:01.0/{LAB_GPU_BDF}"
    assert (dev / "vendor").read_text() == "0x10de\n"
    assert (dev / "device").read_text() == "0x2335\n"
    assert (dev / "class").read_text() == "0x030200\n"
    assert (dev / "driver_override").read_text() == "(null)\n"
    assert (dev / "boot_vga").read_text() == "0\n"
    assert os.readlink(dev / "driver") == "../../../../bus/pci/drivers/nvidia"
    assert os.readlink(dev / "iommu_group") == f"../../../../kernel/iommu_groups/{LAB_GPU_GROUP}"
    assert sorted(os.listdir(fake.root / f"sys/kernel/iommu_groups/{LAB_GPU_GROUP}/devices")) == [
        "0000:00:01.0",
        LAB_GPU_BDF,
    ]
    assert (fake.root / f"sys/kernel/iommu_groups/{LAB_GPU_GROUP}/devices/{LAB_GPU_BDF}/vendor").read_text() == (
        "0x10de\n"
    )
    assert (fake.root / "sys/bus/pci/drivers/nvidia" / LAB_GPU_BDF / "device").read_text() == "0x2335\n"
    for f in ("drivers_probe", "drivers/vfio-pci/bind", "drivers/vfio-pci/unbind", "drivers/nvidia/unbind"):
        assert (fake.root / "sys/bus/pci" / f).is_fifo(), f
    assert sorted(os.listdir(fake.root / "dev/vfio")) == ["vfio"]
    assert "virtcca_cvm_host=1" in (fake.root / "proc/cmdline").read_text()
    assert fake.gpu_answers() == {"sysroot": str(fake.root), "bdf": LAB_GPU_BDF, "iommu_group": LAB_GPU_GROUP}


def test_variants(tmp_path: Path) -> None:
    for v in VARIANTS:
        fake = build_fake_sysfs(tmp_path / v, v)
        devices, iommu, vfio = variant_devices(v)
        assert (fake.root / "sys/bus/pci/drivers/vfio-pci").is_dir() is vfio
        assert bool(os.listdir(fake.root / "sys/kernel/iommu_groups")) is iommu
        assert sorted(os.listdir(fake.root / "sys/bus/pci/devices")) == sorted(d.bdf for d in devices)
    no_iommu = tmp_path / "no-iommu/sys/bus/pci/devices" / NO_IOMMU_GPU_BDF
    assert not (no_iommu / "iommu_group").exists() and (no_iommu / "device").read_text() == "0x2330\n"
    with pytest.raises(ValueError, match="unknown fake sysfs variant 'gpu'"):
        build_fake_sysfs(tmp_path / "x", "gpu")
    with pytest.raises(FileExistsError):
        build_fake_sysfs(tmp_path / "lab", "lab")


def test_override_unbind_probe_moves_the_device_and_the_group_node_follows(consumer: FakeSysfs) -> None:
    dev = f"/sys/bus/pci/devices/{CONSUMER_AUDIO_BDF}"
    echo(consumer, f"{dev}/driver_override", "vfio-pci")
    echo(consumer, "/sys/bus/pci/drivers_probe", CONSUMER_AUDIO_BDF)  # bound: drivers_probe leaves it alone
    consumer.settle()
    assert consumer.driver_of(CONSUMER_AUDIO_BDF) == "snd_hda_intel"
    echo(consumer, "/sys/bus/pci/drivers/snd_hda_intel/unbind", CONSUMER_AUDIO_BDF)
    consumer.settle()
    assert consumer.driver_of(CONSUMER_AUDIO_BDF) is None
    assert not (consumer.root / f"sys/bus/pci/drivers/snd_hda_intel/{CONSUMER_AUDIO_BDF}").exists()
    echo(consumer, "/sys/bus/pci/drivers_probe", CONSUMER_AUDIO_BDF)
    consumer.settle()
    assert consumer.driver_of(CONSUMER_AUDIO_BDF) == "vfio-pci"
    assert (consumer.root / f"sys/bus/pci/drivers/vfio-pci/{CONSUMER_AUDIO_BDF}").is_symlink()
    # vfio creates the group's node with its first device (viability is QEMU's question)
    assert sorted(os.listdir(consumer.root / "dev/vfio")) == ["17", "vfio"]
    # clearing the override: the kernel shows (null) again; the device stays where it is
    echo(consumer, f"{dev}/driver_override", "")
    consumer.settle()
    assert consumer.override_of(CONSUMER_AUDIO_BDF) == "(null)\n"
    echo(consumer, "/sys/bus/pci/drivers/vfio-pci/unbind", CONSUMER_AUDIO_BDF)
    echo(consumer, "/sys/bus/pci/drivers_probe", CONSUMER_AUDIO_BDF)  # no override: the native driver again
    consumer.settle()
    assert consumer.driver_of(CONSUMER_AUDIO_BDF) == "snd_hda_intel"
    assert sorted(os.listdir(consumer.root / "dev/vfio")) == ["vfio"]
    assert consumer.journal == [
        (f"{dev}/driver_override", "vfio-pci\n"),
        ("/sys/bus/pci/drivers_probe", f"{CONSUMER_AUDIO_BDF}\n"),
        ("/sys/bus/pci/drivers/snd_hda_intel/unbind", f"{CONSUMER_AUDIO_BDF}\n"),
        ("/sys/bus/pci/drivers_probe", f"{CONSUMER_AUDIO_BDF}\n"),
        (f"{dev}/driver_override", "\n"),
        ("/sys/bus/pci/drivers/vfio-pci/unbind", f"{CONSUMER_AUDIO_BDF}\n"),
        ("/sys/bus/pci/drivers_probe", f"{CONSUMER_AUDIO_BDF}\n"),
    ]
    assert consumer.errors() == []


def test_as_strict_as_the_kernel(consumer: FakeSysfs) -> None:
    gpu = CONSUMER_GPU_BDF

    def echo(fake: FakeSysfs, path: str, data: str) -> None:  # one write at a time, as a kernel serialises them
        write(fake, path, data)
        fake.settle()

    # bind while bound: -EBUSY; unbind from a driver it is not on: -ENODEV
    echo(consumer, "/sys/bus/pci/drivers/nvidia/bind", gpu)
    echo(consumer, "/sys/bus/pci/drivers/snd_hda_intel/unbind", gpu)
    consumer.settle()
    assert consumer.driver_of(gpu) == "nvidia"
    # an override naming a driver that is not loaded: drivers_probe binds nothing
    echo(consumer, f"/sys/bus/pci/devices/{gpu}/driver_override", "nouveau")
    echo(consumer, "/sys/bus/pci/drivers/nvidia/unbind", gpu)
    echo(consumer, "/sys/bus/pci/drivers_probe", gpu)
    consumer.settle()
    assert consumer.driver_of(gpu) is None
    # vfio-pci's bind does not match a device whose override names another driver: -ENODEV
    echo(consumer, "/sys/bus/pci/drivers/vfio-pci/bind", gpu)
    # nor does vfio-pci match without an override (empty ID table)
    echo(consumer, f"/sys/bus/pci/devices/{gpu}/driver_override", "")
    echo(consumer, "/sys/bus/pci/drivers/vfio-pci/bind", gpu)
    echo(consumer, "/sys/bus/pci/drivers_probe", "0000:99:00.0")
    echo(consumer, "/sys/bus/pci/drivers/vfio-pci/new_id", "10de 2684")
    consumer.settle()
    assert consumer.driver_of(gpu) is None
    assert consumer.errors() == [
        f"error: write {gpu} > /sys/bus/pci/drivers/nvidia/bind: -EBUSY ({gpu} is bound to nvidia)",
        f"error: write {gpu} > /sys/bus/pci/drivers/snd_hda_intel/unbind: -ENODEV ({gpu} is bound to nvidia)",
        f"error: write {gpu} > /sys/bus/pci/drivers/vfio-pci/bind: -ENODEV (vfio-pci does not match {gpu})",
        f"error: write {gpu} > /sys/bus/pci/drivers/vfio-pci/bind: -ENODEV (vfio-pci does not match {gpu})",
        "error: write 0000:99:00.0 > /sys/bus/pci/drivers_probe: -ENODEV (no such device)",
        "error: write '10de 2684\\n' > /sys/bus/pci/drivers/vfio-pci/new_id: -ENODEV (not a PCI address)",
    ]
    assert f"{gpu}: drivers_probe: no driver matches (nouveau not loaded)" in consumer.log
    assert consumer.log_path.read_text().splitlines() == consumer.log
    # bind by hand to the native driver works on an unbound device
    echo(consumer, "/sys/bus/pci/drivers/nvidia/bind", gpu)
    consumer.settle()
    assert consumer.driver_of(gpu) == "nvidia"


def test_vfio_probe_fails_without_an_iommu_group(tmp_path: Path) -> None:
    with build_fake_sysfs(tmp_path / "root", "no-iommu") as fake:
        echo(fake, f"/sys/bus/pci/devices/{NO_IOMMU_GPU_BDF}/driver_override", "vfio-pci")
        echo(fake, "/sys/bus/pci/drivers/nvidia/unbind", NO_IOMMU_GPU_BDF)
        echo(fake, "/sys/bus/pci/drivers_probe", NO_IOMMU_GPU_BDF)
        fake.settle()
        assert fake.driver_of(NO_IOMMU_GPU_BDF) is None
        assert fake.errors() == [
            f"error: vfio-pci {NO_IOMMU_GPU_BDF}: probe with driver vfio-pci failed with error -22"
        ]
        assert sorted(os.listdir(fake.root / "dev/vfio")) == ["vfio"]


def test_bridges_are_not_taken_by_vfio_pci(tmp_path: Path) -> None:
    with build_fake_sysfs(tmp_path / "root", "lab") as fake:
        echo(fake, "/sys/bus/pci/devices/0000:00:01.0/driver_override", "vfio-pci")
        echo(fake, "/sys/bus/pci/drivers/pcieport/unbind", "0000:00:01.0")
        echo(fake, "/sys/bus/pci/drivers_probe", "0000:00:01.0")
        fake.settle()
        assert fake.driver_of("0000:00:01.0") is None
        assert fake.errors() == ["error: vfio-pci 0000:00:01.0: probe with driver vfio-pci failed with error -22"]


def test_snapshot_and_stopped_emulator(tmp_path: Path) -> None:
    fake = build_fake_sysfs(tmp_path / "root", "lab")
    snap = fake.snapshot()
    assert snap["/sys/bus/pci/drivers_probe"] == "<fifo>"
    assert snap[f"/sys/bus/pci/devices/{LAB_GPU_BDF}"].startswith("link -> ")
    assert snap[f"/sys/devices/pci0000:00/0000:00:01.0/{LAB_GPU_BDF}/driver_override"] == "(null)\n"
    with fake:
        echo(fake, f"/sys/bus/pci/devices/{LAB_GPU_BDF}/driver_override", "vfio-pci")
        fake.settle()
        assert fake.snapshot() != snap
        echo(fake, f"/sys/bus/pci/devices/{LAB_GPU_BDF}/driver_override", "")
        fake.settle()
    assert fake.snapshot() == snap
    # nobody reads the pipes once stopped: a writer fails at once (ENXIO) instead of hanging
    with pytest.raises(OSError) as e:
        echo(fake, "/sys/bus/pci/drivers_probe", LAB_GPU_BDF)
    assert e.value.errno == 6
