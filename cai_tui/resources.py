"""Locate the data folders (screens/, recipes/, assets/) from a wheel or a checkout.

In a wheel they are shipped as ``cai_tui/_data/<name>`` (see pyproject's force-include); in a checkout or
an editable install they are the top-level folders beside the package.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DATA_FOLDERS = ("screens", "recipes", "assets")


def data_dir(name: str) -> Path:
    if name not in DATA_FOLDERS:
        raise ValueError(f"unknown data folder {name!r}")
    packaged = resources.files("cai_tui") / "_data" / name
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"cai-tui data folder {name!r} not found (looked in {packaged} and {checkout}); the installation is incomplete"
    )
