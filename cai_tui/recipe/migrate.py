"""Schema migrations: a function per old version turns a raw mapping into the next version's shape."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from .model import SCHEMA_VERSION

Migration = Callable[[MutableMapping[str, Any]], None]

# version N -> function that upgrades a version-N mapping in place to N+1. None yet: version 1 is the first.
MIGRATIONS: dict[int, Migration] = {}


class MigrationError(Exception):
    pass


def migrate(data: MutableMapping[str, Any]) -> list[str]:
    """Upgrade in place to SCHEMA_VERSION; returns notes of what was done. Newer versions are refused."""
    version = data.get("schema_version")
    if version is None:
        raise MigrationError(f"schema_version is missing; add `schema_version: {SCHEMA_VERSION}` at the top")
    if isinstance(version, bool) or not isinstance(version, int):
        raise MigrationError(f"schema_version must be a whole number (this cai-tui writes {SCHEMA_VERSION})")
    if version > SCHEMA_VERSION:
        raise MigrationError(
            f"schema_version {version} is newer than this cai-tui understands ({SCHEMA_VERSION}); "
            "upgrade cai-tui (pip install -U cai-tui) to read this recipe"
        )
    if version < 1:
        raise MigrationError(f"schema_version {version} is not a valid version (versions start at 1)")
    notes = []
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise MigrationError(f"no migration from schema_version {version}")
        step(data)
        notes.append(f"migrated from schema_version {version} to {version + 1}")
        version += 1
        data["schema_version"] = version
    return notes
