"""``nvidia-smi conf-compute``: ``-f`` (CC feature status), ``-grs`` (GPUs ready state), ``-q`` (detailed block).

Real shapes (tests/fixtures/captures/h100-vm-2026-11-22, driver 580.159.04, and NVIDIA's GPU Operator docs)::

    CC status: OFF                                        # -f
    Confidential Compute GPUs Ready state: not-ready      # -grs (between blank lines)
    ==============NVSMI CONF-COMPUTE LOG==============    # -q, then indented "Key : Value" lines
        CC State                   : OFF
        Multi-GPU Mode             : None
        CPU CC Capabilities        : None
        GPU CC Capabilities        : CC Capable
        CC GPUs Ready State        : Not Ready

With ``-i <index>`` each output has the same shape, for that GPU. In Protected PCIe (multi-GPU) mode ``CC State``
reads ``OFF`` and ``Multi-GPU Mode`` reads ``Protected PCIe``: see :attr:`CcQuery.protected_pcie`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cai_tui.parsers.errors import ParseError, at_line, nothing_found, numbered
from cai_tui.parsers.nvidia_smi import find_failure

_BANNER = re.compile(r"^=+[^=]*=+$")
_STATUS = re.compile(r"^CC status\s*:\s*(?P<value>.*?)\s*$", re.I)
_READY = re.compile(r"^Confidential Compute GPUs Ready state\s*:\s*(?P<value>.*?)\s*$", re.I)
_KV = re.compile(r"^(?P<key>\S(?:.*?\S)?)\s*:\s*(?P<value>.*?)\s*$")


def _unexpected(what: str, line_no: int, line: str, text: str) -> ParseError:
    failure = find_failure(text)
    if failure is not None:
        return at_line(
            f"nvidia-smi conf-compute failed ({failure.code}: {failure.hint})", failure.line_no, failure.line
        )
    return at_line(what, line_no, line)


def _missing(what: str, text: str) -> ParseError:
    failure = find_failure(text)
    if failure is not None:
        return _unexpected(what, failure.line_no, failure.line, text)
    return nothing_found(what, text)


def _content(text: str) -> list[tuple[int, str]]:
    """Lines that carry content: blank lines and the ``=====…=====`` banner are dropped."""
    return [(n, line.strip()) for n, line in numbered(text) if line.strip() and not _BANNER.match(line.strip())]


@dataclass(frozen=True)
class CcStatus:
    on: bool
    value: str = ""  # as printed: "ON" / "OFF"


def parse_status(text: str) -> CcStatus:
    """``nvidia-smi conf-compute -f`` → ``CC status: ON|OFF``."""
    values: list[tuple[int, str, bool]] = []
    for n, line in _content(text):
        m = _STATUS.match(line)
        if not m:
            raise _unexpected("expected 'CC status: ON|OFF' from nvidia-smi conf-compute -f", n, line, text)
        value = m["value"]
        if value.upper() not in ("ON", "OFF"):
            raise at_line("expected CC status ON or OFF", n, line)
        values.append((n, value, value.upper() == "ON"))
    if not values:
        raise _missing("expected 'CC status: ON|OFF' from nvidia-smi conf-compute -f", text)
    # Several lines (several GPUs selected with -i a,b): ON only if every one is ON.
    return CcStatus(on=all(on for _, _, on in values), value=" ".join(dict.fromkeys(v for _, v, _ in values)))


def _ready_value(value: str, n: int, line: str) -> bool:
    norm = re.sub(r"[\s_-]+", "-", value.strip().lower())
    if norm == "ready":
        return True
    if norm == "not-ready":
        return False
    raise at_line("expected ready or not-ready", n, line)


def parse_ready(text: str) -> bool:
    """``nvidia-smi conf-compute -grs`` → ``Confidential Compute GPUs Ready state: ready|not-ready``."""
    result: bool | None = None
    for n, line in _content(text):
        m = _READY.match(line)
        if not m:
            raise _unexpected(
                "expected 'Confidential Compute GPUs Ready state: ready|not-ready' from conf-compute -grs",
                n,
                line,
                text,
            )
        ready = _ready_value(m["value"], n, line)
        result = ready if result is None else (result and ready)
    if result is None:
        raise _missing("expected 'Confidential Compute GPUs Ready state: …' from nvidia-smi conf-compute -grs", text)
    return result


_QUERY_KEYS = {
    "cc state": "cc_state",
    "multi-gpu mode": "multi_gpu_mode",
    "cpu cc capabilities": "cpu_cc_capabilities",
    "gpu cc capabilities": "gpu_cc_capabilities",
    "cc gpus ready state": "ready_state",
}


@dataclass(frozen=True)
class CcQuery:
    """``conf-compute -q``, values as printed (None when the line is absent: older drivers print fewer)."""

    cc_state: str
    multi_gpu_mode: str | None
    cpu_cc_capabilities: str | None
    gpu_cc_capabilities: str | None
    ready_state: str | None
    extra: dict[str, str] = field(default_factory=dict)  # other "Key : Value" lines, e.g. "DevTools Mode"

    @property
    def cc_on(self) -> bool:
        """``CC State : ON`` (literally; see :attr:`protected_pcie` for multi-GPU mode)."""
        return self.cc_state.strip().upper() == "ON"

    @property
    def protected_pcie(self) -> bool:
        """Multi-GPU Protected PCIe mode: confidential although ``CC State`` reads OFF."""
        return (self.multi_gpu_mode or "").strip().lower() == "protected pcie"

    @property
    def confidential(self) -> bool:
        """The GPUs run confidential: CC ON, or Protected PCIe."""
        return self.cc_on or self.protected_pcie

    @property
    def gpu_capable(self) -> bool:
        """``GPU CC Capabilities : CC Capable``."""
        return (self.gpu_cc_capabilities or "").strip().lower() == "cc capable"

    @property
    def ready(self) -> bool:
        """``CC GPUs Ready State : Ready`` (``Not Ready`` → False, absent → False)."""
        return re.sub(r"[\s_-]+", "-", (self.ready_state or "").strip().lower()) == "ready"


def parse_query(text: str) -> CcQuery:
    """``nvidia-smi conf-compute -q``: the ``NVSMI CONF-COMPUTE LOG`` block."""
    found: dict[str, str] = {}
    extra: dict[str, str] = {}
    for n, line in _content(text):
        m = _KV.match(line)
        if not m:
            raise _unexpected("expected 'Key : Value' lines from nvidia-smi conf-compute -q", n, line, text)
        key, value = m["key"], m["value"]
        attr = _QUERY_KEYS.get(key.lower())
        target, name = (found, attr) if attr else (extra, key)
        if name in target and target[name] != value:
            raise at_line(f"{key!r} appears twice with different values", n, line)
        target[name] = value
    if "cc_state" not in found:
        raise _missing("expected 'CC State : …' from nvidia-smi conf-compute -q", text)
    return CcQuery(
        cc_state=found["cc_state"],
        multi_gpu_mode=found.get("multi_gpu_mode"),
        cpu_cc_capabilities=found.get("cpu_cc_capabilities"),
        gpu_cc_capabilities=found.get("gpu_cc_capabilities"),
        ready_state=found.get("ready_state"),
        extra=extra,
    )


def parse_per_gpu(texts: Mapping[int, str]) -> dict[int, CcStatus]:
    """``{index: output of 'nvidia-smi conf-compute -f -i <index>'}`` (``-q -i <index>`` output is accepted too)
    → ``{index: CcStatus}``. The message of a ParseError names the GPU index."""
    out: dict[int, CcStatus] = {}
    for index, text in texts.items():
        try:
            if re.search(r"^\s*CC State\s*:", text, re.I | re.M):
                q = parse_query(text)
                out[index] = CcStatus(on=q.cc_on, value=q.cc_state)
            else:
                out[index] = parse_status(text)
        except ParseError as e:
            raise ParseError(f"GPU {index}: {e.message}", line_no=e.line_no, line=e.line) from None
    return out


def gpus_off(per_gpu: Mapping[int, CcStatus]) -> list[int]:
    """Indexes whose CC status is OFF (the summary may say ON while one GPU is OFF)."""
    return sorted(i for i, status in per_gpu.items() if not status.on)
