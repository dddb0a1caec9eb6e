"""The deployed cai.env read back: parsed as compose reads it, compared with the recipe, turned into the recipe the
related checks run with — secrets never shown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cai_tui import render
from cai_tui.recipe import load_recipe, resolve_secret
from cai_tui.render.cai_env import env_quote
from cai_tui.targets.local import LocalTarget
from cai_tui.troubleshoot.deployed import compare, deployed_recipe, parse_env


def test_parse_env_inverts_the_renderers_quoting() -> None:
    tricky = 'a "quoted" $HOME \\ back'
    text = "\n".join(
        [
            "# comment",
            f"A={env_quote(tricky, field='A')}",
            "B=bare/value # trailing comment",
            "C='single $x'",
            "export D=1",
            "E=",
            "not a line",
        ]
    )
    assert parse_env(text) == {"A": tricky, "B": "bare/value", "C": "single $x", "D": "1", "E": ""}


def _rendered(lab: Any) -> dict[str, str]:
    loaded = load_recipe(lab.recipe_path)
    return parse_env(render.get("cai-env").render(loaded.recipe, resolve=True).text)


def test_same_values_no_drift(lab: Any, tmp_path: Path) -> None:
    loaded = load_recipe(lab.recipe_path)
    _, drift, secrets = compare(loaded.recipe, _rendered(lab), str(tmp_path))
    assert drift == []
    assert resolve_secret(loaded.recipe.answers.oss.access_key_secret, field="x") in secrets


def test_drift_named_invalid_refused_secret_not_shown(lab: Any, tmp_path: Path) -> None:
    loaded = load_recipe(lab.recipe_path)
    values = _rendered(lab)
    real_secret = values["MODEL_OSS_SECRET_ACCESS_KEY"]
    values["TRUSTEE_URL"] = "http://127.0.0.1:9/kbs/"
    values["MODEL_KEY_ID"] = "model-decryption-key"
    values["MODEL_SERVICE_PORT"] = "80a"
    values["MODEL_OSS_SECRET_ACCESS_KEY"] = "Planted-Deployed-Secret-123"
    copy, drift, secrets = compare(loaded.recipe, values, str(tmp_path))
    kinds = {d.var: d.kind for d in drift}
    assert kinds == {
        "TRUSTEE_URL": "differs",
        "MODEL_KEY_ID": "invalid",
        "MODEL_SERVICE_PORT": "invalid",
        "MODEL_OSS_SECRET_ACCESS_KEY": "differs",
    }
    text = " ".join(d.message for d in drift)
    assert "Planted-Deployed-Secret-123" not in text and real_secret not in text
    assert "secret: not shown" in text
    # the checks' recipe carries the deployed values that are valid; the invalid ones keep the recipe's
    assert str(copy.answers.trustee.url).rstrip("/") == "http://127.0.0.1:9/kbs"
    assert copy.answers.trustee.model_key_id == loaded.recipe.answers.trustee.model_key_id
    assert copy.answers.service.port == loaded.recipe.answers.service.port
    ref = copy.answers.oss.access_key_secret
    assert ref is not None and ref.scheme == "file"
    assert resolve_secret(ref, field="x") == "Planted-Deployed-Secret-123"
    assert (Path(ref.target).stat().st_mode & 0o777) == 0o600
    assert "Planted-Deployed-Secret-123" in secrets  # handed to the scrubber
    assert loaded.recipe.answers.trustee.url != copy.answers.trustee.url  # the user's recipe is untouched


def test_read_from_the_target(lab: Any, tmp_path: Path) -> None:
    loaded = load_recipe(lab.recipe_path)
    env_file = tmp_path / "home" / "cai.env"
    env_file.parent.mkdir()
    loaded.recipe.answers.service.env_file = str(env_file)
    assert asyncio.run(deployed_recipe(loaded.recipe, LocalTarget(), str(tmp_path))) is None
    text = (
        render.get("cai-env")
        .render(loaded.recipe, resolve=True)
        .text.replace('TRUSTEE_POLICY="default"', 'TRUSTEE_POLICY="other"')
    )
    env_file.write_text(text)
    got = asyncio.run(deployed_recipe(loaded.recipe, LocalTarget(), str(tmp_path)))
    assert got is not None and got.path == str(env_file)
    assert [d.var for d in got.drift] == ["TRUSTEE_POLICY"] and got.recipe is not None
    assert got.recipe.answers.trustee.policy == "other"
