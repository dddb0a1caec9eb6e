"""cai.env: placeholders when previewing; resolved only for writing, then 0600, and never printed unredacted."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from cai_tui.recipe import REDACTOR
from cai_tui.render import get
from tests.helpers import run_cli
from tests.render.conftest import with_answers

AK_ID = "LTAI5tRenderTestKeyId01"
AK_SECRET = "sk-$(touch pwned)-\"q\"-'s'-\\-${HOME}-tail"
TOKEN = "STS.token.value.000111"


@pytest.fixture
def secret_recipe(cai_full, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RT_OSS_AK_ID", AK_ID)
    secret_file = tmp_path / "oss secret"
    secret_file.write_text(AK_SECRET + "\n")
    secret_file.chmod(0o600)
    return with_answers(
        cai_full,
        {
            "oss": {
                "access_key_id": "env:RT_OSS_AK_ID",
                "access_key_secret": f"file:{secret_file}",
                "session_token": "env:RT_OSS_TOKEN",
            },
            "service": {"sharing_peers": ["172.30.0.5", "172.30.0.6"]},
            "trustee": {"url": "http://alb-x.cn-beijing.alb.aliyuncsslb.com/xxxx///"},
        },
    )


def test_preview_shows_references_not_values(secret_recipe, monkeypatch) -> None:
    monkeypatch.setenv("RT_OSS_TOKEN", TOKEN)
    out = get("cai-env").render(secret_recipe, resolve=False)
    assert not out.secrets_resolved
    assert 'MODEL_OSS_ACCESS_KEY_ID="<from env:RT_OSS_AK_ID>"' in out.text
    assert 'MODEL_OSS_SESSION_TOKEN="<from env:RT_OSS_TOKEN>"' in out.text
    assert AK_ID not in out.text and TOKEN not in out.text and "sk-" not in out.text


def test_quirks(secret_recipe, monkeypatch) -> None:
    monkeypatch.setenv("RT_OSS_TOKEN", TOKEN)
    text = get("cai-env").render(secret_recipe, resolve=True).text
    assert 'TRUSTEE_URL="http://alb-x.cn-beijing.alb.aliyuncsslb.com/xxxx/"' in text  # one trailing slash
    assert '\nMODEL_SHARING_PEER="172.30.0.5 172.30.0.6"\n' in text
    assert f'MODEL_OSS_SESSION_TOKEN="{TOKEN}"' in text
    assert 'MODEL_KEY_ID="kbs:///default/aliyun/model-decryption-key"' in text


def test_resolved_values_round_trip_through_compose(secret_recipe, compose_bin, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RT_OSS_TOKEN", TOKEN)
    out = get("cai-env").render(secret_recipe, resolve=True)
    assert out.secrets_resolved and out.mode == 0o600
    assert AK_SECRET in REDACTOR and AK_ID in REDACTOR
    (tmp_path / "cai.env").write_text(out.text)
    (tmp_path / "c.yml").write_text("services:\n  s:\n    image: busybox\n    env_file: ./cai.env\n")
    proc = subprocess.run(
        [compose_bin, "-f", "c.yml", "config", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    env = {k: v.replace("$$", "$") for k, v in json.loads(proc.stdout)["services"]["s"]["environment"].items()}
    assert env["MODEL_OSS_SECRET_ACCESS_KEY"] == AK_SECRET
    assert env["MODEL_OSS_ACCESS_KEY_ID"] == AK_ID
    assert env["MODEL_SHARING_PEER"] == "172.30.0.5 172.30.0.6"
    assert not (tmp_path / "pwned").exists()


def test_written_0600_and_never_printed(secret_recipe, tmp_path: Path) -> None:
    from cai_tui.recipe import save_recipe

    recipe_file = tmp_path / "r.yaml"
    save_recipe(secret_recipe, recipe_file, backup=False)
    dest = tmp_path / "out dir" / "cai.env"
    proc = run_cli(
        "render",
        "cai-env",
        str(dest),
        "--recipe",
        str(recipe_file),
        "--write",
        "--yes",
        env={"RT_OSS_AK_ID": AK_ID, "RT_OSS_TOKEN": TOKEN},
    )
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    written = dest.read_text()
    assert (
        AK_ID in written
        and TOKEN in written
        and AK_SECRET.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") in written
    )
    for leaked in (AK_ID, TOKEN, "sk-$(touch"):
        assert leaked not in proc.stdout and leaked not in proc.stderr
    assert 'MODEL_OSS_ACCESS_KEY_ID="***"' in proc.stdout


def test_missing_secret_fails_with_the_field(secret_recipe, tmp_path: Path, monkeypatch) -> None:
    from cai_tui.recipe import SecretUnavailable

    monkeypatch.delenv("RT_OSS_TOKEN", raising=False)
    with pytest.raises(SecretUnavailable, match=r"oss\.session_token"):
        get("cai-env").render(secret_recipe, resolve=True)
