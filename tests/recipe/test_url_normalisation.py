"""URLs are normalised once, in the model: with or without a trailing slash the recipe holds one spelling, so
cai.env and the TNG config come out the same; a saved recipe keeps the text the user wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cai_tui.recipe import Draft, load_recipe
from cai_tui.render import get
from cai_tui.render.tng import client_config
from tests.helpers import REPO
from tests.render.conftest import CAI_RECIPE, SEED_EXTRAS, with_answers

LAB = REPO / "recipes/lab-demo.yaml"
BASE = "http://alb-x.cn-beijing.alb.aliyuncsslb.com/trustee"


def _recipe(url: str, endpoint: str = "https://oss-cn-beijing.aliyuncs.com"):
    seed = load_recipe(CAI_RECIPE).recipe
    return with_answers(
        seed,
        {
            **SEED_EXTRAS,
            "trustee": {"url": url},
            "oss": {**SEED_EXTRAS["oss"], "endpoint": endpoint, "access_key_id": "env:X", "access_key_secret": "env:Y"},
        },
    )


@pytest.mark.parametrize("url", [BASE + "/", BASE + "///", "  " + BASE + "/ "])
def test_the_model_holds_one_spelling(url: str) -> None:
    assert _recipe(url).answers.trustee.url == BASE
    assert _recipe(BASE, endpoint="https://oss-cn-beijing.aliyuncs.com/").answers.oss.endpoint == (
        "https://oss-cn-beijing.aliyuncs.com"
    )


@pytest.mark.parametrize("url", [BASE + "/", BASE + "//"])
def test_cai_env_and_tng_config_do_not_depend_on_the_slash(url: str) -> None:
    plain, slashed = _recipe(BASE), _recipe(url, endpoint="https://oss-cn-beijing.aliyuncs.com/")
    env = get("cai-env").render(plain).text
    assert env == get("cai-env").render(slashed).text
    assert f'TRUSTEE_URL="{BASE}/"' in env  # the seed's one trailing slash
    assert client_config(plain) == client_config(slashed)
    assert client_config(plain)["add_ingress"][0]["verify"]["as_addr"] == BASE + "/as/"
    assert get("tng-client").render(plain).text == get("tng-client").render(slashed).text
    assert json.dumps(client_config(slashed)).count("//as") == 0


def test_a_saved_recipe_keeps_the_users_spelling(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    text = LAB.read_text().replace("18600/trustee\n", "18600/trustee/\n")
    assert "18600/trustee/\n" in text
    path.write_text(text)
    shutil.copymode(LAB, path)
    draft = Draft.open(path)
    assert draft.loaded.recipe.answers.trustee.url.endswith("/trustee")
    draft.save()
    assert path.read_text() == text  # byte-identical: nothing was changed
    assert draft.set("tng.max_tokens", "64") is None
    draft.save()
    assert "18600/trustee/\n" in path.read_text()  # another field's change leaves the URL as written
    assert draft.set("trustee.url", "http://127.0.0.1:18600/other/") is None
    draft.save()
    assert "url: http://127.0.0.1:18600/other\n" in path.read_text()  # a new value is written as the model holds it
