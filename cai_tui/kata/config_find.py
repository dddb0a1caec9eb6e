"""Which kata ``configuration.toml`` is in effect (KATA-1.8), the way the kata runtime looks for it.

Read from kata-containers' source (4.1.0, commit 7c6ba40c):

* ``src/runtime/pkg/katautils/config.go`` ``GetDefaultConfigFilePaths``: ``DEFAULTSYSCONFRUNTIMECONFIGURATION``
  (``$(SYSCONFDIR)/kata-containers/configuration.toml``, i.e. ``/etc/…``) first, then ``defaultRuntimeConfiguration``
  (``$(DEFAULTSDIR)/kata-containers/configuration.toml``, ``/usr/share/defaults/…`` for ``PREFIX=/usr``; kata-deploy
  builds with ``PREFIX=/opt/kata``). The first that exists is used.
* ``src/runtime/pkg/containerd-shim-v2/create.go``: the shim takes containerd's runtime option ``ConfigPath`` first,
  then ``KATA_CONF_FILE`` — since 4.0.0 only when it resolves to one of the default paths above ("invalid
  KATA_CONF_FILE …: only shipped Kata configuration files are accepted"); ``kata-runtime`` takes ``--config``, then
  ``KATA_CONF_FILE`` as is (``src/runtime/README.md``). A missing ``KATA_CONF_FILE`` is an error, not a fall-back.
* runtime-rs (``src/libs/kata-types/src/config/default.rs``) has its own list under ``…/kata-containers/runtime-rs/``.
* ``config.d/`` beside the file: drop-in fragments, loaded in order after it, override its keys.

The order used here is :data:`cai_tui.parsers.kata_toml.SEARCH_ORDER` (the same as the ``kata.config`` check, which
adds kata-virtcca's kata-deploy file), after ``KATA_CONF_FILE``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

RUNTIME_RS_ORDER: tuple[str, ...] = (
    "/etc/kata-containers/runtime-rs/configuration.toml",
    "/usr/share/defaults/kata-containers/runtime-rs/configuration.toml",
    "/opt/kata/share/defaults/kata-containers/runtime-rs/configuration.toml",
)


class ConfigNotFound(Exception):
    """No configuration file to edit; the message names what was looked at and the fix."""


@dataclass(frozen=True)
class Found:
    path: str
    why: str  # how it was chosen, for the output
    notes: tuple[str, ...] = field(default=())  # what else the user should know (another file in effect, config.d)


def _exists(path: str) -> bool:
    return os.path.isfile(path)


def effective(env: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """(the file the kata runtime loads, why); (None, why not) when there is none."""
    from ..parsers.kata_toml import ENV_OVERRIDE, SEARCH_ORDER

    env = os.environ if env is None else env
    override = env.get(ENV_OVERRIDE, "").strip()
    if override:
        if _exists(override):
            return override, f"{ENV_OVERRIDE}={override}"
        return None, f"{ENV_OVERRIDE}={override}, which does not exist (the runtime fails, it does not fall back)"
    for path in SEARCH_ORDER:
        if _exists(path):
            return path, "the first existing file of kata's search order (" + ", ".join(SEARCH_ORDER) + ")"
    return None, "none of " + ", ".join(SEARCH_ORDER) + " exists"


def _shipped(path: str) -> bool:
    from ..parsers.kata_toml import SEARCH_ORDER

    real = os.path.realpath(path)
    return any(real == os.path.realpath(p) for p in SEARCH_ORDER)


def drop_ins(path: str) -> list[str]:
    """The ``config.d`` fragments that override ``path``'s keys (sorted, as kata loads them)."""
    d = os.path.join(os.path.dirname(path), "config.d")
    try:
        return [os.path.join(d, n) for n in sorted(os.listdir(d)) if os.path.isfile(os.path.join(d, n))]
    except OSError:
        return []


def find_config(recipe_path: str | None, env: Mapping[str, str] | None = None) -> Found:
    """The file to edit: the recipe's ``kata.config_path`` when it exists, else the file kata loads
    (``KATA_CONF_FILE``, then the search order). Says when the two differ. ConfigNotFound when there is none."""
    from ..parsers.kata_toml import ENV_OVERRIDE

    in_effect, why = effective(env)
    notes: list[str] = []
    if recipe_path and _exists(recipe_path):
        found_why = f"the recipe's kata.config_path ({recipe_path})"
        if in_effect is None:
            notes.append(f"kata may not load it: {why}")
        elif os.path.realpath(in_effect) != os.path.realpath(recipe_path):
            notes.append(
                f"kata loads {in_effect} ({why}), not {recipe_path}: set answers.kata.config_path to {in_effect}, "
                f"or {ENV_OVERRIDE} for the runtime"
            )
        path = recipe_path
    elif in_effect is not None:
        path, found_why = in_effect, why
        if recipe_path:
            notes.append(f"the recipe's kata.config_path {recipe_path} does not exist: editing {in_effect} instead")
    else:
        raise ConfigNotFound(
            f"no kata configuration file to edit: {why}"
            + (f"; the recipe's kata.config_path {recipe_path} does not exist either" if recipe_path else "")
            + ". Install kata-containers (its configuration.toml under /usr/share/defaults/kata-containers), copy it "
            "to /etc/kata-containers/configuration.toml and set answers.kata.config_path to it "
            "(`kata-runtime --show-default-config-paths` lists the files kata looks at); runtime-rs looks at "
            + ", ".join(RUNTIME_RS_ORDER)
        )
    override = (os.environ if env is None else env).get(ENV_OVERRIDE, "").strip()
    if override and in_effect == override and not _shipped(override):
        notes.append(
            f"{ENV_OVERRIDE}={override} is not one of kata's default paths: kata 4.0 and later's shim refuses it "
            "('only shipped Kata configuration files are accepted'); 3.x takes it"
        )
    fragments = drop_ins(path)
    if fragments:
        notes.append("config.d fragments are loaded after it and override its keys: " + ", ".join(fragments))
    return Found(path, found_why, tuple(notes))


__all__ = ["RUNTIME_RS_ORDER", "ConfigNotFound", "Found", "drop_ins", "effective", "find_config"]
