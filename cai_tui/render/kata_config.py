"""KATA-1.8: the edit of kata's ``configuration.toml`` that points it at the guest hooks, as a script that applies it.

The procedure sets one key, ``guest_hook_path``, in the ``[hypervisor.<name>]`` table. The script replaces the
shipped commented-out line in place (appending it at the end of the file would put it into another table), backs the
file up first, writes atomically, and only reports (never changes) the other keys of the virtCCA passthrough setup.
"""

from __future__ import annotations

from ..recipe import KataRecipe
from . import templates
from .base import Prompter, Rendered, Renderer
from .shell import q

KEY = "guest_hook_path"
MIN_MEMORY_MIB = 20480  # the stage spec's example default_memory for a GPU guest (no recipe field)


def toml_string(value: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def setting(recipe: KataRecipe) -> str:
    """The line the configuration must hold: ``guest_hook_path = "/usr/share/oci/hooks"``."""
    return f"{KEY} = {toml_string(recipe.answers.kata.guest_hook_path.rstrip('/') or '/')}"


class KataConfigPatch(Renderer):
    kind = "kata-config-patch"
    title = "set guest_hook_path in kata's configuration.toml, with a backup (KATA-1.8)"
    flow = "kata-virtcca"
    default_path = "~/kata-config-patch.sh"
    mode = 0o755

    def render(self, recipe: KataRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        config = recipe.answers.kata.config_path
        line = setting(recipe)
        text = templates.fill(
            templates.load("kata-config-patch.sh.tmpl"),
            {
                "CONFIG": q(config),
                "SETTING": q(line),
                "CONFIG_COMMENT": " ".join(config.splitlines()),
                "SETTING_COMMENT": " ".join(line.splitlines()),
                "MIN_MEMORY_MIB": str(MIN_MEMORY_MIB),
            },
        )
        return self.done(text)


__all__ = ["KataConfigPatch", "setting", "toml_string"]
