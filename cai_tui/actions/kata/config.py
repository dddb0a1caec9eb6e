"""Plans of the kata-virtcca doers of KATA-1.8: the kata configuration in effect (kata.set_hook_path)."""

from __future__ import annotations

from typing import Any

from ..registry import ActionSpec, PlanStep
from ._common import CLI, kata_answers, recipe_path


def plan_set_hook_path(loaded: Any) -> list[PlanStep]:
    answers = kata_answers(loaded)
    notes: list[str] = []
    recipe = recipe_path(loaded, notes)
    hook = answers.kata.guest_hook_path.rstrip("/") or "/"
    config = answers.kata.config_path
    base = [CLI, "kata", "config", "--recipe", recipe]
    return [
        PlanStep(
            f'set guest_hook_path = "{hook}" in the kata configuration in effect (KATA-1.8)',
            [*base, "--set", f"guest_hook_path={hook}", "--write"],
            where="host",
            changes=(
                f"edits {config} (or, when it does not exist, the file kata loads: KATA_CONF_FILE, then "
                "/etc/kata-containers/configuration.toml, /usr/share/defaults/kata-containers/configuration.toml): "
                "the guest_hook_path line of its [hypervisor.<name>] table, in place; the original kept as "
                f"{config}.bak"
            ),
            notes=tuple(notes),
            undo=(*base, "--restore"),
        )
    ]


ACTIONS: list[ActionSpec] = [
    ActionSpec("kata.set_hook_path", "Point kata at the guest hooks", "kata-virtcca", plan_set_hook_path),
]
