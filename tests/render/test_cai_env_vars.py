"""The cai.env table, both directions: every variable the renderer writes is read back by the troubleshooter into the
same recipe value, and a deployed value that differs is seen as drift, for each variable of the one table."""

from __future__ import annotations

from pathlib import Path

import pytest

from cai_tui.render import get
from cai_tui.render.cai_env_vars import CAI_ENV_VARS
from cai_tui.troubleshoot.deployed import compare, parse_env
from tests.render.conftest import with_answers

AK_ID = "LTAI5tTableTestKeyId01"
AK_SECRET = 'table-"secret"-$HOME-\\-tail'
TOKEN = "STS.table.token.000111"
# a value the model accepts for each non-secret variable, other than the recipe's
OTHER = {
    "TRUSTEE_URL": "http://other.example.com/t2/",
    "TRUSTEE_POLICY": "other-policy",
    "MODEL_KEY_ID": "kbs:///default/aliyun/other-key",
    "MODEL_ENCRYPTION_METHOD": "sam",
    "MODEL_OSS_BUCKET_PATH": "other-bucket:/elsewhere/",
    "MODEL_OSS_ENDPOINT": "https://oss-cn-hangzhou.aliyuncs.com",
    "MODEL_SHARING_PEER": "10.0.0.9",
    "MODEL_SERVICE_PORT": "9090",
    "MODEL_MOUNT_POINT": "/srv/model",
}


@pytest.fixture
def recipe(cai_full, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TT_AK_ID", AK_ID)
    monkeypatch.setenv("TT_TOKEN", TOKEN)
    sk = tmp_path / "sk"
    sk.write_text(AK_SECRET)
    sk.chmod(0o600)
    return with_answers(
        cai_full,
        {
            "oss": {
                "access_key_id": "env:TT_AK_ID",
                "access_key_secret": f"file:{sk}",
                "session_token": "env:TT_TOKEN",
            },
            "service": {"sharing_peers": ["172.30.0.5", "172.30.0.6"]},
            "trustee": {"url": "http://alb-x.cn-beijing.alb.aliyuncsslb.com/xxxx"},
        },
    )


def test_the_rendered_file_sets_exactly_the_tables_variables(recipe) -> None:
    values = parse_env(get("cai-env").render(recipe, resolve=True).text)
    assert set(values) == {v.name for v in CAI_ENV_VARS}


@pytest.mark.parametrize("var", [v for v in CAI_ENV_VARS if not v.secret], ids=lambda v: v.name)
def test_each_value_round_trips(recipe, var) -> None:
    value = var.value(recipe.answers)
    assert var.from_env(var.to_env(value)) == value
    back = var.from_env(parse_env(get("cai-env").render(recipe, resolve=True).text)[var.name])
    assert back == value


def test_rendered_then_read_back_is_the_recipe(recipe, tmp_path: Path) -> None:
    values = parse_env(get("cai-env").render(recipe, resolve=True).text)
    copy, drift, secrets = compare(recipe, values, str(tmp_path))
    assert drift == []
    assert {AK_ID, AK_SECRET, TOKEN} <= set(secrets)
    for var in CAI_ENV_VARS:
        if not var.secret:
            assert var.value(copy.answers) == var.value(recipe.answers), var.name


@pytest.mark.parametrize("name", sorted(OTHER))
def test_a_changed_variable_is_drift_and_lands_in_its_field(recipe, tmp_path: Path, name: str) -> None:
    values = parse_env(get("cai-env").render(recipe, resolve=True).text)
    values[name] = OTHER[name]
    copy, drift, _ = compare(recipe, values, str(tmp_path))
    assert [(d.var, d.kind) for d in drift] == [(name, "differs")]
    var = next(v for v in CAI_ENV_VARS if v.name == name)
    assert var.to_env(var.value(copy.answers)).rstrip("/") == OTHER[name].rstrip("/")


def test_a_trailing_slash_alone_is_no_drift(recipe, tmp_path: Path) -> None:
    values = parse_env(get("cai-env").render(recipe, resolve=True).text)
    assert values["TRUSTEE_URL"].endswith("/xxxx/")  # the seed's spelling
    values["TRUSTEE_URL"] = values["TRUSTEE_URL"].rstrip("/")
    _, drift, _ = compare(recipe, values, str(tmp_path))
    assert drift == []
