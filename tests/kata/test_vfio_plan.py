"""``cai-tui kata vfio plan`` on the kata lab's fake sysfs: each GPU with its group and members, the writes it plans,
and exit 1 with the blocking reason and its fix when binding cannot work; the action's plan line and undo."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cai_tui.actions.registry import get as get_action
from cai_tui.cli.main import app
from cai_tui.lab.kata.sysfs import (
    CONSUMER_AUDIO_BDF,
    CONSUMER_GPU_BDF,
    LAB_GPU_BDF,
    NO_IOMMU_GPU_BDF,
    NONVIABLE_GPU_BDF,
    NONVIABLE_NIC_BDF,
    build_fake_sysfs,
)
from cai_tui.recipe import load_recipe

runner = CliRunner()


def recipe_file(tmp_path: Path, sysroot: Path, bdf: str | None = None) -> Path:
    f = tmp_path / "kata.yaml"
    gpu = f"    sysroot: {sysroot}\n" + (f"    bdf: '{bdf}'\n" if bdf else "")
    f.write_text(f"schema_version: 1\nflow: kata-virtcca\nname: vfio-test\nanswers:\n  gpu:\n{gpu}")
    return f


def plan(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, ["kata", "vfio", "plan", *args])
    return r.exit_code, r.output


def test_lab_gpu_with_its_bridge(tmp_path: Path) -> None:
    fake = build_fake_sysfs(tmp_path / "root", "lab")
    code, out = plan("--sysroot", str(fake.root))
    assert code == 0, out
    assert out.splitlines() == [
        f"sysroot: {fake.root} (GPUs by sysfs scan)",
        f"GPU {LAB_GPU_BDF} [10de:2335] 3D controller → nvidia",
        "  IOMMU group 81 (/sys/kernel/iommu_groups/81/devices), 2 member(s):",
        "    0000:00:01.0 [19e5:a120] PCI bridge → pcieport: bridge, left alone",
        f"    {LAB_GPU_BDF} [10de:2335] 3D controller → nvidia: bind to vfio-pci (now nvidia)",
        f"  write: echo vfio-pci > /sys/bus/pci/devices/{LAB_GPU_BDF}/driver_override",
        f"  write: echo {LAB_GPU_BDF} > /sys/bus/pci/drivers/nvidia/unbind",
        f"  write: echo {LAB_GPU_BDF} > /sys/bus/pci/drivers_probe",
        "  then: /dev/vfio/81 appears (VFIO=/dev/vfio/81)",
        "note: unbinding nvidia waits for its users: stop nvidia-persistenced, nvidia-fabricmanager and any "
        "container using the GPU first (`fuser -v /dev/nvidia*`)",
        "viable: apply binds the above",
    ]


def test_consumer_gpu_plans_its_audio_function_too_json(tmp_path: Path) -> None:
    fake = build_fake_sysfs(tmp_path / "root", "consumer")
    code, out = plan("--sysroot", str(fake.root), "--bdf", CONSUMER_GPU_BDF.upper(), "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["viable"] is True and doc["found_by"] == "--bdf" and doc["blockers"] == []
    (group,) = doc["groups"]
    assert (group["gpu"], group["group"], group["node"]) == (CONSUMER_GPU_BDF, 17, "/dev/vfio/17")
    assert [(m["bdf"], m["driver"], m["action"]) for m in group["members"]] == [
        (CONSUMER_GPU_BDF, "nvidia", "bind"),
        (CONSUMER_AUDIO_BDF, "snd_hda_intel", "bind"),
    ]
    assert group["writes"] == [
        {"path": f"/sys/bus/pci/devices/{CONSUMER_GPU_BDF}/driver_override", "data": "vfio-pci"},
        {"path": "/sys/bus/pci/drivers/nvidia/unbind", "data": CONSUMER_GPU_BDF},
        {"path": "/sys/bus/pci/drivers_probe", "data": CONSUMER_GPU_BDF},
        {"path": f"/sys/bus/pci/devices/{CONSUMER_AUDIO_BDF}/driver_override", "data": "vfio-pci"},
        {"path": "/sys/bus/pci/drivers/snd_hda_intel/unbind", "data": CONSUMER_AUDIO_BDF},
        {"path": "/sys/bus/pci/drivers_probe", "data": CONSUMER_AUDIO_BDF},
    ]


def test_group_with_a_host_nic_is_refused_naming_it(tmp_path: Path) -> None:
    fake = build_fake_sysfs(tmp_path / "root", "non-viable")
    code, out = plan("--sysroot", str(fake.root))
    assert code == 1
    assert (
        f"    {NONVIABLE_NIC_BDF} [8086:1572] Ethernet controller → i40e: CANNOT BE TAKEN: a network controller: "
        "the host's network may run on it (Ethernet controller on i40e); interfaces: ens4f0 up"
    ) in out.splitlines()
    assert (
        f"blocked: IOMMU group 40 of {NONVIABLE_GPU_BDF} holds {NONVIABLE_NIC_BDF} [8086:1572], which cannot be "
        "taken from the host: a network controller"
    ) in out
    assert "  fix: pass through a GPU whose group has no host-critical device" in out
    assert "then: /dev/vfio/40" not in out and "viable: apply" not in out


def test_every_gpu_is_planned_and_one_bad_group_blocks(tmp_path: Path) -> None:
    fake = build_fake_sysfs(tmp_path / "root", "all")
    code, out = plan("--sysroot", str(fake.root))
    assert code == 1
    assert f"note: 3 NVIDIA GPUs found ({LAB_GPU_BDF}, {CONSUMER_GPU_BDF}, {NONVIABLE_GPU_BDF})" in out
    assert [ln for ln in out.splitlines() if ln.startswith("blocked:")] == [
        f"blocked: IOMMU group 40 of {NONVIABLE_GPU_BDF} holds {NONVIABLE_NIC_BDF} [8086:1572], which cannot be "
        "taken from the host: a network controller: the host's network may run on it (Ethernet controller on "
        "i40e); interfaces: ens4f0 up"
    ]
    # choosing a viable GPU plans only that one
    code, out = plan("--sysroot", str(fake.root), "--bdf", CONSUMER_GPU_BDF)
    assert code == 0 and "GPUs by --bdf" in out and "41:00" not in out


def test_boot_vga_and_storage_are_host_critical(tmp_path: Path) -> None:
    fake = build_fake_sysfs(tmp_path / "root", "lab")
    code, out = plan("--sysroot", str(fake.root), "--bdf", "0000:02:00.0")
    assert code == 1
    assert (
        "blocked: 0000:02:00.0 itself cannot be taken from the host: the boot VGA device (boot_vga = 1): the host's "
        "console runs on it"
    ) in out
    assert "note: 0000:02:00.0 [1a03:2000] is not an NVIDIA function" in out
    code, out = plan("--sysroot", str(fake.root), "--bdf", "0000:03:00.0")
    assert code == 1
    assert (
        "blocked: 0000:03:00.0 itself cannot be taken from the host: a storage controller: the host's disks may be "
        "on it (Non-Volatile memory controller on nvme); disks: nvme0n1"
    ) in out


def test_no_iommu_group(tmp_path: Path) -> None:
    fake = build_fake_sysfs(tmp_path / "root", "no-iommu")
    code, out = plan("--sysroot", str(fake.root))
    assert code == 1
    assert (
        f"blocked: {NO_IOMMU_GPU_BDF} has no IOMMU group (no /sys/bus/pci/devices/{NO_IOMMU_GPU_BDF}/iommu_group "
        "link; /sys/kernel/iommu_groups/ is empty): the IOMMU is off"
    ) in out
    assert "  fix: enable the SMMU in the BIOS and boot the host kernel with `virtcca_cvm_host=1" in out


def test_vfio_pci_not_loaded(tmp_path: Path) -> None:
    fake = build_fake_sysfs(tmp_path / "root", "no-vfio")
    code, out = plan("--sysroot", str(fake.root))
    assert code == 1
    assert (
        f"blocked: the vfio-pci driver is not loaded (/sys/bus/pci/drivers/vfio-pci is absent under {fake.root})"
    ) in out
    assert "  fix: `modprobe vfio-pci` (a kernel built with CONFIG_VFIO" in out


def test_bad_input_exits_2(tmp_path: Path) -> None:
    fake = build_fake_sysfs(tmp_path / "root", "lab")
    code, out = plan("--sysroot", str(fake.root), "--bdf", "01:00")
    assert code == 2 and "--bdf '01:00'" in out
    code, out = plan("--sysroot", str(fake.root), "--bdf", "0000:99:00.0")
    assert code == 2 and "--bdf names 0000:99:00.0, which the host does not have" in out
    code, out = plan("--sysroot", str(tmp_path / "nope"))
    assert code == 2 and "not a directory" in out
    code, out = plan("--sysroot", str(tmp_path))  # a directory without sysfs
    assert code == 1 and "/sys/bus/pci/devices is absent" in out


def test_recipe_answers(tmp_path: Path) -> None:
    fake = build_fake_sysfs(tmp_path / "root", "consumer")
    code, out = plan("--recipe", str(recipe_file(tmp_path, fake.root, CONSUMER_GPU_BDF)))
    assert code == 0, out
    assert out.startswith(f"sysroot: {fake.root} (GPUs by answers.gpu.bdf)")
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nflow: kata-virtcca\nname: x\nanswers:\n  gpu:\n    bdf: zz\n")
    code, out = plan("--recipe", str(bad))
    assert code == 2 and "gpu.bdf" in out


def test_action_plan_line_and_undo(tmp_path: Path) -> None:
    path = recipe_file(tmp_path, tmp_path, LAB_GPU_BDF)
    spec = get_action("gpu.bind_vfio")  # the registry first: the kata actions are imported through it
    assert spec is not None and spec.flow == "kata-virtcca" and spec.plan.__name__ == "plan_bind_vfio"
    (step,) = spec.plan(load_recipe(path))
    assert step.argv == ["cai-tui", "kata", "vfio", "apply", "--recipe", str(path), "--yes"]
    assert step.undo == ("cai-tui", "kata", "vfio", "undo", "--recipe", str(path))
    assert step.where == "host" and step.runnable
    assert step.changes.startswith(f"hands the GPU {LAB_GPU_BDF} and the other members of its IOMMU group")
    assert not step.changes.startswith("nothing")
