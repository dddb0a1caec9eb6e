"""kms-secret: what to create (no value in it), and CreateSecret through the SDK against the lab KMS."""

from __future__ import annotations

import pytest
from alibabacloud_kms20160120 import models as kms_models

from cai_tui.render import RenderError, get
from cai_tui.render.kms_secret import create_secret
from tests.lab.conftest_kms import KmsEnv, kms_env, loopback_only  # noqa: F401
from tests.render.conftest import with_answers


def test_render_names_the_secret_and_never_the_value(cai_full, tmp_path, monkeypatch) -> None:
    out = get("kms-secret").render(cai_full, resolve=True)
    assert "model-decryption-key" in out.text and "<from file:~/cachefs-password>" in out.text
    assert "kbs:///default/aliyun/model-decryption-key" in out.text


def test_mismatched_kbs_uri_and_secret_name_is_refused(cai_full) -> None:
    bad = with_answers(cai_full, {"kms": {"secret_name": "other-key"}})
    with pytest.raises(RenderError, match="other-key"):
        get("kms-secret").render(bad)


def test_create_secret_through_the_sdk(cai_full, kms_env: KmsEnv, tmp_path, monkeypatch) -> None:  # noqa: F811
    key = tmp_path / "cachefs-password"
    key.write_text("alibaba@1688\n")
    recipe = with_answers(
        cai_full, {"model": {"password": f"file:{key}"}, "kms": {"instance_id": kms_env.lab.instance_id}}
    )
    client = kms_env.client()
    create_secret(recipe, client)
    body = client.get_secret_value(kms_models.GetSecretValueRequest(secret_name="model-decryption-key")).body
    assert body.secret_data == "alibaba@1688"
    assert body.version_id == "v1"


def test_create_secret_in_an_unknown_instance_fails(cai_full, kms_env: KmsEnv, tmp_path) -> None:  # noqa: F811
    key = tmp_path / "cachefs-password"
    key.write_text("alibaba@1688\n")
    recipe = with_answers(cai_full, {"model": {"password": f"file:{key}"}})  # the seed's kst-… is not the lab's
    with pytest.raises(Exception, match="ResourceNotFound"):
        create_secret(recipe, kms_env.client())
