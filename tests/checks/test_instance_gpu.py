"""TDX and GPU checks against captured machines: the real H100 capture, and hand-made captures assembled here from the
parser fixtures (tests/fixtures/parsers, shapes documented in its SOURCES.md) and the real capture's files."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
import shutil
from collections.abc import Iterable
from pathlib import Path

from cai_tui.checks import instance
from cai_tui.checks.base import CheckContext, Result
from cai_tui.checks.registry import all_checks, get
from cai_tui.checks.runner import CheckOutcome, run_checks
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.capture import CaptureTarget

REPO = Path(__file__).resolve().parents[2]
H100 = REPO / "tests/fixtures/captures/h100-vm-2026-11-22"
PARSERS = REPO / "tests/fixtures/parsers"
GPU_IDS = ("host.tdx_guest", "gpu.present", "gpu.driver", "gpu.cc_mode", "gpu.cc_ready")
NOT_FOUND = "scripts/capture-machine.sh: line 8: nvidia-smi: command not found\n"  # as bash prints it (cf. lspci)


# --- assembling captures -------------------------------------------------------------------------------------------


def fixture_output(path: Path) -> tuple[str, str, str]:
    """(command, output, rc) of a capture-layout fixture, its ``## `` notes dropped."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("## ")]
    assert lines[0].startswith("# $ ") and lines[-1].startswith("# rc="), path
    return lines[0][4:], "".join(ln + "\n" for ln in lines[1:-1]), lines[-1][5:]


def put(d: Path, argv: Iterable[str] | str, output: str, rc: int | str = 0, *, name: str | None = None) -> None:
    """Write one capture file as capture-machine.sh would (header = the words joined by spaces)."""
    command = argv if isinstance(argv, str) else " ".join(argv)
    d.mkdir(parents=True, exist_ok=True)
    fname = name or f"cmd-{hashlib.sha1(command.encode()).hexdigest()[:12]}.txt"
    (d / fname).write_text(f"# $ {command}\n{output}# rc={rc}\n")


def put_fixture(d: Path, fixture: str, argv: Iterable[str] | None = None) -> None:
    """A parser fixture as a capture file, under its own command or re-headered as ``argv``."""
    command, output, rc = fixture_output(PARSERS / fixture)
    put(d, list(argv) if argv is not None else command, output, rc)


def h100_copy(d: Path, *, drop: Iterable[str] = ()) -> Path:
    """The real capture's files, except those named in ``drop``."""
    d.mkdir(parents=True, exist_ok=True)
    for f in H100.iterdir():
        if f.name not in drop and f.name != "SOURCE.md":
            shutil.copy2(f, d / f.name)
    return d


def tdx_guest_files(d: Path) -> None:
    """TDX signs as the capture script records them in a TD guest (layout of the real capture's tdx.txt and
    cpuinfo-flags.txt; the flags and model-name lines are those of the cpuinfo-tdx-guest.txt fixture)."""
    put(
        d,
        instance.TDX_CMD,
        "ls: cannot access '/dev/tdx-guest': No such file or directory\n"
        "crw------- 1 root root 10, 123 Nov 23 10:12 /dev/tdx_guest\n"
        "report\n"
        "BOOT_IMAGE=(hd0,gpt2)/boot/vmlinuz-5.10.134-18.al8.x86_64 root=UUID=0a1b ro console=ttyS0,115200n8\n",
        name="tdx.txt",
    )
    cpuinfo = (PARSERS / "cpuinfo-tdx-guest.txt").read_text().splitlines()
    flags = next(ln for ln in cpuinfo if ln.startswith("flags"))
    model = next(ln for ln in cpuinfo if ln.startswith("model name"))
    put(d, instance.CPUINFO_CMD, f"{flags}\n{model}\n", name="cpuinfo-flags.txt")


def cc_on_capture(d: Path) -> Path:
    """A gn8v-tee-like TD guest: the real H100 capture with CC on and ready, per-GPU state, TDX signs."""
    h100_copy(
        d, drop=("conf-compute-f.txt", "conf-compute-grs.txt", "conf-compute-q.txt", "tdx.txt", "cpuinfo-flags.txt")
    )
    put_fixture(d, "cc-f-on.txt")
    put_fixture(d, "cc-grs-ready.txt")
    put_fixture(d, "cc-q-on-ready-tdx.txt")
    put_fixture(d, "cc-f-i0.txt")
    tdx_guest_files(d)
    return d


def inventory_lines(n: int) -> str:
    _, output, _ = fixture_output(PARSERS / "nvidia-smi-query-csv-8gpu.txt")
    return "".join(output.splitlines(keepends=True)[:n])


def multi_gpu_capture(d: Path, n: int) -> Path:
    h100_copy(d, drop=("nvidia-smi-query-csv.txt", "conf-compute-f.txt", "conf-compute-q.txt", "conf-compute-grs.txt"))
    put(d, instance.SMI_INVENTORY, inventory_lines(n))
    put_fixture(d, "cc-f-on.txt")
    put_fixture(d, "cc-q-on-ready-tdx.txt")
    put_fixture(d, "cc-grs-ready.txt")
    return d


# --- running checks ------------------------------------------------------------------------------------------------


def run_ids(target: object, ids: Iterable[str], timeout: float = 10.0) -> dict[str, CheckOutcome]:
    ctx = CheckContext(recipe=None, targets={"instance": target}, redactor=Redactor(), timeout=timeout)  # type: ignore[dict-item]
    outcomes = asyncio.run(run_checks(list(all_checks().values()), ctx, only=list(ids), timeout=timeout))
    return {o.id: o for o in outcomes}


def run_one(target: object, check_id: str) -> Result:
    """The check's own function, dependencies not consulted (what `--only` with a dependency ignored would give)."""
    ctx = CheckContext(recipe=None, targets={"instance": target}, redactor=Redactor(), timeout=10.0)  # type: ignore[dict-item]
    return asyncio.run(get(check_id).run(ctx))


def expect(out: dict[str, CheckOutcome], check_id: str, status: str, faq: str | None = None) -> Result:
    r = out[check_id].result
    summary = "\n".join(f"{o.result.status:7} {cid}: {o.result.summary}" for cid, o in out.items())
    assert r.status == status, summary
    if faq is not None:
        assert r.fix is not None and r.fix.faq_id == faq, summary
    if status in ("fail", "warn"):
        assert r.fix is not None and r.fix.text and r.evidence, f"{check_id}: a {status} needs a fix and evidence"
    return r


def observed(r: Result) -> list[str]:
    return [e.observed for e in r.evidence]


# --- the real H100 capture -----------------------------------------------------------------------------------------


def test_real_h100_capture() -> None:
    t = CaptureTarget(H100)
    out = run_ids(t, GPU_IDS)
    present = expect(out, "gpu.present", "pass")
    assert present.data["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
    assert present.data["gpus"][0]["bdf"] == "0000:00:06.0"
    assert "NVIDIA H100 80GB HBM3 at 0000:00:06.0" in present.summary
    assert "0, NVIDIA H100 80GB HBM3, 00000000:00:06.0, 580.159.04, 81559" in observed(present)
    assert all(e.target == t.name for e in present.evidence)

    driver = expect(out, "gpu.driver", "pass")
    assert driver.data["driver_version"] == "580.159.04" and driver.data["kernel_module"] == "580.159.04"
    assert "580.159.04" in driver.summary and "CUDA 13.0" in driver.summary

    cc = expect(out, "gpu.cc_mode", "fail", "gpu-cc-off")
    assert "GPU 0 (NVIDIA H100 80GB HBM3 at 0000:00:06.0)" in cc.summary and "`CC status: OFF`" in cc.summary
    assert cc.data["per_gpu"] == {"0": "OFF"} and cc.data["gpus_off"] == [0] and not cc.data["protected_pcie"]
    assert "CC status: OFF" in observed(cc)
    assert any(o.startswith("GPU CC Capabilities") and o.endswith("CC Capable") for o in observed(cc))
    assert {e.source for e in cc.evidence} >= {"nvidia-smi conf-compute -f", "nvidia-smi conf-compute -q"}

    ready = expect(out, "gpu.cc_ready", "skip")
    assert ready.summary == "skipped: gpu.cc_mode failed"
    alone = run_one(t, "gpu.cc_ready")  # asked directly, it reads the not-ready state
    assert alone.status == "fail" and alone.fix is not None and alone.fix.faq_id == "gpu-cc-not-ready"
    assert observed(alone) == ["Confidential Compute GPUs Ready state: not-ready"]
    assert "nvidia-smi conf-compute -srs 1" in alone.fix.text

    tdx = expect(out, "host.tdx_guest", "fail", "tee-not-detected")
    for looked in ("/dev/tdx_guest", "/dev/tdx-guest", "/sys/kernel/config/tsm/report", "tdx_guest"):
        assert looked in tdx.summary
    assert "ls: cannot access '/dev/tdx_guest': No such file or directory" in observed(tdx)
    assert any(o.startswith("flags") and "avx512f" in o for o in observed(tdx))
    assert tdx.data["cpu_flag_tdx_guest"] is False


def test_real_h100_capture_has_no_docker() -> None:
    out = run_ids(CaptureTarget(H100), ("docker.version", "docker.compose", "cai.containers"))
    v = expect(out, "docker.version", "fail", "docker-too-old")
    assert "not installed" in v.summary and observed(v) == ["sh: 1: docker: not found"]
    c = expect(out, "docker.compose", "fail", "compose-too-old")
    assert "not installed" in c.summary
    s = expect(out, "cai.containers", "skip")
    assert "no Docker engine" in s.summary


# --- CC on and ready in a TD guest ---------------------------------------------------------------------------------


def test_cc_on_and_ready_td_guest_passes(tmp_path: Path) -> None:
    t = CaptureTarget(cc_on_capture(tmp_path / "cap"))
    out = run_ids(t, GPU_IDS)
    for cid in GPU_IDS:
        expect(out, cid, "pass")
    tdx = out["host.tdx_guest"].result
    assert "/dev/tdx_guest" in tdx.summary and "/sys/kernel/config/tsm/report" in tdx.summary
    assert "crw------- 1 root root 10, 123 Nov 23 10:12 /dev/tdx_guest" in observed(tdx)
    cc = out["gpu.cc_mode"].result
    assert cc.data["per_gpu"] == {"0": "ON"} and cc.summary == "CC mode ON on all 1 GPU(s)"
    assert any(e.source == "nvidia-smi conf-compute -f -i 0" for e in cc.evidence)
    assert observed(out["gpu.cc_ready"].result) == ["Confidential Compute GPUs Ready state: ready"]


def test_td_guest_through_sysroot_files(tmp_path: Path) -> None:
    d = cc_on_capture(tmp_path / "cap")
    (d / "tdx.txt").unlink()
    (d / "cpuinfo-flags.txt").unlink()
    root = d / "sysroot"
    (root / "dev").mkdir(parents=True)
    (root / "dev/tdx_guest").write_text("")
    (root / "sys/kernel/config/tsm/report").mkdir(parents=True)
    (root / "proc").mkdir()
    (root / "proc/cpuinfo").write_text(fixture_output(PARSERS / "cpuinfo-tdx-guest.txt")[1])
    r = expect(run_ids(CaptureTarget(d), ["host.tdx_guest"]), "host.tdx_guest", "pass")
    assert "/dev/tdx-guest: absent" in observed(r) and "/dev/tdx_guest: present" in observed(r)
    assert r.data["cpu_flag_tdx_guest"] is True
    # the device gone: a TD guest (flag) without its attestation interface
    (root / "dev/tdx_guest").unlink()
    shutil.rmtree(root / "sys")
    r = expect(run_ids(CaptureTarget(d), ["host.tdx_guest"]), "host.tdx_guest", "fail", "tee-not-detected")
    assert "without its attestation interface" in r.summary and "modprobe tdx_guest" in (r.fix.text if r.fix else "")


# --- several GPUs ----------------------------------------------------------------------------------------------------


def test_one_gpu_of_four_off_is_named(tmp_path: Path) -> None:
    d = multi_gpu_capture(tmp_path / "cap", 4)
    for i in range(4):
        put_fixture(d, f"cc-f-i{i}.txt")  # GPU 2 says OFF, the summary says ON
    out = run_ids(CaptureTarget(d), ["gpu.cc_mode", "gpu.cc_ready"])
    cc = expect(out, "gpu.cc_mode", "fail", "gpu-cc-off")
    assert "GPU 2 (NVIDIA H200 at 0000:3a:00.0)" in cc.summary
    for other in ("GPU 0", "GPU 1", "GPU 3"):
        assert other not in cc.summary
    assert cc.data["per_gpu"] == {"0": "ON", "1": "ON", "2": "OFF", "3": "ON"} and cc.data["gpus_off"] == [2]
    assert cc.data["summary_status"] == "ON"
    assert any(
        e.source == "nvidia-smi conf-compute -f -i 2" and e.observed.endswith("CC status: OFF") for e in cc.evidence
    )
    assert out["gpu.cc_ready"].result.status == "skip"


def test_two_gpus_one_off(tmp_path: Path) -> None:
    d = multi_gpu_capture(tmp_path / "cap", 2)
    put_fixture(d, "cc-f-i0.txt")
    put_fixture(d, "cc-f-i2.txt", instance.cc_f_gpu(1))  # the OFF answer, given by GPU 1 here
    cc = expect(run_ids(CaptureTarget(d), ["gpu.cc_mode"]), "gpu.cc_mode", "fail", "gpu-cc-off")
    assert "CC mode is OFF on GPU 1 (NVIDIA H200 at 0000:2a:00.0)" in cc.summary and "GPU 0" not in cc.summary
    # both ON: pass, naming the count
    put(d, instance.cc_f_gpu(1), "CC status: ON\n", name="override-i1.txt")
    for f in d.iterdir():
        if f.name != "override-i1.txt" and f.read_text().startswith(f"# $ {shlex.join(instance.cc_f_gpu(1))}\n"):
            f.unlink()
    cc = expect(run_ids(CaptureTarget(d), ["gpu.cc_mode"]), "gpu.cc_mode", "pass")
    assert cc.summary == "CC mode ON on all 2 GPU(s)"


def test_per_gpu_state_unreadable_on_several_gpus_is_a_warning(tmp_path: Path) -> None:
    d = multi_gpu_capture(tmp_path / "cap", 2)  # summary ON, no -i captures
    cc = expect(run_ids(CaptureTarget(d), ["gpu.cc_mode"]), "gpu.cc_mode", "warn", "gpu-cc-off")
    assert "GPU 0, 1 could not be read one by one" in cc.summary and cc.data["per_gpu"] == {"0": None, "1": None}


def test_protected_pcie_counts_as_confidential(tmp_path: Path) -> None:
    d = multi_gpu_capture(tmp_path / "cap", 2)
    for f in d.iterdir():
        if f.read_text().startswith(("# $ nvidia-smi conf-compute -f\n", "# $ nvidia-smi conf-compute -q\n")):
            f.unlink()
    shutil.copy(H100 / "conf-compute-f.txt", d / "conf-compute-f.txt")  # CC status: OFF, as PPCIe reports
    put_fixture(d, "cc-q-ppcie.txt")
    for i in range(2):
        put(d, instance.cc_f_gpu(i), "CC status: OFF\n")
    cc = expect(run_ids(CaptureTarget(d), ["gpu.cc_mode"]), "gpu.cc_mode", "pass")
    assert "Protected PCIe" in cc.summary and cc.data["protected_pcie"] is True
    assert "Multi-GPU Mode             : Protected PCIe" in observed(cc)


def test_gpu_without_cc_capability(tmp_path: Path) -> None:
    d = h100_copy(tmp_path / "cap", drop=("conf-compute-f.txt",))
    put_fixture(d, "cc-no-capable.txt")
    cc = expect(run_ids(CaptureTarget(d), ["gpu.cc_mode"]), "gpu.cc_mode", "fail", "gpu-cc-off")
    assert cc.summary == "no CC-capable GPU here: No CC capable devices found"


# --- driver and tools missing or broken ----------------------------------------------------------------------------


def sysfs_tree(root: Path, devices: dict[str, tuple[str, str, str, str | None]]) -> None:
    """``/sys/bus/pci/devices/<bdf>`` links into ``/sys/devices/pci0000:00/<bdf>`` as the kernel lays them out;
    values (vendor, device, class, driver or None)."""
    bus = root / "sys/bus/pci/devices"
    bus.mkdir(parents=True, exist_ok=True)
    for bdf, (vendor, device, klass, driver) in devices.items():
        real = root / "sys/devices/pci0000:00" / bdf
        real.mkdir(parents=True)
        for name, value in (("vendor", vendor), ("device", device), ("class", klass), ("driver_override", "(null)")):
            (real / name).write_text(value + "\n")
        (real / "numa_node").write_text("-1\n")
        if driver:
            (root / "sys/bus/pci/drivers" / driver).mkdir(parents=True, exist_ok=True)
            os.symlink(f"../../../bus/pci/drivers/{driver}", real / "driver")
        os.symlink(f"../../../devices/pci0000:00/{bdf}", bus / bdf)


def no_smi_capture(d: Path) -> Path:
    h100_copy(d, drop=("nvidia-smi-query-csv.txt", "nvidia-smi.txt", "proc-driver-version.txt", "sysfs-pci.txt"))
    put(d, instance.SMI_INVENTORY, NOT_FOUND, 127)
    put(d, instance.SMI, NOT_FOUND, 127)
    return d


def test_nvidia_smi_missing_gpu_found_in_sysfs_files(tmp_path: Path) -> None:
    d = no_smi_capture(tmp_path / "cap")
    sysfs_tree(
        d / "sysroot",
        {
            "0000:00:00.0": ("0x8086", "0x1237", "0x060000", None),  # host bridge
            "0000:00:06.0": ("0x10de", "0x2330", "0x030200", None),  # the H100, no driver bound
            "0000:00:06.1": ("0x10de", "0x22a3", "0x040300", "snd_hda_intel"),  # an NVIDIA audio function
        },
    )
    out = run_ids(CaptureTarget(d), ["gpu.present", "gpu.driver"])
    p = expect(out, "gpu.present", "warn", "nvml-init-failed")
    assert "1 NVIDIA GPU(s) on the PCI bus (NVIDIA device 0x2330 at 0000:00:06.0)" in p.summary
    assert "driver/tools are missing" in p.summary and "nvidia-smi: command not found" in p.summary
    assert p.data["via"] == "sysfs" and [g["bdf"] for g in p.data["gpus"]] == ["0000:00:06.0"]
    assert any("device=0x2330 class=0x030200 (3D controller) driver=(none)" in o for o in observed(p))
    assert p.fix is not None and "install the NVIDIA driver" in p.fix.text
    drv = expect(out, "gpu.driver", "fail", "nvml-init-failed")
    assert "nvidia-smi is missing" in drv.summary and "/proc/driver/nvidia/version is absent" in drv.summary

    # the kernel module is there after all: the driver is loaded, only the tools are missing
    (d / "sysroot/proc/driver/nvidia").mkdir(parents=True)
    _, text, _ = fixture_output(PARSERS / "proc-version-proprietary.txt")
    (d / "sysroot/proc/driver/nvidia/version").write_text(text)
    drv = expect(run_ids(CaptureTarget(d), ["gpu.driver"]), "gpu.driver", "warn", "nvml-init-failed")
    assert drv.summary.startswith("NVIDIA kernel module 535.104.05 is loaded but nvidia-smi is missing")
    assert any(o.startswith("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05") for o in observed(drv))


def test_nvidia_smi_missing_gpu_found_in_the_recorded_sysfs_listing(tmp_path: Path) -> None:
    d = no_smi_capture(tmp_path / "cap")
    shutil.copy(H100 / "sysfs-pci.txt", d / "sysfs-pci.txt")  # no sysroot/: the capture script's listing answers
    p = expect(run_ids(CaptureTarget(d), ["gpu.present"]), "gpu.present", "warn", "nvml-init-failed")
    assert "0000:00:06.0" in p.summary and p.data["via"] == "sysfs"
    assert any(e.source == shlex.join(instance.SYSFS_PCI_CMD) and "driver=nvidia" in e.observed for e in p.evidence)


def test_no_gpu_at_all(tmp_path: Path) -> None:
    d = no_smi_capture(tmp_path / "cap")
    sysfs_tree(d / "sysroot", {"0000:00:00.0": ("0x8086", "0x1237", "0x060000", None)})
    p = expect(run_ids(CaptureTarget(d), ["gpu.present", "gpu.cc_mode"]), "gpu.present", "fail", "gpu-missing")
    assert p.summary.startswith("no NVIDIA GPU") and p.data["gpus"] == []


def test_nvml_failures(tmp_path: Path) -> None:
    d = h100_copy(tmp_path / "cap", drop=("nvidia-smi-query-csv.txt", "nvidia-smi.txt", "proc-driver-version.txt"))
    put_fixture(d, "nvidia-smi-fail-mismatch.txt")  # `nvidia-smi`: Failed to initialize NVML: Driver/library…
    put_fixture(d, "nvidia-smi-fail-mismatch.txt", instance.SMI_INVENTORY)
    put_fixture(d, "proc-version-proprietary.txt")
    out = run_ids(CaptureTarget(d), ["gpu.present", "gpu.driver", "gpu.cc_mode"])
    drv = expect(out, "gpu.driver", "fail", "nvml-init-failed")
    assert drv.summary == (
        "nvidia-smi fails: Failed to initialize NVML: Driver/library version mismatch (kernel module 535.104.05 loaded)"
    )
    assert observed(drv)[:2] == [
        "Failed to initialize NVML: Driver/library version mismatch",
        "NVML library version: 570.124",
    ]
    assert drv.fix is not None and "reboot" in drv.fix.text
    p = expect(out, "gpu.present", "warn", "nvml-init-failed")  # the real capture's sysfs listing shows the GPU
    assert "Failed to initialize NVML" in p.summary
    expect(out, "gpu.cc_mode", "fail", "gpu-cc-off")  # conf-compute itself is still captured, as OFF

    d2 = h100_copy(tmp_path / "cap2", drop=("nvidia-smi.txt", "proc-driver-version.txt"))
    put_fixture(d2, "nvidia-smi-fail-driver.txt")
    drv = expect(run_ids(CaptureTarget(d2), ["gpu.driver"]), "gpu.driver", "fail", "nvml-init-failed")
    assert "couldn't communicate with the NVIDIA driver" in drv.summary
    assert drv.fix is not None and "modprobe nvidia" in drv.fix.text
