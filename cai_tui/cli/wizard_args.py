"""The wizard's own options (``cai-tui [--lab [--bare]] [--recipe FILE] [--lang en|zh]``) read without typer.

Typer coerces every parameter through pydantic, and importing pydantic costs more than the wizard's whole first
paint; so a command line that only opens the wizard is read here. Anything else (a sub-command, --help, --version,
a repeated or unknown option, a value that looks like an option) is left to typer, which also gives the errors.
"""

from __future__ import annotations

from typing import Any

FLAGS = {"--lab": "lab", "--bare": "bare"}
VALUED = {"--recipe": "recipe", "--lang": "lang"}


def wizard_args(argv: list[str]) -> dict[str, Any] | None:
    """``run_wizard`` keyword arguments for ``argv``, or None when typer must read it."""
    found: dict[str, Any] = {}
    rest = list(argv)
    while rest:
        val: bool | str
        arg = rest.pop(0)
        name, eq, value = arg.partition("=")
        if name in FLAGS and not eq:
            key, val = FLAGS[name], True
        elif name in VALUED:
            if not eq:
                if not rest:
                    return None
                value = rest.pop(0)
            if not value or value.startswith("-"):
                return None
            key, val = VALUED[name], value
        else:
            return None
        if key in found:
            return None
        found[key] = val
    return {
        "lab": found.get("lab", False),
        "bare": found.get("bare", False),
        "recipe": found.get("recipe"),
        "lang": found.get("lang", "en"),
    }
