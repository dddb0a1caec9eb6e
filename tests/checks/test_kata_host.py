"""The kata-virtcca host checks (host.arch, kernel.*, iommu.enabled, gpu.*, vfio.device_node) on sysroot trees.

Each tree reproduces a real machine's layout: /sys/devices/… holding the device files, /sys/bus/pci/devices/<BDF> links
into it, ``driver`` → ``bus/pci/drivers/<name>`` and ``iommu_group`` → ``kernel/iommu_groups/<N>`` links written as the
kernel writes them (relative), /sys/kernel/iommu_groups/<N>/devices/<BDF> links back, /dev/vfio/<N>, /proc/config.gz
made with gzip, /boot/config-<release>, /lib/modules/<release>/…. The H100 tree is built from the real capture in
tests/fixtures/captures/h100-vm-2026-11-22 (no IOMMU, GPU on nvidia, CONFIG_VFIO not set).
"""

from __future__ import annotations

import asyncio
import gzip
import os
import platform
import shutil
from pathlib import Path
from typing import Any

from cai_tui.checks.base import CheckContext
from cai_tui.checks.registry import all_checks
from cai_tui.checks.runner import CheckOutcome, run_checks
from cai_tui.recipe.model import KataRecipe
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.local import LocalTarget
from cai_tui.targets.sysroot import SysrootTarget

from .checklib import describe, expect

CAPTURE = Path(__file__).resolve().parents[1] / "fixtures/captures/h100-vm-2026-11-22"
RELEASE = "6.6.0-28.0.0.34.oe2403.aarch64"
GPU = "0000:01:00.0"
AUDIO = "0000:01:00.1"
PORT = "0000:00:01.0"
NIC = "0000:7d:00.0"
GROUP = 81
VIRTCCA_CMDLINE = (
    f"BOOT_IMAGE=/vmlinuz-{RELEASE} root=/dev/mapper/openeuler-root ro rd.lvm.lv=openeuler/root "
    "console=tty0 iommu.passthrough=0 virtcca_cvm_host=1 arm_smmu_v3.disable_ecmdq=1 vfio_pci.disable_idle_d3=1\n"
)
VFIO_CONFIG = (
    "#\n# Automatically generated file; DO NOT EDIT.\n# Linux/arm64 6.6.0 Kernel Configuration\n#\n"
    "CONFIG_IOMMU_SUPPORT=y\nCONFIG_ARM_SMMU_V3=y\nCONFIG_VFIO=m\nCONFIG_VFIO_GROUP=y\n"
    "CONFIG_VFIO_CONTAINER=y\nCONFIG_VFIO_IOMMU_TYPE1=m\n# CONFIG_VFIO_NOIOMMU is not set\nCONFIG_VFIO_VIRQFD=y\n"
    "CONFIG_VFIO_PCI_CORE=m\nCONFIG_VFIO_PCI_MMAP=y\nCONFIG_VFIO_PCI_INTX=y\nCONFIG_VFIO_PCI=m\n"
    'CONFIG_LOCALVERSION=""\n'
)

ALL: tuple[str, ...] = (
    "host.arch",
    "kernel.version",
    "kernel.config",
    "iommu.enabled",
    "gpu.iommu_group",
    "gpu.vfio_bound",
    "vfio.device_node",
)


def capture(name: str) -> str:
    """A capture file without its ``# $ command`` header and ``# rc=N`` trailer."""
    lines = (CAPTURE / name).read_text().splitlines(keepends=True)
    return "".join(ln for ln in lines if not ln.startswith(("# $ ", "# rc=")))


class HostTree:
    """A machine's files under ``root``, with sysfs links as the kernel makes them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def p(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def file(self, path: str, text: str | bytes = "", mode: int = 0o644) -> Path:
        f = self.p(path)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(text if isinstance(text, bytes) else text.encode())
        f.chmod(mode)
        return f

    def link(self, path: str, target: str) -> None:
        """A relative link at ``path`` to the absolute in-tree ``target`` (how sysfs links look)."""
        at = self.p(path)
        at.parent.mkdir(parents=True, exist_ok=True)
        if at.is_symlink():
            at.unlink()
        os.symlink(os.path.relpath(self.p(target), at.parent), at)

    def remove(self, path: str) -> None:
        at = self.p(path)
        if at.is_symlink() or at.is_file():
            at.unlink()
        elif at.is_dir():
            shutil.rmtree(at)

    def dev_dir(self, bdf: str) -> str:
        return f"/sys/devices/{self._parent_of(bdf)}/{bdf}"

    def pci(
        self,
        bdf: str,
        parent: str,
        vendor: str,
        device: str,
        cls: str,
        driver: str | None,
        group: int | None,
        override: str = "(null)",
    ) -> None:
        d = f"/sys/devices/{parent}/{bdf}"
        for name, value in (("vendor", vendor), ("device", device), ("class", cls), ("driver_override", override)):
            self.file(f"{d}/{name}", value + "\n")
        self.file(f"{d}/numa_node", "0\n")
        self.link(f"/sys/bus/pci/devices/{bdf}", d)
        self.bind(bdf, driver)
        if group is not None:
            self.link(f"{d}/iommu_group", f"/sys/kernel/iommu_groups/{group}")
            self.link(f"/sys/kernel/iommu_groups/{group}/devices/{bdf}", d)
            self.file(f"/sys/kernel/iommu_groups/{group}/type", "DMA\n")

    def bind(self, bdf: str, driver: str | None) -> None:
        d = self.dev_dir(bdf)
        for old in self.p("/sys/bus/pci/drivers").glob(f"*/{bdf}") if self.p("/sys/bus/pci/drivers").is_dir() else []:
            old.unlink()
        self.remove(f"{d}/driver")
        if driver is not None:
            self.file(f"/sys/bus/pci/drivers/{driver}/bind", "", 0o200)
            self.file(f"/sys/bus/pci/drivers/{driver}/unbind", "", 0o200)
            self.link(f"{d}/driver", f"/sys/bus/pci/drivers/{driver}")
            self.link(f"/sys/bus/pci/drivers/{driver}/{bdf}", d)

    def _parent_of(self, bdf: str) -> str:
        target = os.path.realpath(self.p(f"/sys/bus/pci/devices/{bdf}"))
        rel = os.path.relpath(target, self.p("/sys/devices"))
        return rel.rsplit("/", 1)[0]


def arm_host(root: Path) -> HostTree:
    """A healthy virtCCA host: openEuler OLK-6.6 kernel, SMMU on, H100 on vfio-pci in a viable group 81."""
    t = HostTree(root)
    t.file("/proc/sys/kernel/arch", "aarch64\n")
    t.file("/proc/sys/kernel/osrelease", RELEASE + "\n")
    t.file("/proc/cmdline", VIRTCCA_CMDLINE)
    t.file("/proc/config.gz", gzip.compress(VFIO_CONFIG.encode()))
    t.file(
        "/etc/os-release",
        'NAME="openEuler"\nVERSION="24.03 (LTS)"\nID="openEuler"\nPRETTY_NAME="openEuler 24.03 (LTS)"\n',
    )
    # a root port and, behind it, the GPU; both in group 81 (the port is a bridge: allowed in a viable group)
    t.pci(PORT, "pci0000:00", "0x19e5", "0xa120", "0x060400", "pcieport", GROUP)
    t.pci(GPU, f"pci0000:00/{PORT}", "0x10de", "0x2330", "0x030200", "vfio-pci", GROUP, override="vfio-pci")
    t.pci(NIC, "pci0000:7c/0000:7c:00.0", "0x19e5", "0xa222", "0x020000", "hns3", 5)
    t.file("/sys/module/vfio/initstate", "live\n")
    t.file("/sys/module/vfio_pci/initstate", "live\n")
    t.file("/sys/module/vfio_iommu_type1/initstate", "live\n")
    smmu = "/sys/devices/platform/arm-smmu-v3.0.auto/iommu/smmu3.0x0000000100000000"
    t.file(f"{smmu}/uevent", "")
    t.link("/sys/class/iommu/smmu3.0x0000000100000000", smmu)
    t.file("/dev/vfio/vfio", "")
    t.file(f"/dev/vfio/{GROUP}", "")
    return t


def h100_capture_host(root: Path) -> HostTree:
    """The lent H100 VM exactly as captured: no IOMMU groups, no iommu_group link, GPU on nvidia, CONFIG_VFIO unset."""
    t = HostTree(root)
    uname = capture("uname.txt").split()
    t.file("/proc/sys/kernel/osrelease", uname[2] + "\n")
    t.file("/proc/sys/kernel/arch", uname[-2] + "\n")
    config = [ln for ln in capture("kernel-config.txt").splitlines(keepends=True) if "CONFIG_" in ln]
    assert "# CONFIG_VFIO is not set\n" in config, "the capture changed"
    t.file("/proc/config.gz", gzip.compress("".join(config).encode()))
    t.file("/proc/cmdline", "console=ttyS0 reboot=k panic=1 nomodule\n")
    t.p("/sys/kernel/iommu_groups").mkdir(parents=True)  # `ls /sys/kernel/iommu_groups/` printed nothing
    t.p("/sys/class/iommu").mkdir(parents=True)
    values: dict[str, str] = {}
    bdf = ""
    for line in capture("sysfs-pci.txt").splitlines():
        if line.startswith("== "):
            bdf = line.rsplit("/", 1)[-1]
        elif "=" in line:
            key, _, value = line.partition("=")
            values[key] = value
    assert bdf == "0000:00:06.0" and values["iommu_group"] == "", "the capture changed"
    d = f"/sys/devices/pci0000:00/{bdf}"
    for key in ("vendor", "device", "class", "subsystem_vendor", "subsystem_device", "numa_node", "driver_override"):
        t.file(f"{d}/{key}", values[key] + "\n")
    t.link(f"/sys/bus/pci/devices/{bdf}", d)
    os.symlink(values["driver"], t.p(f"{d}/driver"))  # the captured link text, verbatim
    t.file("/sys/bus/pci/drivers/nvidia/bind", "", 0o200)
    assert os.path.realpath(t.p(f"{d}/driver")) == str(t.p("/sys/bus/pci/drivers/nvidia"))
    return t


def recipe(**gpu: Any) -> KataRecipe:
    return KataRecipe.model_validate(
        {"flow": "kata-virtcca", "name": "kata-test", "answers": {"gpu": gpu}, "targets": {"host": "local"}}
    )


def run(
    host: Any, only: tuple[str, ...] = ALL, rec: KataRecipe | None = None, sysroot: str | None = None
) -> dict[str, CheckOutcome]:
    target = host if not isinstance(host, HostTree) else SysrootTarget(host.root)
    ctx = CheckContext(
        recipe=rec if rec is not None else recipe(),
        targets={"host": target},
        redactor=Redactor(),
        timeout=10.0,
        sysroot=sysroot,
    )
    specs = [s for cid, s in all_checks().items() if cid in only]
    assert len(specs) == len(only), f"not registered: {set(only) - {s.id for s in specs}}"
    return {o.id: o for o in asyncio.run(run_checks(specs, ctx, timeout=10.0))}


def observed(result: Any) -> str:
    return "\n".join(f"{e.source} | {e.observed}" for e in result.evidence)


# --------------------------------------------------------------------------------------------- the good host


def test_healthy_arm_host_passes_every_host_check(tmp_path: Path) -> None:
    out = run(arm_host(tmp_path / "host"), rec=recipe(iommu_group=GROUP))
    for cid in ALL:
        expect(out, cid, "pass")
    assert out["host.arch"].result.summary.startswith("aarch64")
    assert "an openEuler build (oe2403)" in out["kernel.version"].result.summary
    cfg = out["kernel.config"].result
    assert "CONFIG_VFIO=m" in cfg.summary and "/proc/config.gz" in cfg.summary
    assert "/proc/config.gz: CONFIG_VFIO_PCI=m" in observed(cfg)
    assert "smmu3.0x0000000100000000" in out["iommu.enabled"].result.summary
    assert "note" not in out["iommu.enabled"].result.summary  # every virtCCA parameter is there
    grp = out["gpu.iommu_group"].result
    assert f"{GPU} is in IOMMU group {GROUP}, viable (2 member(s))" == grp.summary
    assert {m["bdf"]: m["driver"] for m in grp.data["gpus"][0]["members"]} == {PORT: "pcieport", GPU: "vfio-pci"}
    assert f"../../../../kernel/iommu_groups/{GROUP}" in observed(grp)  # the link text as sysfs has it
    assert out["gpu.vfio_bound"].result.summary == f"{GPU} is bound to vfio-pci"
    assert out["vfio.device_node"].result.summary == f"/dev/vfio/{GROUP} exists ({GPU})"
    for o in out.values():
        assert all(e.target == f"sysroot:{tmp_path / 'host'}" for e in o.result.evidence), o.id


# --------------------------------------------------------------------------------------------- the H100 capture


def test_h100_capture_without_iommu_fails_with_the_right_faq_ids(tmp_path: Path) -> None:
    out = run(h100_capture_host(tmp_path / "h100"))
    res = expect(out, "host.arch", "warn", "host-not-arm")
    assert "x86_64" in res.summary and "/proc/sys/kernel/arch | x86_64" in observed(res)
    res = expect(out, "kernel.version", "warn", "kernel-config-missing")
    assert "6.18.44-fc-v657-gpu is 6.18, not 6.6" in res.summary
    res = expect(out, "kernel.config", "fail", "kernel-config-missing")
    assert "/proc/config.gz: # CONFIG_VFIO is not set" in observed(res)
    assert res.data["options"]["CONFIG_VFIO_PCI"]["state"] == "n"
    res = expect(out, "iommu.enabled", "fail", "vfio-no-iommu-group")
    assert "ls /sys/kernel/iommu_groups/ | (empty)" in observed(res)
    assert "virtcca_cvm_host=1" in res.summary  # the missing virtCCA command line is named
    res = expect(out, "gpu.iommu_group", "fail", "vfio-no-iommu-group")
    assert "0000:00:06.0 has no IOMMU group" in res.summary
    assert "readlink /sys/bus/pci/devices/0000:00:06.0/iommu_group | (no link)" in observed(res)
    res = expect(out, "gpu.vfio_bound", "fail", "vfio-device-missing")
    assert "bound to nvidia, not vfio-pci" in res.summary
    assert "../../../bus/pci/drivers/nvidia" in observed(res)
    assert "echo vfio-pci > /sys/bus/pci/devices/0000:00:06.0/driver_override" in res.fix.text
    assert "echo 0000:00:06.0 > /sys/bus/pci/devices/0000:00:06.0/driver/unbind" in res.fix.text
    res = expect(out, "vfio.device_node", "fail", "vfio-no-iommu-group")
    assert "ls /dev/vfio | (absent)" in observed(res)


# --------------------------------------------------------------------------------------------- broken variants


def test_group_with_a_second_member_on_another_driver_is_not_viable(tmp_path: Path) -> None:
    t = arm_host(tmp_path / "host")
    t.pci(AUDIO, f"pci0000:00/{PORT}", "0x10de", "0x22a3", "0x040300", "snd_hda_intel", GROUP)
    out = run(t, ("gpu.iommu_group", "gpu.vfio_bound", "vfio.device_node"))
    res = expect(out, "gpu.iommu_group", "fail", "vfio-group-not-viable")
    assert f"IOMMU group {GROUP} of {GPU} is not viable: {AUDIO} → snd_hda_intel" == res.summary
    assert f"{AUDIO} [10de:22a3] Audio device → snd_hda_intel" in observed(res)
    assert f"echo {AUDIO} > /sys/bus/pci/devices/{AUDIO}/driver/unbind" in res.fix.text
    expect(out, "gpu.vfio_bound", "pass")  # the GPU itself is on vfio-pci
    expect(out, "vfio.device_node", "pass")
    t.bind(AUDIO, "vfio-pci")  # the fix
    expect(run(t, ("gpu.iommu_group",)), "gpu.iommu_group", "pass")


def test_gpu_still_on_nvidia(tmp_path: Path) -> None:
    t = arm_host(tmp_path / "host")
    t.bind(GPU, "nvidia")
    t.file(f"{t.dev_dir(GPU)}/driver_override", "(null)\n")
    t.remove(f"/dev/vfio/{GROUP}")  # the node only exists while a member is on vfio-pci
    out = run(t, ("gpu.iommu_group", "gpu.vfio_bound", "vfio.device_node"))
    res = expect(out, "gpu.vfio_bound", "fail", "vfio-device-missing")
    assert res.summary == f"{GPU} is bound to nvidia, not vfio-pci"
    assert f"readlink /sys/bus/pci/devices/{GPU}/driver | ../../../../bus/pci/drivers/nvidia" in observed(res)
    assert "modprobe vfio-pci" in res.fix.text and f"echo {GPU} > /sys/bus/pci/drivers_probe" in res.fix.text
    res = expect(out, "gpu.iommu_group", "fail", "vfio-group-not-viable")
    assert f"{GPU} → nvidia" in res.summary
    res = expect(out, "vfio.device_node", "fail", "vfio-device-missing")
    assert f"/dev/vfio/{GROUP} does not exist: the GPU is bound to nvidia" in res.summary
    assert "ls /dev/vfio | vfio" in observed(res)


def test_vfio_probe_failure_and_missing_node(tmp_path: Path) -> None:
    t = arm_host(tmp_path / "host")
    t.remove(f"/dev/vfio/{GROUP}")
    res = expect(run(t, ("vfio.device_node",)), "vfio.device_node", "fail", "vfio-device-missing")
    assert "the GPU is on vfio-pci but the node is missing" in res.summary
    t.bind(GPU, None)  # driver_override says vfio-pci, but the probe left it without a driver
    res = expect(run(t, ("gpu.vfio_bound",)), "gpu.vfio_bound", "fail", "vfio-probe-failed")
    assert "driver_override=vfio-pci but no driver" in res.summary
    assert "/sys/bus/pci/devices/0000:01:00.0/driver_override | vfio-pci" in observed(res)


def test_recipe_group_differs_from_the_real_one(tmp_path: Path) -> None:
    t = arm_host(tmp_path / "host")
    out = run(t, ("gpu.iommu_group", "vfio.device_node"), rec=recipe(iommu_group=17))
    res = expect(out, "gpu.iommu_group", "warn", "vfio-device-missing")
    assert f"the recipe says iommu_group 17, the real group is {GROUP}" in res.summary
    assert f"Set answers.gpu.iommu_group to {GROUP}" in res.fix.text
    res = expect(out, "vfio.device_node", "warn", "vfio-device-missing")
    assert "/dev/vfio/17 does not exist" in res.fix.text


def test_recipe_bdf_is_used_and_checked(tmp_path: Path) -> None:
    t = arm_host(tmp_path / "host")
    expect(run(t, ("gpu.vfio_bound",), rec=recipe(bdf=GPU)), "gpu.vfio_bound", "pass")
    res = expect(run(t, ("gpu.vfio_bound",), rec=recipe(bdf="0000:02:00.0")), "gpu.vfio_bound", "fail")
    assert res.fix is not None and "lspci -nn -D | grep -i nvidia" in res.fix.text
    assert "no PCI device 0000:02:00.0" in res.summary
    t.remove(f"/sys/bus/pci/devices/{GPU}")  # no NVIDIA device left to find
    res = expect(run(t, ("gpu.iommu_group",)), "gpu.iommu_group", "skip")
    assert "no NVIDIA GPU" in res.summary and "among the 2 devices" in res.summary


# --------------------------------------------------------------------------------------------- kernel config sources


def test_kernel_config_fallback_order_and_not_set_line(tmp_path: Path) -> None:
    t = arm_host(tmp_path / "host")
    t.remove("/proc/config.gz")
    t.file(f"/boot/config-{RELEASE}", VFIO_CONFIG.replace("CONFIG_VFIO_PCI=m", "# CONFIG_VFIO_PCI is not set"))
    res = expect(run(t, ("kernel.config",)), "kernel.config", "fail", "kernel-config-missing")
    assert res.summary == f"CONFIG_VFIO_PCI disabled: /boot/config-{RELEASE}: # CONFIG_VFIO_PCI is not set"
    assert "/proc/config.gz: absent" in observed(res)
    # /boot is read before /lib/modules/<release>/config: the good config there does not count
    t.file(f"/lib/modules/{RELEASE}/config", VFIO_CONFIG)
    expect(run(t, ("kernel.config",)), "kernel.config", "fail", "kernel-config-missing")
    t.remove(f"/boot/config-{RELEASE}")
    res = expect(run(t, ("kernel.config",)), "kernel.config", "pass")
    assert f"/lib/modules/{RELEASE}/config: CONFIG_VFIO_PCI=m" in observed(res)


def test_kernel_config_from_modules_builtin_and_module_files(tmp_path: Path) -> None:
    t = arm_host(tmp_path / "host")
    t.remove("/proc/config.gz")
    for mod in ("vfio", "vfio_pci", "vfio_iommu_type1"):
        t.remove(f"/sys/module/{mod}")
    t.remove("/dev/vfio/vfio")
    t.remove("/sys/bus/pci/drivers/vfio-pci")
    mods = f"/lib/modules/{RELEASE}"
    t.file(f"{mods}/modules.builtin", "kernel/drivers/vfio/vfio.ko\nkernel/drivers/vfio/vfio_iommu_type1.ko\n")
    t.file(f"{mods}/kernel/drivers/vfio/pci/vfio-pci.ko.xz", b"\xfd7zXZ\x00")
    t.file(f"{mods}/kernel/drivers/vfio/pci/vfio-pci-core.ko.xz", b"\xfd7zXZ\x00")
    res = expect(run(t, ("kernel.config",)), "kernel.config", "pass")
    assert res.data["options"]["CONFIG_VFIO"] == {
        "state": "y",
        "source": "modules.builtin",
        "detail": "modules.builtin lists vfio",
    }
    assert res.data["options"]["CONFIG_VFIO_PCI"]["state"] == "m"
    assert "module file for vfio_pci under kernel/drivers/vfio/" in observed(res)


def test_kernel_config_from_runtime_state_only(tmp_path: Path) -> None:
    t = arm_host(tmp_path / "host")
    t.remove("/proc/config.gz")
    res = expect(run(t, ("kernel.config",)), "kernel.config", "pass")
    assert res.data["options"]["CONFIG_VFIO_IOMMU_TYPE1"]["detail"] == (
        "/sys/module/vfio_iommu_type1/initstate exists (a loaded module)"
    )


def test_nothing_readable_is_unknown_never_disabled(tmp_path: Path) -> None:
    t = HostTree(tmp_path / "empty")
    t.file("/proc/sys/kernel/osrelease", RELEASE + "\n")
    res = expect(run(t, ("kernel.config",)), "kernel.config", "unknown")
    assert "unknown, not disabled" in res.summary
    assert all(o["state"] == "unknown" for o in res.data["options"].values())
    # not even the release: still unknown
    bare = HostTree(tmp_path / "bare")
    bare.root.mkdir()
    out = run(bare, ("kernel.config", "kernel.version", "host.arch", "iommu.enabled"))
    for cid in ("kernel.config", "kernel.version", "host.arch", "iommu.enabled"):
        expect(out, cid, "unknown")


# --------------------------------------------------------------------------------------------- arch and version


def test_arch_from_uname_on_this_machine_and_from_elf_on_a_sysroot(tmp_path: Path) -> None:
    here = platform.machine()
    res = expect(run(LocalTarget(), ("host.arch",)), "host.arch", "pass" if here == "aarch64" else "warn")
    assert observed(res) == f"uname -m | {here}"
    # a captured rootfs without /proc: the ELF header of its /bin/sh (this machine's own shell)
    t = HostTree(tmp_path / "rootfs")
    t.file("/bin/sh", Path(os.path.realpath("/bin/sh")).read_bytes()[:64])
    res = expect(run(t, ("host.arch",)), "host.arch", "pass" if here == "aarch64" else "warn")
    assert observed(res) == f"ELF header of /bin/sh | {here}"


def test_kernel_version_variants(tmp_path: Path) -> None:
    t = arm_host(tmp_path / "host")
    t.file("/proc/sys/kernel/osrelease", "6.6.0+\n")
    res = expect(run(t, ("kernel.version",)), "kernel.version", "pass")
    assert "self-built kernel on openEuler" in res.summary
    t.file("/etc/os-release", 'ID=debian\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    res = expect(run(t, ("kernel.version",)), "kernel.version", "pass")
    assert "not an openEuler kernel build" in res.summary
    t.file("/proc/sys/kernel/osrelease", "5.10.0-182.0.0.95.oe2203sp3.aarch64\n")
    res = expect(run(t, ("kernel.version",)), "kernel.version", "warn", "kernel-config-missing")
    assert "is 5.10, not 6.6" in res.summary and "OLK-6.6" in res.fix.text
    assert "/proc/sys/kernel/osrelease | 5.10.0-182.0.0.95.oe2203sp3.aarch64" in observed(res)


def test_iommu_active_without_the_virtcca_command_line_is_noted(tmp_path: Path) -> None:
    t = arm_host(tmp_path / "host")
    t.file("/proc/cmdline", f"BOOT_IMAGE=/vmlinuz-{RELEASE} root=/dev/sda2 ro virtcca_cvm_host=1\n")
    res = expect(run(t, ("iommu.enabled",)), "iommu.enabled", "pass")
    assert "arm_smmu_v3.disable_ecmdq=1 vfio_pci.disable_idle_d3=1" in res.summary
    assert res.data["cmdline_missing"] == ["arm_smmu_v3.disable_ecmdq=1", "vfio_pci.disable_idle_d3=1"]
    shutil.rmtree(t.p("/sys/class/iommu"))
    shutil.rmtree(t.p("/sys/kernel/iommu_groups"))
    t.p("/sys/kernel/iommu_groups").mkdir()
    out = run(t, ("iommu.enabled",))
    assert out["iommu.enabled"].result.status == "fail", describe(out)
