"""Kernel config / modules.builtin parsers and the VFIO fallback order."""

import pytest

from cai_tui.parsers import kernel_config as kc
from cai_tui.parsers.errors import ParseError
from tests.parsers._captures import capture, fixture


def test_real_capture_config_part():
    body = capture("kernel-config.txt").body
    with pytest.raises(ParseError) as e:  # the capture also holds `ls` output
        kc.parse_config(body)
    assert e.value.line_no == 1 and e.value.line.startswith("ls: cannot access '/boot/config-")
    config = kc.parse_config(body, strict=False)
    assert config == {
        "CONFIG_VFIO": "n",
        "CONFIG_IOMMU_IOVA": "y",
        "CONFIG_IOMMU_API": "y",
        "CONFIG_IOMMU_SUPPORT": "y",
        "CONFIG_IOMMU_DEBUGFS": "n",
        "CONFIG_IOMMU_DEFAULT_DMA_STRICT": "n",
        "CONFIG_IOMMU_DEFAULT_DMA_LAZY": "y",
        "CONFIG_IOMMU_DEFAULT_PASSTHROUGH": "n",
        "CONFIG_IOMMU_DMA": "y",
        "CONFIG_IOMMUFD": "n",
    }


def test_real_capture_vfio_not_set_means_n_for_all_three():
    state = kc.vfio_state(capture("kernel-config.txt").body, config_source="/proc/config.gz")
    assert {k: (v.state, v.source) for k, v in state.items()} == {
        "CONFIG_VFIO": ("n", "config"),
        "CONFIG_VFIO_IOMMU_TYPE1": ("n", "config"),
        "CONFIG_VFIO_PCI": ("n", "config"),
    }
    assert state["CONFIG_VFIO"].detail == "/proc/config.gz: # CONFIG_VFIO is not set"
    assert "depends on CONFIG_VFIO" in state["CONFIG_VFIO_PCI"].detail
    assert not any(v.available for v in state.values())


def test_real_capture_modules_without_config_is_unknown():
    # modules.txt: /sys/module lists nvidia, nvidia_uvm; no vfio directory, no modules.builtin.
    sys_modules = [f"/sys/module/{name}" for name in capture("modules.txt").body.splitlines()[:2]]
    assert sys_modules == ["/sys/module/nvidia", "/sys/module/nvidia_uvm"]
    state = kc.vfio_state(runtime=sys_modules, module_files=[])
    assert {v.state for v in state.values()} == {"unknown"} and {v.source for v in state.values()} == {"none"}


def test_config_fixture_modules():
    config = kc.parse_config(fixture("kernel-config-vfio-m.txt").body)
    assert config["CONFIG_VFIO"] == "m" and config["CONFIG_VFIO_PCI"] == "m"
    assert config["CONFIG_VFIO_NOIOMMU"] == "n"
    assert config["CONFIG_LOCALVERSION"] == "" and config["CONFIG_DEFAULT_HOSTNAME"] == "(none)"
    assert config["CONFIG_CC_VERSION_TEXT"] == "gcc (GCC) 12.3.1 (openEuler 12.3.1-38.oe2403)"
    assert config["CONFIG_GCC_VERSION"] == "120301" and config["CONFIG_PHYSICAL_START"] == "0x1000000"
    state = kc.vfio_state(fixture("kernel-config-vfio-m.txt").body, config_source="/boot/config-6.6.0")
    assert {k: v.state for k, v in state.items()} == {
        "CONFIG_VFIO": "m",
        "CONFIG_VFIO_IOMMU_TYPE1": "m",
        "CONFIG_VFIO_PCI": "m",
    }
    assert state["CONFIG_VFIO_PCI"].detail == "/boot/config-6.6.0: CONFIG_VFIO_PCI=m"


def test_config_escaped_string_and_errors():
    assert kc.parse_config('CONFIG_CMDLINE="console=\\"ttyS0\\" \\\\x"\n') == {"CONFIG_CMDLINE": 'console="ttyS0" \\x'}
    with pytest.raises(ParseError, match=r"line 2: 'CONFIG_X=yes'"):
        kc.parse_config("CONFIG_A=y\nCONFIG_X=yes\n")
    with pytest.raises(ParseError, match="line 1"):
        kc.parse_config('CONFIG_S="unterminated\n')
    assert kc.parse_config("") == {}


def test_modules_builtin():
    names = kc.parse_modules_builtin(fixture("modules-builtin-vfio.txt").body)
    assert {"vfio", "vfio_iommu_type1", "vfio_pci", "vfio_pci_core", "ext4"} <= names
    with pytest.raises(ParseError, match=r"modules.builtin.*line 2"):
        kc.parse_modules_builtin("kernel/fs/ext4/ext4.ko\ngrep: modules.builtin: No such file or directory\n")


def test_fallback_builtin_when_config_unreadable():
    state = kc.vfio_state(None, fixture("modules-builtin-vfio.txt").body)
    assert {v.state for v in state.values()} == {"y"} and {v.source for v in state.values()} == {"modules.builtin"}


def test_fallback_module_files():
    files = fixture("vfio-module-files.txt").body.splitlines()
    state = kc.vfio_state(config_text=None, modules_builtin="kernel/fs/ext4/ext4.ko\n", module_files=files)
    assert {k: (v.state, v.source) for k, v in state.items()} == {
        "CONFIG_VFIO": ("m", "module files"),
        "CONFIG_VFIO_IOMMU_TYPE1": ("m", "module files"),
        "CONFIG_VFIO_PCI": ("m", "module files"),
    }


def test_config_wins_over_later_sources():
    state = kc.vfio_state("CONFIG_VFIO=y\nCONFIG_VFIO_PCI=m\n", fixture("modules-builtin-vfio.txt").body)
    assert (state["CONFIG_VFIO"].state, state["CONFIG_VFIO"].source) == ("y", "config")
    assert (state["CONFIG_VFIO_PCI"].state, state["CONFIG_VFIO_PCI"].source) == ("m", "config")
    # a partial (grep'd) config that omits the option while CONFIG_VFIO is set: fall through to modules.builtin
    assert (state["CONFIG_VFIO_IOMMU_TYPE1"].state, state["CONFIG_VFIO_IOMMU_TYPE1"].source) == ("y", "modules.builtin")


def test_runtime_fallback():
    runtime = ["/sys/module/vfio", "/sys/module/vfio_pci/", "/sys/module/vfio_pci/initstate", "/dev/vfio/vfio"]
    state = kc.vfio_state(runtime=runtime)
    assert (state["CONFIG_VFIO"].state, state["CONFIG_VFIO"].source) == ("y", "runtime")
    assert (state["CONFIG_VFIO_PCI"].state, state["CONFIG_VFIO_PCI"].source) == ("m", "runtime")
    assert (state["CONFIG_VFIO_IOMMU_TYPE1"].state, state["CONFIG_VFIO_IOMMU_TYPE1"].source) == ("unknown", "none")

    only_driver_dir = kc.vfio_state(runtime=["/sys/bus/pci/drivers/vfio-pci"])["CONFIG_VFIO_PCI"]
    assert (only_driver_dir.state, only_driver_dir.source, only_driver_dir.available) == ("unknown", "runtime", True)

    loaded = kc.vfio_state(loaded_modules="Module Size Used by\nvfio_pci 16384 0\nvfio 45056 2 vfio_pci\n")
    assert loaded["CONFIG_VFIO_PCI"].state == "m" and loaded["CONFIG_VFIO"].detail == "/proc/modules lists vfio"
    assert loaded["CONFIG_VFIO_IOMMU_TYPE1"].state == "unknown"


def test_nothing_found_is_unknown_not_disabled():
    state = kc.vfio_state()
    assert all((v.state, v.source, v.available) == ("unknown", "none", False) for v in state.values())
    assert "not disabled" in state["CONFIG_VFIO"].detail


def test_proc_modules_rejects_garbage():
    with pytest.raises(ParseError, match="/proc/modules"):
        kc.parse_proc_modules("vfio_pci lots of text\n")
