"""Text templates in ``assets/templates/``: ``{{NAME}}`` tokens replaced in one pass (values are never re-scanned)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..resources import data_dir

_TOKEN = re.compile(r"\{\{([A-Z_][A-Z0-9_]*)\}\}")


def load(name: str) -> str:
    return (data_dir("assets") / "templates" / name).read_text(encoding="utf-8")


def fill(template: str, values: Mapping[str, str]) -> str:
    missing = sorted(set(_TOKEN.findall(template)) - set(values))
    if missing:
        raise KeyError(f"template values missing: {', '.join(missing)}")
    return _TOKEN.sub(lambda m: values[m.group(1)], template)
