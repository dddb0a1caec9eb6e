"""/proc/driver/nvidia, /proc/cpuinfo and /proc/cmdline parsers."""

import pytest

from cai_tui.parsers import cpuinfo, proc_nvidia
from cai_tui.parsers.errors import ParseError
from tests.parsers._captures import capture, fixture


# --- /proc/driver/nvidia/version -----------------------------------------------------------------------------------
def test_version_real_capture_open_module():
    v = proc_nvidia.parse_version(capture("proc-driver-version.txt").body)
    assert v == proc_nvidia.NvrmVersion(
        version="580.159.04",
        open_kernel_module=True,
        arch="x86_64",
        build="Release Build  (nixbld@)",
        gcc_version="gcc version 15.3.0 (GCC)",
    )


def test_version_proprietary_module():
    v = proc_nvidia.parse_version(fixture("proc-version-proprietary.txt").body)
    assert (v.version, v.open_kernel_module, v.arch, v.build) == (
        "535.104.05",
        False,
        "x86_64",
        "Sat Aug 19 01:15:15 UTC 2023",
    )
    assert v.gcc_version == "gcc version 11.4.0 (Ubuntu 11.4.0-1ubuntu1~22.04)"


def test_version_open_module_aarch64():
    v = proc_nvidia.parse_version(fixture("proc-version-open-aarch64.txt").body)
    assert (v.version, v.open_kernel_module, v.arch) == ("550.127.08", True, "aarch64")


def test_version_rejects_other_text():
    with pytest.raises(ParseError, match="line 1: 'cat: /proc/driver/nvidia/version: No such file or directory'"):
        proc_nvidia.parse_version("cat: /proc/driver/nvidia/version: No such file or directory\n")
    with pytest.raises(ParseError, match="empty"):
        proc_nvidia.parse_version("")
    with pytest.raises(ParseError, match="NVRM version"):
        proc_nvidia.parse_version("GCC version:  gcc version 11\n")


# --- /proc/driver/nvidia/gpus/*/information ------------------------------------------------------------------------
def _information_files(body: str) -> dict[str, str]:
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in body.splitlines():
        if line.startswith("== "):
            current = files.setdefault(line[3:], [])
        elif current is not None:
            current.append(line)
    return {path: "\n".join(lines) + "\n" for path, lines in files.items()}


def test_information_real_capture():
    files = _information_files(capture("proc-driver-gpus.txt").body)
    assert list(files) == ["/proc/driver/nvidia/gpus/0000:00:06.0"]
    info = proc_nvidia.parse_gpu_information(files["/proc/driver/nvidia/gpus/0000:00:06.0"])
    assert (info.model, info.uuid, info.bus_location, info.bdf) == (
        "NVIDIA H100 80GB HBM3",
        "GPU-30ec2a13-3afc-235f-d8c6-fe3732955eb8",
        "0000:00:06.0",
        "0000:00:06.0",
    )
    assert (info.irq, info.device_minor, info.video_bios, info.bus_type) == (41, 0, "96.00.da.00.0c", "PCIe")
    assert (info.gpu_firmware, info.excluded) == ("580.159.04", False)
    assert info.fields["DMA Mask"] == "0xfffffffffffff"


def test_information_legacy_without_firmware_line():
    info = proc_nvidia.parse_gpu_information(fixture("proc-gpu-information-legacy.txt").body)
    assert (info.model, info.bdf, info.gpu_firmware, info.excluded) == ("Tesla T4", "0000:00:1e.0", None, False)


def test_information_errors():
    with pytest.raises(ParseError, match="line 2: '== next file'"):
        proc_nvidia.parse_gpu_information("Model: \t X\n== next file\n")
    with pytest.raises(ParseError, match="Bus Location is not a PCI address"):
        proc_nvidia.parse_gpu_information("Model: \t X\nBus Location: \t somewhere\n")
    with pytest.raises(ParseError, match="Model"):
        proc_nvidia.parse_gpu_information("IRQ: 5\n")


# --- /proc/cpuinfo -------------------------------------------------------------------------------------------------
def test_cpuinfo_real_capture_not_a_tdx_guest():
    info = cpuinfo.parse_cpuinfo(capture("cpuinfo-flags.txt").body)
    assert info.model_name == "Intel(R) Xeon(R) Processor"
    assert not info.tdx_guest and info.hypervisor
    assert {"avx512f", "amx_tile", "x2apic"} <= info.flags


def test_cpuinfo_tdx_guest_first_processor_only():
    info = cpuinfo.parse_cpuinfo(fixture("cpuinfo-tdx-guest.txt").body)
    assert info.tdx_guest and info.vendor_id == "GenuineIntel"
    assert info.model_name == "Intel(R) Xeon(R) Platinum 8475B"
    assert info.fields["processor"] == "0" and info.fields["power management"] == ""
    assert "fpu" in info.flags and len(info.flags) > 2  # not the second processor's short list


def test_cpuinfo_aarch64_features_as_flags():
    info = cpuinfo.parse_cpuinfo(fixture("cpuinfo-aarch64.txt").body)
    assert info.model_name is None and "asimd" in info.flags and not info.tdx_guest
    assert info.fields["CPU implementer"] == "0x48" and info.fields["CPU architecture"] == "8"


def test_cpuinfo_errors():
    with pytest.raises(ParseError, match="empty"):
        cpuinfo.parse_cpuinfo("\n")
    with pytest.raises(ParseError, match="line 1: 'grep: /proc/cpuinfo: No such file'"):
        cpuinfo.parse_cpuinfo("grep: /proc/cpuinfo: No such file\n")  # "key: value" shaped, but no cpuinfo key
    with pytest.raises(ParseError, match="line 2"):
        cpuinfo.parse_cpuinfo("flags : fpu\nno colon here\n")


# --- /proc/cmdline -------------------------------------------------------------------------------------------------
def test_cmdline_real_capture():
    line = capture("tdx.txt").body.splitlines()[-1]
    cmd = cpuinfo.parse_cmdline(line)
    assert not cmd.virtcca_guest
    assert cmd.get("swiotlb") == "noforce" and cmd.get("pci") == "realloc=off" and cmd.has("quiet")
    assert cmd.get("quiet") is None and cmd.get("console") == "ttyS0"
    assert cmd.init_args[:2] == ("--firecracker-init", "--addr")
    assert "--auth-required" not in cmd.params


def test_cmdline_virtcca_guest_and_quotes():
    cmd = cpuinfo.parse_cmdline(fixture("cmdline-virtcca-guest.txt").body)
    assert cmd.virtcca_guest
    assert cmd.get("swiotlb") == "262144,force"
    assert cmd.get("dyndbg") == "module vfio +p"
    assert cmd.get("rootflags") == "data=ordered,errors=remount-ro"
    assert cmd.items[0] == ("console", "hvc0") and cmd.init_args == ()


def test_cmdline_repeats_last_wins_but_all_kept():
    cmd = cpuinfo.parse_cmdline("console=ttyS0 console=tty0\n")
    assert cmd.get("console") == "tty0" and cmd.items == (("console", "ttyS0"), ("console", "tty0"))


def test_cmdline_errors():
    with pytest.raises(ParseError, match="unbalanced"):
        cpuinfo.parse_cmdline('dyndbg="module vfio\n')
    with pytest.raises(ParseError, match="one line"):
        cpuinfo.parse_cmdline("a=1\nb=2\n")
    with pytest.raises(ParseError, match="without a name"):
        cpuinfo.parse_cmdline("=1\n")
    assert cpuinfo.parse_cmdline("").params == {}
