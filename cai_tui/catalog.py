"""Which action, check and artifact ids exist, for the stage-spec loader's list of unknown ones.

The registries live with their implementations (checks/, actions/, render/); a registry that has not
landed yet simply contributes nothing, and the stage loader reports the ids it names as unknown.
"""

from __future__ import annotations

import importlib

_REGISTRIES = {
    "checks": ("cai_tui.checks.registry", "all_ids"),
    "actions": ("cai_tui.actions.registry", "all_ids"),
    "artifacts": ("cai_tui.render.registry", "all_ids"),
}


def known_ids(kind: str) -> frozenset[str]:
    module_name, attr = _REGISTRIES[kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            return frozenset()
        raise
    return frozenset(getattr(module, attr)())
