"""``cai-tui kms create-secret`` against the real lab KMS (in-process ``lab``), driven as a user runs it.

Every run is a ``python -m cai_tui.cli.main`` subprocess; the result is read back with the real KMS SDK
(``lab_clients``). The secret's value must never appear in stdout or stderr, with or without ``--json``.
"""

from __future__ import annotations

import json
import os
import pty
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_kms20160120 import models as kms_models
from alibabacloud_tea_openapi.exceptions import ClientException

from cai_tui.recipe import CaiRecipe, load_recipe, save_recipe
from tests.conftest import loopback_env
from tests.render.conftest import KATA_RECIPE, with_answers

NAME = "cai-cli-test-key"


def cli(recipe: Path, *args: str, stdin: Any = subprocess.DEVNULL, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cai_tui.cli.main", "kms", "create-secret", "--recipe", str(recipe), *args],
        stdin=stdin,
        capture_output=True,
        text=True,
        env=loopback_env(),
        timeout=timeout,
    )


def write_key(path: Path, value: str) -> Path:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


def lab_recipe(lab: Any, tmp_path: Path, extra: dict, name: str = "recipe.yaml") -> Path:
    """The lab's recipe with ``extra`` merged into its answers, saved as a new file (the lab's own stays intact)."""
    recipe = load_recipe(lab.recipe_path).recipe
    assert isinstance(recipe, CaiRecipe)
    dest = tmp_path / name
    save_recipe(with_answers(recipe, extra), dest, backup=False)
    return dest


@pytest.fixture
def fresh(lab: Any, tmp_path: Path) -> tuple[Path, Path, str]:
    """(recipe naming a secret the lab does not have, its key file, the key)."""
    value = "k-" + secrets.token_urlsafe(18)
    key = write_key(tmp_path / "model-key", value)
    recipe = lab_recipe(
        lab,
        tmp_path,
        {
            "model": {"password": f"file:{key}"},
            "kms": {"secret_name": NAME},
            "trustee": {"model_key_id": f"kbs:///default/aliyun/{NAME}"},
        },
    )
    return recipe, key, value


def get_value(lab: Any, lab_clients: Any, **kw: str) -> Any:
    client = lab_clients(lab.credentials_path).kms()
    return client.get_secret_value(kms_models.GetSecretValueRequest(secret_name=NAME, **kw)).body


def assert_absent(lab: Any, lab_clients: Any) -> None:
    with pytest.raises(ClientException) as info:
        get_value(lab, lab_clients)
    assert info.value.code == "Forbidden.ResourceNotFound"


def assert_no_secret(proc: subprocess.CompletedProcess, *values: str) -> None:
    out = proc.stdout + proc.stderr
    for v in values:
        assert v not in out, "a secret value was printed"
    assert "Traceback" not in out, out


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]


def test_create_then_exists_then_update(lab, lab_clients, fresh, tmp_path) -> None:
    recipe, key, value = fresh
    proc = cli(recipe, "--yes")
    assert proc.returncode == 0, proc.stderr
    assert f"name:           {NAME}" in proc.stdout and "kst-lab00000000000000000" in proc.stdout
    assert f"<from file:{key}>" in proc.stdout and f"kbs:///default/aliyun/{NAME}" in proc.stdout
    assert f"created the KMS secret '{NAME}' (version v1)" in proc.stdout
    assert "verified:" in proc.stdout
    assert_no_secret(proc, value)
    body = get_value(lab, lab_clients)
    assert (body.secret_data, body.version_id) == (value, "v1")

    again = cli(recipe, "--yes")
    assert again.returncode == 1
    [line] = error_lines(again)
    assert "already exists" in line and "--update" in line
    assert get_value(lab, lab_clients).version_id == "v1"

    same = cli(recipe, "--yes", "--update")
    assert same.returncode == 0 and "already holds this key" in same.stdout and "verified:" in same.stdout
    assert get_value(lab, lab_clients).version_id == "v1"  # no version for an unchanged value

    new_value = "k2-" + secrets.token_urlsafe(18)
    write_key(key, new_value)
    upd = cli(recipe, "--yes", "--update")
    assert upd.returncode == 0, upd.stderr
    assert "stored a new version" in upd.stdout and "verified:" in upd.stdout
    assert_no_secret(upd, value, new_value)
    current = get_value(lab, lab_clients)
    assert current.secret_data == new_value and current.version_id != "v1"
    previous = get_value(lab, lab_clients, version_stage="ACSPrevious")
    assert (previous.secret_data, previous.version_id) == (value, "v1")


def test_dry_run_creates_nothing(lab, lab_clients, fresh) -> None:
    recipe, _, value = fresh
    proc = cli(recipe, "--dry-run", "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "dry run: nothing created or changed; a run would create the secret" in proc.stdout
    assert_no_secret(proc, value)
    assert_absent(lab, lab_clients)

    as_json = cli(recipe, "--dry-run", "--json")
    assert as_json.returncode == 0
    doc = json.loads(as_json.stdout)
    assert doc["result"] == "planned" and doc["exists"] is False and doc["secret_name"] == NAME
    assert_no_secret(as_json, value)
    assert_absent(lab, lab_clients)


def test_json_output_has_no_secret(lab, lab_clients, fresh) -> None:
    recipe, key, value = fresh
    proc = cli(recipe, "--yes", "--json", "--encryption-key-id", "key-lab-cmk-0001")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # stdout is the JSON document only; the human lines went to stderr
    assert doc["result"] == "created" and doc["verified"] is True and doc["version_id"] == "v1"
    assert doc["encryption_key_id"] == "key-lab-cmk-0001"
    described = (
        lab_clients(lab.credentials_path).kms().describe_secret(kms_models.DescribeSecretRequest(secret_name=NAME))
    )
    assert described.body.encryption_key_id == "key-lab-cmk-0001"
    assert doc["value_ref"] == f"file:{key}" and doc["kbs_uri"] == f"kbs:///default/aliyun/{NAME}"
    assert doc["kms_instance_id"] == "kst-lab00000000000000000" and doc["exit_code"] == 0
    assert_no_secret(proc, value)
    assert "verified:" in proc.stderr

    exists = cli(recipe, "--yes", "--json")
    assert exists.returncode == 1
    doc = json.loads(exists.stdout)
    assert doc["result"] == "exists" and doc["error"]["code"] == "Rejected.ResourceExist"


def test_headless_run_without_yes_exits_2(lab, lab_clients, fresh) -> None:
    recipe, _, value = fresh
    proc = cli(recipe)
    assert proc.returncode == 2
    [line] = error_lines(proc)
    assert "without confirmation" in line and "--yes" in line
    assert_no_secret(proc, value)
    assert_absent(lab, lab_clients)


@pytest.mark.parametrize(("answer", "rc"), [("n", 1), ("y", 0)])
def test_terminal_confirmation(lab, lab_clients, fresh, answer: str, rc: int) -> None:
    recipe, _, value = fresh
    master, slave = pty.openpty()
    try:
        os.write(master, f"{answer}\n".encode())
        proc = cli(recipe, stdin=slave)
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == rc, proc.stdout + proc.stderr
    assert f"Create the secret '{NAME}'?" in proc.stdout
    assert_no_secret(proc, value)
    if rc:
        assert "not created" in proc.stderr
        assert_absent(lab, lab_clients)
    else:
        assert get_value(lab, lab_clients).secret_data == value


def test_kms_bad_key_fault(lab, lab_clients, fresh) -> None:
    recipe, _, value = fresh
    lab.faults.set("kms-bad-key", True)
    proc = cli(recipe, "--yes")
    lab.faults.set("kms-bad-key", False)
    assert proc.returncode == 2
    [line] = error_lines(proc)
    assert "InvalidAccessKeyId.NotFound" in line and line.endswith("[FAQ: kms-invalid-access-key]")
    assert_no_secret(proc, value, lab.keys.kms_access_key_secret)
    assert_absent(lab, lab_clients)


def test_permission_denied(lab, lab_clients, fresh, tmp_path) -> None:
    """A RAM user that may describe but not create secrets: Forbidden.RAM → kms-permission-denied."""
    _, key, value = fresh
    ak, sk = "LTAI5tReadOnly000000001", secrets.token_urlsafe(20)
    lab.kms_lab.credentials.add_key(ak, sk, actions=["DescribeSecret", "GetSecretValue"])
    recipe = lab_recipe(
        lab,
        tmp_path,
        {
            "model": {"password": f"file:{key}"},
            "kms": {
                "secret_name": NAME,
                "access_key_id": f"file:{write_key(tmp_path / 'ak', ak)}",
                "access_key_secret": f"file:{write_key(tmp_path / 'sk', sk)}",
            },
            "trustee": {"model_key_id": f"kbs:///default/aliyun/{NAME}"},
        },
        name="readonly.yaml",
    )
    proc = cli(recipe, "--yes")
    assert proc.returncode == 2
    [line] = error_lines(proc)
    assert "Forbidden.RAM" in line and "kms:CreateSecret" in line and line.endswith("[FAQ: kms-permission-denied]")
    assert_no_secret(proc, value, sk)
    assert_absent(lab, lab_clients)


def test_unreachable_endpoint(lab, fresh, tmp_path) -> None:
    _, key, _ = fresh
    with socket.socket() as s:  # a port nothing listens on (bound, never listening, then released)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recipe = lab_recipe(
        lab,
        tmp_path,
        {
            "model": {"password": f"file:{key}"},
            "kms": {"secret_name": NAME, "endpoint": f"127.0.0.1:{port}"},
            "trustee": {"model_key_id": f"kbs:///default/aliyun/{NAME}"},
        },
        name="unreachable.yaml",
    )
    proc = cli(recipe, "--yes")
    assert proc.returncode == 2
    [line] = error_lines(proc)
    assert f"no answer from KMS at 127.0.0.1:{port} (Connection refused)" in line and line.endswith(
        "[FAQ: kms-unreachable]"
    )


def test_create_answered_resource_exist(lab, lab_clients, tmp_path) -> None:
    """The lab's demo secret exists, but DescribeSecret says it does not (kms-secret-missing): CreateSecret's
    Rejected.ResourceExist still ends in the 'exists, use --update' answer, and the value stays as it was."""
    before = lab_clients(lab.credentials_path).kms_secret()
    lab.faults.set("kms-secret-missing", True)
    proc = cli(lab.recipe_path, "--yes")
    lab.faults.set("kms-secret-missing", False)
    assert proc.returncode == 1, proc.stderr
    [line] = error_lines(proc)
    assert "'model-decryption-key' already exists" in line and "--update" in line
    assert_no_secret(proc, before)
    assert lab_clients(lab.credentials_path).kms_secret() == before


def test_bad_input(lab, tmp_path) -> None:
    kata = cli(KATA_RECIPE, "--yes")
    assert kata.returncode == 2 and "needs a cai recipe" in kata.stderr

    recipe = load_recipe(lab.recipe_path).recipe
    data = recipe.model_dump(mode="json")
    del data["answers"]["kms"]["access_key_id"]
    no_keys = tmp_path / "nokeys.yaml"
    save_recipe(type(recipe).model_validate(data), no_keys, backup=False)
    proc = cli(no_keys, "--yes")
    assert proc.returncode == 2
    [line] = error_lines(proc)
    assert "answers.kms.access_key_id not set" in line

    missing = lab_recipe(lab, tmp_path, {"model": {"password": f"file:{tmp_path}/nope"}}, name="missing.yaml")
    proc = cli(missing, "--yes", "--update")
    assert proc.returncode == 2
    [line] = error_lines(proc)
    assert "answers.model.password" in line and "does not exist" in line

    assert cli(tmp_path / "absent.yaml").returncode == 2
