"""lspci -nn -D parser: the real capture (lspci missing), a hand-made host listing, lines without -D."""

import pytest

from cai_tui.parsers import lspci
from cai_tui.parsers.errors import ParseError
from tests.parsers._captures import capture, fixture


def test_real_capture_lspci_missing_is_a_parse_error():
    c = capture("lspci-nn-D.txt")
    assert c.rc == 127
    with pytest.raises(ParseError, match="lspci: command not found") as e:
        lspci.parse_lspci_nn_D(c.body)
    assert e.value.line_no == 1


def test_kata_virtcca_doc_example_line():
    (d,) = lspci.parse_lspci_nn_D("0000:00:06.0 3D controller [0302]: NVIDIA Corporation Device [10de:2335] (rev a1)\n")
    assert d == lspci.PciDevice(
        bdf="0000:00:06.0",
        class_name="3D controller",
        class_id=0x0302,
        vendor_name="NVIDIA Corporation",
        vendor_id=0x10DE,
        device_name="Device",
        device_id=0x2335,
        rev=0xA1,
        description="NVIDIA Corporation Device",
    )
    assert d.is_nvidia and d.is_gpu and d.ids == "10de:2335"


def test_host_listing():
    devices = lspci.parse_lspci_nn_D(fixture("lspci-nn-D-host.txt").body)
    by_bdf = {d.bdf: d for d in devices}
    assert len(devices) == 8
    qemu_vga = by_bdf["0000:00:02.0"]
    assert (qemu_vga.vendor_name, qemu_vga.device_name, qemu_vga.class_name, qemu_vga.rev) == (
        None,
        "Device",
        "VGA compatible controller",
        2,
    )
    no_rev = by_bdf["0000:00:0d.0"]
    assert no_rev.rev is None and no_rev.device_name == "GH100 [H100 PCIe]" and no_rev.device_id == 0x2331
    h200 = by_bdf["0000:9a:00.0"]
    assert (h200.vendor_name, h200.device_name) == ("NVIDIA Corporation", "GH100 [H200 SXM 141GB]")
    nvswitch = by_bdf["0000:83:00.0"]
    assert nvswitch.class_id == 0x0680 and nvswitch.is_nvidia and not nvswitch.is_gpu
    aspeed = by_bdf["0000:cb:00.0"]
    assert aspeed.vendor_name == "ASPEED Technology, Inc." and aspeed.is_gpu and not aspeed.is_nvidia
    hisi = by_bdf["0000:00:00.0"]
    assert hisi.vendor_name == "Huawei Technologies Co., Ltd." and hisi.device_name.startswith(
        "HiSilicon PCIe Root Port"
    )
    assert by_bdf["0000:17:00.0"].vendor_name == "Broadcom / LSI"

    assert [d.bdf for d in lspci.nvidia_devices(devices)] == [
        "0000:00:06.0",
        "0000:00:0d.0",
        "0000:83:00.0",
        "0000:9a:00.0",
    ]
    assert [d.bdf for d in lspci.nvidia_gpus(devices)] == ["0000:00:06.0", "0000:00:0d.0", "0000:9a:00.0"]


def test_without_domain_normalised_and_audio_function_is_not_a_gpu():
    devices = lspci.parse_lspci_nn_D(fixture("lspci-nn-nodomain.txt").body)
    assert [d.bdf for d in devices] == ["0000:06:00.0", "0000:17:00.0", "0000:17:00.1"]
    assert devices[1].class_name == "VGA compatible controller" and devices[1].is_gpu
    assert devices[2].class_id == 0x0403 and not devices[2].is_gpu
    assert [d.bdf for d in lspci.nvidia_gpus(devices)] == ["0000:06:00.0", "0000:17:00.0"]


def test_unknown_vendor_name_split_by_suffix_and_prog_if_tolerated():
    (d,) = lspci.parse_lspci_nn_D(
        "0000:00:14.0 USB controller [0c03]: Acme Widgets Inc. Fast USB [abcd:0001] (rev 10) (prog-if 30 [XHCI])\n"
    )
    assert (d.vendor_name, d.device_name, d.rev) == ("Acme Widgets Inc.", "Fast USB", 0x10)


@pytest.mark.parametrize(
    "line",
    [
        "00:06.0 3D controller: NVIDIA Corporation Device 2335 (rev a1)",  # plain lspci, no -nn
        "0000:00:06.0 3D controller [0302] NVIDIA Corporation Device [10de:2335]",
        "zz:06.0 3D controller [0302]: NVIDIA Corporation Device [10de:2335]",
    ],
)
def test_rejects_lines_without_numeric_ids(line):
    with pytest.raises(ParseError, match="lspci -nn -D") as e:
        lspci.parse_lspci_nn_D(
            f"0000:00:00.0 Host bridge [0600]: Intel Corporation Device [8086:09a2] (rev 04)\n{line}\n"
        )
    assert e.value.line_no == 2 and e.value.line == line


def test_empty_is_no_devices():
    assert lspci.parse_lspci_nn_D("") == []
