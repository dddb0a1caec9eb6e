"""``/proc/cpuinfo`` (first processor) and ``/proc/cmdline``.

A TDX guest has the ``tdx_guest`` CPU flag; a virtCCA (Arm CCA) guest kernel is booted with ``virtcca_cvm_guest=1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cai_tui.parsers.errors import ParseError, at_line, nothing_found, numbered

_KNOWN_KEYS = frozenset(
    {
        "processor",
        "flags",
        "Features",
        "model name",
        "vendor_id",
        "cpu family",
        "CPU implementer",
        "BogoMIPS",
        "bogomips",
    }
)
_KV = re.compile(r"^(?P<key>[^:\t]*?[^:\s])\s*:\s?(?P<value>.*)$")


@dataclass(frozen=True)
class CpuInfo:
    flags: frozenset[str]  # x86 "flags", or arm64 "Features"
    model_name: str | None
    vendor_id: str | None
    fields: dict[str, str] = field(default_factory=dict)  # every "key : value" of the first processor

    @property
    def tdx_guest(self) -> bool:
        return "tdx_guest" in self.flags

    @property
    def hypervisor(self) -> bool:
        """The ``hypervisor`` flag: running in a VM (x86)."""
        return "hypervisor" in self.flags


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor block of ``/proc/cpuinfo`` (up to the first blank line after content).

    Also accepts grep'd fragments (``flags : …`` / ``model name : …`` lines). arm64 has no ``model name``; its
    ``Features`` line is used as the flags.
    """
    fields: dict[str, str] = {}
    for n, line in numbered(text):
        if not line.strip():
            if fields:
                break
            continue
        m = _KV.match(line.strip())
        if not m:
            raise at_line("expected 'key : value' lines from /proc/cpuinfo", n, line)
        fields.setdefault(m["key"].strip(), m["value"].strip())
    if not fields:
        raise ParseError("/proc/cpuinfo: the output is empty")
    if not _KNOWN_KEYS.intersection(fields):
        raise nothing_found("expected /proc/cpuinfo fields (processor, flags, model name, Features…)", text)
    flags = fields.get("flags", fields.get("Features", ""))
    return CpuInfo(
        flags=frozenset(flags.split()),
        model_name=fields.get("model name"),
        vendor_id=fields.get("vendor_id"),
        fields=fields,
    )


@dataclass(frozen=True)
class KernelCmdline:
    params: dict[str, str | None]  # last occurrence wins; a bare word (``quiet``) maps to None
    items: tuple[tuple[str, str | None], ...]  # every parameter in order, repeats kept
    init_args: tuple[str, ...] = ()  # what follows " -- " (passed to init)

    def get(self, key: str) -> str | None:
        return self.params.get(key)

    def has(self, key: str) -> bool:
        return key in self.params

    @property
    def virtcca_guest(self) -> bool:
        """``virtcca_cvm_guest=1``: booted as a virtCCA confidential VM guest."""
        return self.params.get("virtcca_cvm_guest") == "1"


def _tokens(text: str, line: str) -> list[str]:
    """Split like the kernel's next_arg(): whitespace outside double quotes; quotes removed."""
    tokens: list[str] = []
    current: list[str] = []
    in_quote = False
    started = False
    for ch in text:
        if ch == '"':
            in_quote = not in_quote
            started = True
            continue
        if ch.isspace() and not in_quote:
            if started:
                tokens.append("".join(current))
                current, started = [], False
            continue
        current.append(ch)
        started = True
    if in_quote:
        raise ParseError(f"/proc/cmdline: unbalanced double quote: {line[:160]!r}", line_no=1, line=line)
    if started:
        tokens.append("".join(current))
    return tokens


def parse_cmdline(text: str) -> KernelCmdline:
    """``/proc/cmdline`` → parameters. ``key=value`` (value may be quoted, may contain ``=``), bare words → None."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        raise at_line("/proc/cmdline is one line", 2, lines[1])
    line = lines[0] if lines else ""
    tokens = _tokens(line, line)
    init_args: tuple[str, ...] = ()
    if "--" in tokens:
        cut = tokens.index("--")
        tokens, init_args = tokens[:cut], tuple(tokens[cut + 1 :])
    items: list[tuple[str, str | None]] = []
    for token in tokens:
        key, sep, value = token.partition("=")
        if not key:
            raise ParseError(f"/proc/cmdline: parameter without a name: {token[:160]!r}", line_no=1, line=line)
        items.append((key, value if sep else None))
    return KernelCmdline(params=dict(items), items=tuple(items), init_args=init_args)
