"""Kernel build configuration and where VFIO support comes from.

Config text (``/proc/config.gz`` unzipped, ``/boot/config-$(uname -r)``, ``/lib/modules/$(uname -r)/config``):
``CONFIG_X=y``, ``=m``, ``="string"``, ``=123``, ``=0x…``, and ``# CONFIG_X is not set``.
``modules.builtin``: one ``kernel/…/name.ko`` path per built-in module.

:func:`vfio_state` combines what was found in the documented fallback order (kata-virtcca.md): config text →
``modules.builtin`` → module files under ``kernel/drivers/vfio/`` → runtime state. Nothing found is ``unknown``,
never "disabled".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from cai_tui.parsers.errors import ParseError, at_line, numbered

_SET = re.compile(r"^(?P<name>CONFIG_[A-Za-z0-9_]+)=(?P<value>.*)$")
_NOT_SET = re.compile(r"^#\s*(?P<name>CONFIG_[A-Za-z0-9_]+) is not set\s*$")
_VALUE = re.compile(r'^(?:[ymn]|-?\d+|0[xX][0-9a-fA-F]+|"(?:[^"\\]|\\.)*")$')


def _unquote(value: str) -> str:
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_config(text: str, *, strict: bool = True) -> dict[str, str]:
    """``{"CONFIG_VFIO": "y", "CONFIG_LOCALVERSION": "", "CONFIG_IOMMUFD": "n", …}``.

    ``y``/``m``/numbers as written, strings without their quotes, ``# CONFIG_X is not set`` → ``"n"``. Other comments
    and blank lines are skipped. ``strict``: any other line raises ParseError; ``strict=False`` skips it (for text mixed
    with other output, e.g. a capture that also ran ``ls``).
    """
    config: dict[str, str] = {}
    for n, raw in numbered(text):
        line = raw.strip()
        if not line:
            continue
        m = _NOT_SET.match(line)
        if m:
            config[m["name"]] = "n"
            continue
        if line.startswith("#"):
            continue
        m = _SET.match(line)
        if m and _VALUE.match(m["value"]):
            config[m["name"]] = _unquote(m["value"])
            continue
        if strict:
            raise at_line("expected 'CONFIG_X=y|m|\"string\"|number' or '# CONFIG_X is not set'", n, raw)
    return config


def _module_name(path: str) -> str:
    """``kernel/drivers/vfio/pci/vfio-pci.ko.xz`` → ``vfio_pci`` (the kernel treats - and _ alike)."""
    base = path.strip().rsplit("/", 1)[-1]
    base = re.sub(r"\.ko(?:\.(?:xz|gz|zst|bz2))?$", "", base)
    return base.replace("-", "_")


def parse_modules_builtin(text: str) -> set[str]:
    """``modules.builtin`` → module names (``vfio``, ``vfio_iommu_type1``, ``vfio_pci``; ``-`` written as ``_``)."""
    names: set[str] = set()
    for n, raw in numbered(text):
        line = raw.strip()
        if not line:
            continue
        if not re.fullmatch(r"[\w./+-]+\.ko", line):
            raise at_line("expected a 'kernel/…/name.ko' line from modules.builtin", n, raw)
        names.add(_module_name(line))
    return names


def parse_proc_modules(text: str) -> set[str]:
    """``/proc/modules`` (or ``lsmod`` output, header skipped) → names of loaded modules."""
    names: set[str] = set()
    for n, raw in numbered(text):
        parts = raw.split()
        if not parts or (n == 1 and parts[0] == "Module"):
            continue
        if not re.fullmatch(r"\w+", parts[0]) or (len(parts) > 1 and not re.fullmatch(r"[0-9]+", parts[1])):
            raise at_line("expected '<module> <size> …' from /proc/modules", n, raw)
        names.add(parts[0])
    return names


State = Literal["y", "m", "n", "unknown"]

VFIO_OPTIONS: dict[str, str] = {  # option → module name
    "CONFIG_VFIO": "vfio",
    "CONFIG_VFIO_IOMMU_TYPE1": "vfio_iommu_type1",
    "CONFIG_VFIO_PCI": "vfio_pci",
}
# Runtime paths a caller checks (existence only) and passes in ``runtime``.
RUNTIME_PATHS: tuple[str, ...] = (
    *(f"/sys/module/{m}" for m in VFIO_OPTIONS.values()),
    *(f"/sys/module/{m}/initstate" for m in VFIO_OPTIONS.values()),
    "/sys/bus/pci/drivers/vfio-pci",
    "/dev/vfio/vfio",
)
_RUNTIME_HINTS = {"CONFIG_VFIO": "/dev/vfio/vfio", "CONFIG_VFIO_PCI": "/sys/bus/pci/drivers/vfio-pci"}


@dataclass(frozen=True)
class OptionState:
    option: str
    state: State
    source: str  # "config" | "modules.builtin" | "module files" | "runtime" | "none"
    detail: str  # what was seen, for the report: "/proc/config.gz: CONFIG_VFIO=m"

    @property
    def available(self) -> bool:
        """Built in or a module (or seen present at runtime without telling which)."""
        return self.state in ("y", "m") or (self.source == "runtime" and self.state == "unknown")


def vfio_state(
    config_text: str | None = None,
    modules_builtin: str | None = None,
    module_files: Iterable[str] | None = None,
    runtime: Iterable[str] | None = None,
    *,
    config_source: str = "kernel config",
    loaded_modules: str | None = None,
) -> dict[str, OptionState]:
    """Per VFIO option (:data:`VFIO_OPTIONS`), the first source that knows, in the documented order.

    * ``config_text``: the kernel config (parsed leniently); ``config_source`` names it in ``detail``. An option the
      config omits while ``CONFIG_VFIO`` is not set is ``n`` (Kconfig prints nothing for unmet dependencies).
    * ``modules_builtin``: text of ``modules.builtin``; listed → ``y``. Not listed proves nothing.
    * ``module_files``: file names/paths found under ``/lib/modules/$(uname -r)/kernel/drivers/vfio/`` (any
      compression suffix); present → ``m``.
    * ``runtime``: which :data:`RUNTIME_PATHS` exist. ``/sys/module/<m>/initstate`` → ``m`` (only loadable modules have
      it), ``/sys/module/<m>`` alone → ``y``; the driver directory or ``/dev/vfio/vfio`` alone → present, ``unknown``
      whether built in. ``loaded_modules`` (text of ``/proc/modules``): listed → ``m``.

    ``None`` means "not looked at / not readable"; nothing found anywhere → ``unknown`` with source ``none``.
    """
    config = parse_config(config_text, strict=False) if config_text is not None else None
    builtin = parse_modules_builtin(modules_builtin) if modules_builtin is not None else None
    files = {_module_name(f) for f in module_files} if module_files is not None else None
    present = {p.rstrip("/") for p in runtime} if runtime is not None else None
    loaded = parse_proc_modules(loaded_modules) if loaded_modules is not None else None

    result: dict[str, OptionState] = {}
    for option, module in VFIO_OPTIONS.items():
        result[option] = _one(option, module, config, config_source, builtin, files, present, loaded)
    return result


def _one(
    option: str,
    module: str,
    config: dict[str, str] | None,
    config_source: str,
    builtin: set[str] | None,
    files: set[str] | None,
    present: set[str] | None,
    loaded: set[str] | None,
) -> OptionState:
    if config is not None:
        value = config.get(option)
        if value in ("y", "m", "n"):
            shown = f"# {option} is not set" if value == "n" else f"{option}={value}"
            return OptionState(option, value, "config", f"{config_source}: {shown}")  # type: ignore[arg-type]
        if value is None and option != "CONFIG_VFIO" and config.get("CONFIG_VFIO") == "n":
            return OptionState(option, "n", "config", f"{config_source}: depends on CONFIG_VFIO, which is not set")
    if builtin is not None and module in builtin:
        return OptionState(option, "y", "modules.builtin", f"modules.builtin lists {module}")
    if files is not None and module in files:
        return OptionState(option, "m", "module files", f"module file for {module} under kernel/drivers/vfio/")
    if loaded is not None and module in loaded:
        return OptionState(option, "m", "runtime", f"/proc/modules lists {module}")
    if present is not None:
        if f"/sys/module/{module}/initstate" in present:
            return OptionState(option, "m", "runtime", f"/sys/module/{module}/initstate exists (a loaded module)")
        if f"/sys/module/{module}" in present:
            return OptionState(option, "y", "runtime", f"/sys/module/{module} exists without initstate (built in)")
        hint = _RUNTIME_HINTS.get(option)
        if hint and hint in present:
            return OptionState(option, "unknown", "runtime", f"{hint} exists (built in or module: not determined)")
    return OptionState(option, "unknown", "none", "not found in any source (unknown, not disabled)")


__all__ = [
    "RUNTIME_PATHS",
    "VFIO_OPTIONS",
    "OptionState",
    "ParseError",
    "parse_config",
    "parse_modules_builtin",
    "parse_proc_modules",
    "vfio_state",
]
