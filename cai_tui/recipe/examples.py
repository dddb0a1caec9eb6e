"""The documented example recipe of each flow (shipped in recipes/): ``recipe new`` and the wizard start from them."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = {
    "cai": "cai-qwen2.5-3b-beijing.yaml",
    "kata-virtcca": "kata-virtcca-qwen1.5-1.8b.yaml",
    "lab": "lab-demo.yaml",
}


def example_path(flow: str) -> Path:
    from ..resources import data_dir

    return data_dir("recipes") / EXAMPLES[flow]
