"""An Ansible inventory (INI or YAML, host and group vars), read by Ansible's own code so that hosts, groups, vars and
``--limit`` patterns mean here exactly what they mean to ``ansible-playbook``.

Per-host recipe overrides come from the host var ``cai_tui_answers``: a mapping of recipe paths (``instance.ip``,
``tng.port``, ``targets.instance``…) to values, applied with the recipe model's validation (:func:`recipe_for_host`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ansible import FleetInputError

if TYPE_CHECKING:
    from ..recipe import LoadedRecipe

ANSWERS_VAR = "cai_tui_answers"


@dataclass
class InventoryHost:
    name: str
    vars: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        host = self.vars.get("ansible_host", self.name)
        port = self.vars.get("ansible_port")
        return f"{host}:{port}" if port else str(host)

    @property
    def answers(self) -> dict[str, Any]:
        raw = self.vars.get(ANSWERS_VAR) or {}
        if not isinstance(raw, dict):
            raise FleetInputError(
                f"host {self.name}: {ANSWERS_VAR} must be a mapping of recipe paths to values "
                f"(e.g. {ANSWERS_VAR}: {{instance.ip: 10.0.0.5}}), not {type(raw).__name__}"
            )
        return {str(k): v for k, v in raw.items()}


def load_inventory(path: Path, limit: str | None = None) -> list[InventoryHost]:
    """The inventory's hosts (after ``limit``) with their merged vars, in Ansible's order.

    FleetInputError when the file is missing, Ansible cannot parse it, or no host is left."""
    if not path.exists():
        raise FleetInputError(f"--hosts {path}: no such file (an Ansible inventory, INI or YAML)")
    from ansible import constants as C
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    C.INVENTORY_ANY_UNPARSED_IS_FAILED = True  # a file no plugin parses is an error, not an empty inventory
    loader = DataLoader()
    try:
        inv = InventoryManager(loader=loader, sources=[os.fspath(path)])
        if limit:
            inv.subset(limit)
        hosts = inv.get_hosts()
    except AnsibleError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FleetInputError(
            f"--hosts {path}: Ansible cannot read it as an inventory ({first}); "
            f"`ansible-inventory -i {path} --list` shows why"
        ) from None
    if not hosts:
        if limit:
            raise FleetInputError(f"--limit {limit!r} matches no host of {path}")
        raise FleetInputError(f"--hosts {path}: the inventory has no hosts")
    vm = VariableManager(loader=loader, inventory=inv)
    out = []
    for h in hosts:
        merged = vm.get_vars(host=h, include_hostvars=False)
        plain = {k: v for k, v in merged.items() if not k.startswith(("ansible_playbook_python", "groups", "omit"))}
        out.append(InventoryHost(h.name, _plain(plain)))
    return out


def _plain(value: Any) -> Any:
    """Ansible's wrapped strings and mappings as plain Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return "" if value is None else str(value)


def load_base_recipe(recipe: Path) -> LoadedRecipe:
    """The recipe as its file says (FleetInputError with its problems): what every host without overrides uses."""
    from ..recipe import RecipeError, load_recipe

    try:
        return load_recipe(recipe)
    except RecipeError as e:
        raise FleetInputError("; ".join(str(p) for p in e.problems)) from None


def recipe_for_host(recipe: Path, host: InventoryHost, base: LoadedRecipe | None = None) -> LoadedRecipe:
    """The recipe with ``host``'s ``cai_tui_answers`` applied (validated as the wizard validates a field); ``base``
    (:func:`load_base_recipe`, read once per run) itself for a host without overrides — it is only read.

    FleetInputError names the host, the path and the problem."""
    from ..recipe.draft import Draft

    if base is not None and not host.answers:
        return base
    draft = Draft(load_base_recipe(recipe))  # its own copy: setting a field changes the loaded recipe
    for path, value in host.answers.items():
        problem = draft.set(path, _text(value))
        if problem is not None:
            raise FleetInputError(f"host {host.name}: {ANSWERS_VAR}.{path}: {problem.message}")
    return draft.loaded


def env_secret_names(loaded: LoadedRecipe | None) -> frozenset[str]:
    """The environment variables the recipe's secrets are read from (``env:NAME`` references)."""
    from pydantic import BaseModel

    from ..recipe.secrets import SecretRef

    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, SecretRef):
            if value.scheme == "env":
                names.add(value.target)
        elif isinstance(value, BaseModel):
            for key in type(value).model_fields:
                walk(getattr(value, key))
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    if loaded is not None:
        walk(loaded.recipe)
    return frozenset(names)
