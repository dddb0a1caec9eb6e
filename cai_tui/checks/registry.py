"""All checks by id. Check modules register themselves with :func:`check`; importing this module loads them."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .base import CheckFn, CheckSpec

# Modules holding checks; each registers on import. Listed explicitly so a missing module is an error, not silence.
CHECK_MODULES: tuple[str, ...] = (
    "cai_tui.checks.trustee",
    "cai_tui.checks.oss",
    "cai_tui.checks.kms",
    "cai_tui.checks.model",
    "cai_tui.checks.kata",
    "cai_tui.checks.instance",
    "cai_tui.checks.service",
    "cai_tui.checks.workstation",
)

_CHECKS: dict[str, CheckSpec] = {}
_loaded = False


def check(
    id: str,
    title: str,
    *,
    stage: str,
    flows: tuple[str, ...] = ("cai",),
    required: bool = True,
    runs_on: str = "workstation",
    depends: tuple[str, ...] = (),
    timeout: float | None = None,
) -> Callable[[CheckFn], CheckFn]:
    def deco(fn: CheckFn) -> CheckFn:
        if id in _CHECKS:
            raise ValueError(f"check {id} registered twice")
        _CHECKS[id] = CheckSpec(id, title, stage, fn, flows, required, runs_on, depends, timeout)
        return fn

    return deco


def _load() -> None:
    global _loaded
    if not _loaded:
        for name in CHECK_MODULES:
            importlib.import_module(name)
        _loaded = True


def all_checks() -> dict[str, CheckSpec]:
    _load()
    return dict(_CHECKS)


def all_ids() -> list[str]:
    return sorted(all_checks())


def get(check_id: str) -> CheckSpec:
    _load()
    return _CHECKS[check_id]
