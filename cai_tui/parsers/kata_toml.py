"""Kata Containers ``configuration.toml``: the GPU-passthrough keys, and which file is in effect.

The keys (upstream ``src/runtime/config/configuration-qemu.toml.in``): in ``[hypervisor.<name>]``:
``kernel_params``, ``guest_hook_path`` (commented out upstream), ``hot_plug_vfio`` / ``cold_plug_vfio``
(no-port|bridge-port|root-port|switch-port; commented out upstream), ``pcie_root_port``, ``default_memory`` (MiB),
``enable_annotations``; in ``[runtime]``: ``vfio_mode``. Parsing only — editing (keeping comments) is done elsewhere
with tomlkit.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from cai_tui.parsers.errors import ParseError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    tomllib = None

# Where the kata runtime looks, in order, when KATA_CONF_FILE is not set (kata-deploy installs under /opt/kata).
SEARCH_ORDER: tuple[str, ...] = (
    "/etc/kata-containers/configuration.toml",
    "/usr/share/defaults/kata-containers/configuration.toml",
    "/opt/kata/share/defaults/kata-containers/configuration-qemu-virtcca.toml",
)
ENV_OVERRIDE = "KATA_CONF_FILE"


def effective_config_path(env: Mapping[str, str], existing: Collection[str]) -> str | None:
    """The configuration file the kata runtime would load.

    ``env``: the runtime's environment; ``existing``: which candidate paths exist (the caller checks
    ``KATA_CONF_FILE`` and :data:`SEARCH_ORDER`). ``KATA_CONF_FILE`` wins when set — and when that file is missing the
    runtime fails instead of falling back, so the answer is None. Otherwise the first existing path of
    :data:`SEARCH_ORDER`, or None.
    """
    override = env.get(ENV_OVERRIDE, "").strip()
    if override:
        return override if override in existing else None
    for path in SEARCH_ORDER:
        if path in existing:
            return path
    return None


def _load_with_tomlkit(text: str) -> dict[str, Any]:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(text)
    except (TOMLKitError, ValueError, TypeError, IndexError, KeyError, RecursionError) as e:
        raise ParseError(f"configuration.toml is not valid TOML: {e}") from None
    data = doc.unwrap()
    return dict(data)


def _load(text: str, *, use_tomlkit: bool = False) -> dict[str, Any]:
    if use_tomlkit or tomllib is None:
        return _load_with_tomlkit(text)
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        raise ParseError(f"configuration.toml is not valid TOML: {e}") from None


@dataclass(frozen=True)
class KataConfig:
    hypervisor_name: str | None  # "qemu" from [hypervisor.qemu]
    guest_hook_path: str | None  # None: not set (commented out, as upstream ships it)
    kernel_params: str | None
    cold_plug_vfio: str | None  # None: not set (upstream default "no-port")
    hot_plug_vfio: str | None
    pcie_root_port: int | None
    default_memory: int | None  # MiB
    enable_annotations: tuple[str, ...]
    vfio_mode: str | None  # [runtime] vfio_mode: "vfio" | "guest-kernel"
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def hypervisor(self) -> dict[str, Any]:
        """The ``[hypervisor.<name>]`` table."""
        table = self.raw.get("hypervisor", {}).get(self.hypervisor_name or "", {})
        return table if isinstance(table, dict) else {}

    @property
    def kernel_param_map(self) -> dict[str, str | None]:
        """``kernel_params`` split like /proc/cmdline: ``{"virtcca_cvm_guest": "1", …}``."""
        from cai_tui.parsers.cpuinfo import parse_cmdline

        return parse_cmdline(self.kernel_params or "").params


def _typed(table: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = table.get(key)
    if value is None:
        return None
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ParseError(f"{where}: {key} must be an integer, not {value!r:.60}")
    if kind is str and not isinstance(value, str):
        raise ParseError(f"{where}: {key} must be a string, not {value!r:.60}")
    return value


def parse_kata_config(text: str, *, use_tomlkit: bool = False) -> KataConfig:
    """Parse a kata ``configuration.toml`` (tomllib on Python ≥ 3.11, tomlkit on 3.10 or when asked)."""
    raw = _load(text, use_tomlkit=use_tomlkit)
    hypervisors = raw.get("hypervisor", {})
    if not isinstance(hypervisors, dict):
        raise ParseError("configuration.toml: 'hypervisor' must be a table ([hypervisor.qemu])")
    tables = {name: t for name, t in hypervisors.items() if isinstance(t, dict)}
    if len(tables) > 1:
        raise ParseError(f"configuration.toml: more than one hypervisor table: {', '.join(sorted(tables))}")
    name = next(iter(tables), None)
    hv: Mapping[str, Any] = tables[name] if name is not None else {}
    where = f"[hypervisor.{name}]"
    annotations = hv.get("enable_annotations", [])
    if not isinstance(annotations, list) or not all(isinstance(a, str) for a in annotations):
        raise ParseError(f"{where}: enable_annotations must be a list of strings")
    runtime = raw.get("runtime", {})
    if not isinstance(runtime, dict):
        raise ParseError("configuration.toml: 'runtime' must be a table")
    return KataConfig(
        hypervisor_name=name,
        guest_hook_path=_typed(hv, "guest_hook_path", str, where),
        kernel_params=_typed(hv, "kernel_params", str, where),
        cold_plug_vfio=_typed(hv, "cold_plug_vfio", str, where),
        hot_plug_vfio=_typed(hv, "hot_plug_vfio", str, where),
        pcie_root_port=_typed(hv, "pcie_root_port", int, where),
        default_memory=_typed(hv, "default_memory", int, where),
        enable_annotations=tuple(annotations),
        vfio_mode=_typed(runtime, "vfio_mode", str, "[runtime]"),
        raw=raw,
    )
