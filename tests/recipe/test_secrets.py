"""Secrets are references; inline values are refused without being echoed; resolved values are redacted."""

import os
import stat

import pytest

from cai_tui.recipe import RecipeError, Redactor, SecretRef, SecretUnavailable, loads_recipe, resolve_secret
from tests.helpers import run_cli

BASE = """schema_version: 1
flow: cai
name: s
answers:
  oss:
    bucket_path: my-bucket:/m/
    access_key_id: {akid}
    access_key_secret: {secret}
"""


@pytest.mark.parametrize("value", ["LTAI5tFakeFakeFake", "'correct horse battery'", "12345678", "'env:'", "'file: '"])
def test_inline_secret_is_refused_without_echo(value):
    with pytest.raises(RecipeError) as e:
        loads_recipe(BASE.format(akid="env:AK", secret=value), "r.yaml")
    text = str(e.value)
    assert "answers.oss.access_key_secret" in text
    assert "file:" in text and "env:" in text  # tells how to move it
    shown = value.strip("'").strip()
    if shown not in ("env:", "file:"):
        assert shown not in text


def test_malformed_reference_is_named():
    with pytest.raises(RecipeError) as e:
        loads_recipe(BASE.format(akid="env:AK", secret="'env:1BAD'"), "r.yaml")
    assert "malformed secret reference (env:…)" in str(e.value)


@pytest.mark.parametrize("ref", ["env:OSS_SECRET", "file:~/x", "file:/abs/p", "keyring:cai-tui/oss", "prompt"])
def test_valid_references(ref):
    r = loads_recipe(BASE.format(akid="env:AK", secret=ref)).recipe
    assert str(r.answers.oss.access_key_secret) == ref


def test_resolution_and_redaction(tmp_path, monkeypatch):
    red = Redactor()
    monkeypatch.setenv("CAI_TEST_SECRET", "s3cr3t-from-env")
    assert resolve_secret(SecretRef("env", "CAI_TEST_SECRET"), field="f", redactor=red) == "s3cr3t-from-env"
    pw = tmp_path / "pw"
    pw.write_text("alibaba@1688\nsecond line ignored\n")
    assert resolve_secret(SecretRef("file", str(pw)), field="f", redactor=red) == "alibaba@1688"
    assert resolve_secret(SecretRef("prompt"), field="f", prompt=lambda f: "typed-value", redactor=red) == "typed-value"
    out = red.redact("env=s3cr3t-from-env file=alibaba@1688 url=alibaba%401688 typed=typed-value")
    assert out == "env=*** file=*** url=*** typed=***"


def test_unavailable_references_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("CAI_NOPE", raising=False)
    with pytest.raises(SecretUnavailable, match="CAI_NOPE is not set"):
        resolve_secret(SecretRef("env", "CAI_NOPE"), field="answers.x")
    with pytest.raises(SecretUnavailable, match="does not exist"):
        resolve_secret(SecretRef("file", str(tmp_path / "missing")), field="answers.x")
    with pytest.raises(SecretUnavailable, match="no terminal"):
        resolve_secret(SecretRef("prompt"), field="answers.x")
    (tmp_path / "k").write_text("abc")
    with pytest.raises(SecretUnavailable, match="Sam key must be 4–128 bytes"):
        resolve_secret(
            SecretRef("file", str(tmp_path / "k")),
            field="answers.model.sam.key",
            min_bytes=4,
            max_bytes=128,
            what="Sam key",
        )


def test_keyring_reference(monkeypatch):
    keyring = pytest.importorskip("keyring")
    from keyring.backend import KeyringBackend

    class Memory(KeyringBackend):
        priority = 1  # type: ignore[assignment]
        store: dict = {}

        def get_password(self, service, username):
            return self.store.get((service, username))

        def set_password(self, service, username, password):
            self.store[(service, username)] = password

        def delete_password(self, service, username):
            self.store.pop((service, username), None)

    keyring.set_keyring(Memory())
    keyring.set_password("cai-tui", "oss", "from-the-keyring")
    red = Redactor()
    assert resolve_secret(SecretRef("keyring", "cai-tui/oss"), field="f", redactor=red) == "from-the-keyring"
    with pytest.raises(SecretUnavailable, match="no entry 'other'"):
        resolve_secret(SecretRef("keyring", "cai-tui/other"), field="f", redactor=red)


def test_validate_resolve_secrets_checks_lengths_and_modes(tmp_path):
    key = tmp_path / "samkey"
    key.write_text("abc")
    os.chmod(key, 0o644)
    text = (
        BASE.format(akid="env:CAI_AK_T", secret=f"file:{tmp_path / 'nosuch'}")
        + f"  model:\n    encryption_method: sam\n    sam: {{key: 'file:{key}', key_id: LD_Demo_0001}}\n"
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    r = run_cli("recipe", "validate", "--resolve-secrets", str(recipe), env={"CAI_AK_T": "AKIDVALUE"})
    assert r.returncode == 2
    assert "Sam key must be 4–128 bytes (the referenced value has 3)" in r.stderr
    assert "does not exist" in r.stderr
    assert "AKIDVALUE" not in r.stderr + r.stdout
    key.write_text("alibaba@1688")
    (tmp_path / "nosuch").write_text("sk")
    os.chmod(tmp_path / "nosuch", 0o600)
    r = run_cli("recipe", "validate", "--resolve-secrets", str(recipe), env={"CAI_AK_T": "AKIDVALUE"})
    assert r.returncode == 2 and "chmod 600" in r.stderr and "alibaba@1688" not in r.stderr
    os.chmod(key, stat.S_IRUSR | stat.S_IWUSR)
    r = run_cli("recipe", "validate", "--resolve-secrets", str(recipe), env={"CAI_AK_T": "AKIDVALUE"})
    assert r.returncode == 0, r.stderr


def test_save_refuses_to_write_a_resolved_secret(tmp_path):
    from cai_tui.recipe import save_recipe

    red = Redactor()
    loaded = loads_recipe(BASE.format(akid="env:AK", secret="env:SK"))
    loaded.recipe.description = "oops pasted hunter2hunter2 here"
    red.add("hunter2hunter2")
    with pytest.raises(RecipeError, match="resolved secret"):
        save_recipe(loaded, tmp_path / "r.yaml", redactor=red)
    assert not (tmp_path / "r.yaml").exists()
