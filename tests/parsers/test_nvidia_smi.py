"""nvidia-smi parsers on the real H100 captures and on hand-made fixtures of other states."""

import pytest

from cai_tui.parsers import nvidia_smi as ns
from cai_tui.parsers.errors import ParseError
from tests.parsers._captures import capture, fixture

H100_UUID = "GPU-30ec2a13-3afc-235f-d8c6-fe3732955eb8"
CSV_HEADER_FIELDS = [
    "index",
    "name",
    "uuid",
    "pci.bus_id",
    "driver_version",
    "memory.total",
    "memory.used",
    "compute_mode",
    "persistence_mode",
]


# --- -L ------------------------------------------------------------------------------------------------------------
def test_list_real_capture():
    c = capture("nvidia-smi-L.txt")
    assert c.rc == 0 and c.command == "nvidia-smi -L"
    assert ns.parse_list(c.body) == [ns.GpuListEntry(0, "NVIDIA H100 80GB HBM3", H100_UUID)]


def test_list_eight_gpus():
    gpus = ns.parse_list(fixture("nvidia-smi-L-8gpu.txt").body)
    assert [g.index for g in gpus] == list(range(8))
    assert {g.name for g in gpus} == {"NVIDIA H200"}
    assert len({g.uuid for g in gpus}) == 8
    assert gpus[7].uuid == "GPU-0a1b2c3d-0007-4e5f-8a9b-000000000007"


def test_list_mig_devices_attach_to_their_gpu():
    gpus = ns.parse_list(fixture("nvidia-smi-L-mig.txt").body)
    assert [g.index for g in gpus] == [0, 1]
    assert [(m.index, m.profile) for m in gpus[0].mig] == [(0, "3g.40gb"), (1, "1g.10gb")]
    assert gpus[0].mig[1].uuid == "MIG-b3061c09-2a4c-5026-a575-000000000001"
    assert gpus[1].mig == ()


def test_list_empty_output_is_no_gpus():
    assert ns.parse_list("") == []
    assert ns.parse_list("\n\n") == []


def test_list_mig_line_without_a_gpu_is_rejected():
    with pytest.raises(ParseError, match=r"line 1: '  MIG 1g.10gb"):
        ns.parse_list("  MIG 1g.10gb     Device  0: (UUID: MIG-x)\n")


def test_list_unexpected_line_is_quoted_with_its_number():
    text = "GPU 0: NVIDIA H200 (UUID: GPU-a)\nsomething else\n"
    with pytest.raises(ParseError) as e:
        ns.parse_list(text)
    assert e.value.line_no == 2 and e.value.line == "something else"
    assert "line 2: 'something else'" in str(e.value)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("nvidia-smi-fail-driver.txt", "driver_unreachable"),
        ("nvidia-smi-fail-mismatch.txt", "driver_library_mismatch"),
        ("nvidia-smi-fail-nodevices.txt", "no_devices"),
        ("nvidia-smi-fail-notfound.txt", "not_found"),
        ("nvidia-smi-fail-handle.txt", "device_handle_error"),
    ],
)
def test_failure_texts(name, code):
    body = fixture(name).body
    assert ns.detect_failure(body) == code
    failure = ns.find_failure(body)
    assert failure is not None and failure.code == code and failure.line.strip() == body.strip().splitlines()[0]
    assert ns.FAILURE_HINTS[code]
    for parse in (ns.parse_list, ns.parse_q, ns.parse_plain, ns.parse_gpu_inventory, ns.parse_version_info):
        with pytest.raises(ParseError, match=rf"nvidia-smi failed \({code}: "):
            parse(body)


def test_failure_of_nvml_other_than_mismatch():
    assert ns.detect_failure("Failed to initialize NVML: Unknown Error\n") == "nvml_init_failed"
    assert ns.detect_failure("NVIDIA-SMI couldn't find libnvidia-ml.so library in your system.") == "library_not_found"
    assert ns.detect_failure("bash: nvidia-smi: command not found") == "not_found"


@pytest.mark.parametrize(
    "name", ["nvidia-smi.txt", "nvidia-smi-q.txt", "nvidia-smi-L.txt", "docker-version.txt", "lspci-nn-D.txt"]
)
def test_no_failure_detected_in_healthy_or_unrelated_output(name):
    assert ns.detect_failure(capture(name).body) is None


def test_failure_line_number_points_at_the_failure():
    failure = ns.find_failure("Mon Nov 23\n\nNo devices were found\n")
    assert failure is not None and (failure.code, failure.line_no, failure.line) == (
        "no_devices",
        3,
        "No devices were found",
    )


# --- CSV -----------------------------------------------------------------------------------------------------------
def test_query_csv_real_capture_with_header_and_units():
    c = capture("nvidia-smi-query-csv-header.txt")
    rows = ns.parse_query_csv(c.body, CSV_HEADER_FIELDS, header=True)
    assert rows == [
        {
            "index": "0",
            "name": "NVIDIA H100 80GB HBM3",
            "uuid": H100_UUID,
            "pci.bus_id": "00000000:00:06.0",
            "driver_version": "580.159.04",
            "memory.total": "81559 MiB",
            "memory.used": "0 MiB",
            "compute_mode": "Default",
            "persistence_mode": "Enabled",
        }
    ]
    stripped = ns.parse_query_csv(c.body, CSV_HEADER_FIELDS, header=True, strip_units=True)
    assert (stripped[0]["memory.total"], stripped[0]["memory.used"]) == ("81559", "0")


def test_query_csv_real_capture_noheader():
    rows = ns.parse_query_csv(capture("nvidia-smi-query-csv.txt").body, list(ns.INVENTORY_FIELDS), header=False)
    assert rows == [
        {
            "index": "0",
            "name": "NVIDIA H100 80GB HBM3",
            "pci.bus_id": "00000000:00:06.0",
            "driver_version": "580.159.04",
            "memory.total": "81559",
        }
    ]


def test_query_csv_na_values_become_none():
    fields = ["index", "name", "memory.total", "power.draw", "fan.speed", "temperature.memory"]
    rows = ns.parse_query_csv(fixture("nvidia-smi-query-csv-units-na.txt").body, fields, header=True, strip_units=True)
    assert rows[0] == {
        "index": "0",
        "name": "NVIDIA H100 80GB HBM3",
        "memory.total": "81559",
        "power.draw": "73.03",
        "fan.speed": None,
        "temperature.memory": "34",
    }
    assert rows[1]["power.draw"] is None and rows[1]["fan.speed"] is None and rows[1]["temperature.memory"] is None
    assert rows[1]["memory.total"] == "15360"


def test_query_csv_header_only_is_no_gpus():
    assert ns.parse_query_csv("index, name\n", ["index", "name"], header=True) == []


def test_query_csv_header_with_wrong_column_count():
    with pytest.raises(ParseError, match=r"CSV header with 3 columns.*line 1: 'index, name'"):
        ns.parse_query_csv("index, name\n0, x\n", ["index", "name", "uuid"], header=True)


def test_query_csv_header_missing_when_expected():
    with pytest.raises(ParseError, match="CSV header"):
        ns.parse_query_csv("0, NVIDIA H200\n", ["index", "name"], header=True)
    with pytest.raises(ParseError, match="output is empty"):
        ns.parse_query_csv("", ["index", "name"], header=True)


def test_query_csv_row_with_wrong_count_is_quoted():
    text = "0, NVIDIA H200, 00000000:00:06.0\n1, NVIDIA H200\n"
    with pytest.raises(ParseError) as e:
        ns.parse_query_csv(text, ["index", "name", "pci.bus_id"], header=False)
    assert e.value.line_no == 2 and "got 2" in str(e.value) and "'1, NVIDIA H200'" in str(e.value)


def test_query_csv_quoted_name_with_comma_is_one_value_unquoted_is_an_error():
    fields = ["index", "name", "memory.total"]
    rows = ns.parse_query_csv('0, "NVIDIA H200, NVL", 143771\n', fields, header=False)
    assert rows == [{"index": "0", "name": "NVIDIA H200, NVL", "memory.total": "143771"}]
    with pytest.raises(ParseError, match="got 4"):
        ns.parse_query_csv("0, NVIDIA H200, NVL, 143771\n", fields, header=False)


def test_query_csv_needs_fields():
    with pytest.raises(ParseError, match="no fields"):
        ns.parse_query_csv("0\n", [], header=False)


# --- inventory -----------------------------------------------------------------------------------------------------
def test_inventory_real_capture():
    assert ns.parse_gpu_inventory(capture("nvidia-smi-query-csv.txt").body) == [
        ns.GpuInfo(0, "NVIDIA H100 80GB HBM3", "00000000:00:06.0", "0000:00:06.0", "580.159.04", 81559)
    ]


def test_inventory_eight_gpus_bdf_normalised_to_sysfs_form():
    gpus = ns.parse_gpu_inventory(fixture("nvidia-smi-query-csv-8gpu.txt").body)
    assert [g.index for g in gpus] == list(range(8))
    assert gpus[1].pci_bus_id == "00000000:2A:00.0" and gpus[1].bdf == "0000:2a:00.0"
    assert gpus[5].bdf == "0000:ab:00.0"
    assert {g.memory_total_mib for g in gpus} == {143771}
    assert {g.driver_version for g in gpus} == {"580.159.04"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("x, NVIDIA H200, 00000000:00:06.0, 580.159.04, 143771", "GPU index"),
        ("0, NVIDIA H200, 00000000:ZZ:06.0, 580.159.04, 143771", "not a PCI bus ID"),
        ("0, NVIDIA H200, 100000000:00:06.0, 580.159.04, 143771", "not a PCI bus ID"),
        ("0, NVIDIA H200, 00000000:00:06.0, 580.159.04, 143771 MiB", "nounits"),
        ("0, [N/A], 00000000:00:06.0, 580.159.04, 143771", "GPU name"),
        ("0, NVIDIA H200, [N/A], 580.159.04, 143771", "PCI bus ID"),
    ],
)
def test_inventory_rejects_bad_rows(line, message):
    with pytest.raises(ParseError, match=message) as e:
        ns.parse_gpu_inventory(line + "\n")
    assert e.value.line == line


def test_inventory_na_memory_is_none():
    (gpu,) = ns.parse_gpu_inventory("0, NVIDIA H200, 00000000:00:06.0, [N/A], [N/A]\n")
    assert gpu.driver_version is None and gpu.memory_total_mib is None


# --- -q ------------------------------------------------------------------------------------------------------------
def test_q_real_capture():
    q = ns.parse_q(capture("nvidia-smi-q.txt").body)
    assert ns.driver_version(q) == "580.159.04" and ns.cuda_version(q) == "13.0"
    assert list(ns.gpu_sections(q)) == ["00000000:00:06.0"]
    gpu = ns.gpu_sections(q)["00000000:00:06.0"]
    assert gpu["MIG Mode"] == {"Current": "Disabled", "Pending": "Disabled"}
    assert gpu["PCI"]["GPU Link Info"]["PCIe Generation"]["Max"] == "5"
    assert gpu["PCI"]["Bus Id"] == "00000000:00:06.0"
    assert gpu["GPU Memory Power Readings"]["Average Power Draw"] == "47.91 W"  # header printed with a trailing space
    assert gpu["Processes"] == "None"
    assert gpu["Display Mode"] == "Requested functionality has been deprecated"
    summary = ns.summarize_q(q)
    assert summary.attached_gpus == 1
    (g,) = summary.gpus
    assert (g.product_name, g.uuid, g.bdf, g.vbios_version) == (
        "NVIDIA H100 80GB HBM3",
        H100_UUID,
        "0000:00:06.0",
        "96.00.DA.00.0C",
    )
    assert g.virtualization_mode == "Pass-Through" and g.memory_total_mib == 81559
    assert g.cc == {
        "Conf Compute Protected Memory Usage.Total": "0 MiB",
        "Conf Compute Protected Memory Usage.Used": "0 MiB",
        "Conf Compute Protected Memory Usage.Free": "0 MiB",
    }


def test_q_two_gpus_with_cc_memory_and_repeated_process_keys():
    q = ns.parse_q(fixture("nvidia-smi-q-2gpu-cc.txt").body)
    summary = ns.summarize_q(q)
    assert summary.attached_gpus == 2
    assert [g.bdf for g in summary.gpus] == ["0000:00:06.0", "0000:00:07.0"]
    assert [g.product_name for g in summary.gpus] == ["NVIDIA H200", "NVIDIA H200"]
    assert summary.gpus[1].cc["Conf Compute Protected Memory Usage.Total"] == "139264 MiB"
    processes = ns.gpu_sections(q)["00000000:00:06.0"]["Processes"]
    assert processes["Process ID"] == ["2357", "2401"] and processes["Name"] == ["python3", "vllm"]
    assert ns.gpu_sections(q)["00000000:00:07.0"]["Processes"] == "None"


def test_q_vgpu_host_without_cuda_and_partial_sections():
    q = ns.parse_q(fixture("nvidia-smi-q-vgpu-host.txt").body)
    assert ns.cuda_version(q) is None and q["CUDA Version"] == "Not Found"
    assert q["vGPU Driver Capability"] == {"Heterogenous Multi-vGPU": "Supported"}
    summary = ns.summarize_q(q)
    assert summary.driver_version == "580.105.06" and summary.attached_gpus == 4
    assert [(g.bdf, g.product_name, g.memory_total_mib) for g in summary.gpus] == [
        ("0000:42:00.0", None, 97887),
        ("0000:61:00.0", None, 97887),
    ]
    reasons = ns.gpu_sections(q)["00000000:42:00.0"]["Clocks Event Reasons"]
    assert reasons["HW Thermal Slowdown"] == "Not Active"


@pytest.mark.parametrize("name", ["nvidia-smi-L.txt", "nvidia-smi-version.txt", "conf-compute-q.txt"])
def test_q_rejects_other_commands_output(name):
    body = capture(name).body
    with pytest.raises(ParseError, match="nvidia-smi -q") as e:
        ns.parse_q(body)
    assert e.value.line == next(line for line in body.splitlines() if line.strip())


def test_q_rejects_gpu_section_with_impossible_bus_id():
    text = "Driver Version : 580.159.04\nGPU FFFFFFFF:00:06.0\n    Product Name : X\n"
    with pytest.raises(ParseError, match=r"not a PCI bus ID.*line 2: 'GPU FFFFFFFF:00:06.0'"):
        ns.parse_q(text)
    with pytest.raises(ParseError, match="GPU section name"):
        ns.summarize_q({"GPU FFFFFFFF:00:06.0": {}})


def test_q_rejects_empty():
    with pytest.raises(ParseError, match="empty"):
        ns.parse_q("")


# --- plain ---------------------------------------------------------------------------------------------------------
def test_plain_real_capture():
    p = ns.parse_plain(capture("nvidia-smi.txt").body)
    assert (p.nvidia_smi_version, p.driver_version, p.cuda_version) == ("580.159.04", "580.159.04", "13.0")
    assert p.gpus == [ns.PlainGpu(0, "NVIDIA H100 80GB HBM3", "On", "00000000:00:06.0", "0000:00:06.0", 0, 81559)]


def test_plain_two_gpus_and_process_table_ignored():
    p = ns.parse_plain(fixture("nvidia-smi-plain-2gpu.txt").body)
    assert (p.driver_version, p.cuda_version) == ("550.54.15", "12.4")
    assert [(g.index, g.bdf, g.persistence_mode, g.memory_used_mib) for g in p.gpus] == [
        (0, "0000:18:00.0", "Off", 0),
        (1, "0000:2a:00.0", "Off", 72790),
    ]


def test_plain_legacy_table_without_cuda_version():
    p = ns.parse_plain(fixture("nvidia-smi-plain-legacy.txt").body)
    assert (p.driver_version, p.cuda_version) == ("396.24", None)
    assert [(g.name, g.bdf, g.persistence_mode, g.memory_total_mib) for g in p.gpus] == [
        ("GeForce GTX 1070", "0000:24:00.0", "Off", 8114)
    ]


def test_plain_rejects_text_without_banner():
    with pytest.raises(ParseError, match=r"NVIDIA-SMI .*line 1: 'GPU 0: NVIDIA H100"):
        ns.parse_plain(capture("nvidia-smi-L.txt").body)


# --- --version -----------------------------------------------------------------------------------------------------
def test_version_info_real_capture():
    assert ns.parse_version_info(capture("nvidia-smi-version.txt").body) == ns.VersionInfo(
        "580.159.04", "580.159", "580.159.04", "13.0"
    )


def test_version_info_rejects_other_lines():
    with pytest.raises(ParseError, match="line 2: 'Timestamp"):
        ns.parse_version_info("DRIVER version : 580\nTimestamp : now\n")
    with pytest.raises(ParseError, match="empty"):
        ns.parse_version_info("")
