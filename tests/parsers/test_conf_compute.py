"""nvidia-smi conf-compute parsers: real CC-OFF captures, hand-made CC-ON / ready / PPCIe / per-GPU fixtures."""

import pytest

from cai_tui.parsers import conf_compute as cc
from cai_tui.parsers.errors import ParseError
from tests.parsers._captures import capture, fixture


def test_status_real_capture_off():
    assert cc.parse_status(capture("conf-compute-f.txt").body) == cc.CcStatus(on=False, value="OFF")


def test_status_on():
    assert cc.parse_status(fixture("cc-f-on.txt").body) == cc.CcStatus(on=True, value="ON")


def test_status_tolerates_blank_lines_and_banner():
    assert cc.parse_status("\n==============NVSMI CONF-COMPUTE LOG==============\n\nCC status: ON\n\n").on


def test_status_several_lines_on_only_if_all_on():
    assert cc.parse_status("CC status: ON\nCC status: ON\n").on
    status = cc.parse_status("CC status: ON\nCC status: OFF\n")
    assert not status.on and status.value == "ON OFF"


def test_status_rejects_help_text_quoting_first_offending_line():
    with pytest.raises(ParseError) as e:
        cc.parse_status(capture("conf-compute-help.txt").body)
    assert e.value.line_no == 2 and "conf-compute -- Display Confidential Compute information." in str(e.value)


def test_status_rejects_unknown_value():
    with pytest.raises(ParseError, match=r"ON or OFF.*'CC status: MAYBE'"):
        cc.parse_status("CC status: MAYBE\n")


def test_status_empty_and_not_capable():
    with pytest.raises(ParseError, match="empty"):
        cc.parse_status("\n\n")
    c = fixture("cc-no-capable.txt")
    assert c.rc == 6
    with pytest.raises(ParseError, match=r"no_cc_capable.*'No CC capable devices found'"):
        cc.parse_status(c.body)


def test_ready_real_capture_not_ready():
    c = capture("conf-compute-grs.txt")
    assert c.body.startswith("\n") and cc.parse_ready(c.body) is False


def test_ready_ready():
    assert cc.parse_ready(fixture("cc-grs-ready.txt").body) is True


@pytest.mark.parametrize(
    ("value", "ready"), [("ready", True), ("Ready", True), ("not-ready", False), ("Not Ready", False)]
)
def test_ready_spellings(value, ready):
    assert cc.parse_ready(f"Confidential Compute GPUs Ready state: {value}\n") is ready


def test_ready_rejects_other_output():
    with pytest.raises(ParseError, match="line 1: 'CC status: OFF'"):
        cc.parse_ready(capture("conf-compute-f.txt").body)
    with pytest.raises(ParseError, match="ready or not-ready"):
        cc.parse_ready("Confidential Compute GPUs Ready state: soon\n")


def test_query_real_capture_capable_but_off():
    q = cc.parse_query(capture("conf-compute-q.txt").body)
    assert (q.cc_state, q.multi_gpu_mode, q.cpu_cc_capabilities, q.gpu_cc_capabilities, q.ready_state) == (
        "OFF",
        "None",
        "None",
        "CC Capable",
        "Not Ready",
    )
    assert (q.cc_on, q.gpu_capable, q.ready, q.protected_pcie, q.confidential) == (False, True, False, False, False)
    assert q.extra == {}


def test_query_on_and_ready_on_tdx():
    q = cc.parse_query(fixture("cc-q-on-ready-tdx.txt").body)
    assert q.cpu_cc_capabilities == "INTEL TDX"
    assert (q.cc_on, q.gpu_capable, q.ready, q.confidential) == (True, True, True, True)


def test_query_protected_pcie_reads_off_but_is_confidential():
    q = cc.parse_query(fixture("cc-q-ppcie.txt").body)
    assert q.cc_state == "OFF" and not q.cc_on
    assert q.protected_pcie and q.confidential and q.ready


def test_query_extra_lines_kept():
    q = cc.parse_query(fixture("cc-q-snp-extra.txt").body)
    assert q.cpu_cc_capabilities == "AMD SEV-SNP(vTOM Mode)"
    assert q.extra == {"DevTools Mode": "OFF"}
    assert q.cc_on and not q.ready


def test_query_older_driver_without_some_lines():
    q = cc.parse_query("    CC State : ON\n    GPU CC Capabilities : CC Capable\n")
    assert q.cc_on and q.multi_gpu_mode is None and q.ready_state is None and not q.ready


def test_query_rejects_missing_state_and_conflicts():
    with pytest.raises(ParseError, match=r"CC State.*line 1: 'CC status: OFF'"):
        cc.parse_query(capture("conf-compute-f.txt").body)
    with pytest.raises(ParseError, match="twice"):
        cc.parse_query("CC State : ON\nCC State : OFF\n")
    with pytest.raises(ParseError, match=r"'Key : Value'.*line 2"):
        cc.parse_query("CC State : ON\nnot a key value line\n")


def test_per_gpu_one_off_among_several():
    texts = {i: fixture(f"cc-f-i{i}.txt").body for i in range(4)}
    per_gpu = cc.parse_per_gpu(texts)
    assert {i: s.on for i, s in per_gpu.items()} == {0: True, 1: True, 2: False, 3: True}
    assert cc.gpus_off(per_gpu) == [2]
    summary = cc.parse_status(fixture("cc-f-on.txt").body)
    assert summary.on and cc.gpus_off(per_gpu)  # the catalogue's "summary says ON but one GPU is OFF"


def test_per_gpu_accepts_query_output_and_names_the_gpu_in_errors():
    per_gpu = cc.parse_per_gpu({0: fixture("cc-q-on-ready-tdx.txt").body, 1: capture("conf-compute-q.txt").body})
    assert per_gpu == {0: cc.CcStatus(True, "ON"), 1: cc.CcStatus(False, "OFF")}
    with pytest.raises(ParseError, match=r"^GPU 3: .*no_cc_capable"):
        cc.parse_per_gpu({0: "CC status: ON\n", 3: fixture("cc-no-capable.txt").body})
