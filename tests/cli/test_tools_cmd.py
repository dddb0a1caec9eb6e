"""``cai-tui tools key-file`` and ``tools install-gocryptfs`` (CAI-1.3/1.4) with real files and the real gocryptfs of this
machine (Debian's package), and the checks ``model.key_file`` / ``gocryptfs.version`` that verify them."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from cai_tui.actions import gocryptfs_tool
from cai_tui.checks.base import CheckContext, Result
from cai_tui.checks.registry import get
from cai_tui.recipe import save_recipe
from cai_tui.recipe.model import CaiRecipe
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.local import LocalTarget
from tests.conftest import loopback_env
from tests.helpers import run_cli

# the document's static binary prints this (rfjakob/gocryptfs v2.4.0 release, linux-static_amd64)
STATIC_V240 = "gocryptfs v2.4.0 without_openssl; go-fuse v2.4.0; 2023-06-10 go1.20.5 linux/amd64"


def cai(model: dict[str, Any]) -> CaiRecipe:
    return CaiRecipe.model_validate(
        {"flow": "cai", "name": "tools-tests", "answers": {"model": model, "oss": {"bucket_path": "b-1:/m/"}}}
    )


def recipe_file(tmp_path: Path, model: dict[str, Any]) -> Path:
    path = tmp_path / "recipe.yaml"
    save_recipe(cai(model), path, backup=False)
    return path


def tools(*args: str, env: dict[str, str] | None = None) -> Any:
    return run_cli("tools", *args, env={**loopback_env(), **(env or {})})


def check(recipe: CaiRecipe, check_id: str) -> Result:
    ctx = CheckContext(recipe=recipe, targets={"workstation": LocalTarget()}, redactor=Redactor(), timeout=10.0)
    return asyncio.run(get(check_id).run(ctx))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- key-file -------------------------------------------------------------------------------------------------------


def test_key_file_is_written_once_private_and_never_shown(tmp_path: Path) -> None:
    key = tmp_path / "new" / "deeper" / "cachefs-password"
    model = {"password": f"file:{key}"}
    path = recipe_file(tmp_path, model)
    assert check(cai(model), "model.key_file").status == "fail"  # before: missing, with the command as fix
    r = tools("key-file", "--recipe", str(path))
    assert r.returncode == 0, r.stderr
    value = key.read_text()
    assert value.endswith("\n") and value.count("\n") == 1 and len(value.strip()) >= 24
    assert value.strip() not in r.stdout + r.stderr
    assert mode(key) == 0o600 and mode(key.parent) == 0o700 and mode(key.parent.parent) == 0o700
    assert f"to {key} (mode 0600)" in r.stdout
    assert not [p for p in key.parent.iterdir() if p.name != key.name]  # no temporary file left
    again = tools("key-file", "--recipe", str(path))
    assert again.returncode == 0 and again.stdout.startswith("already there:"), again.stdout + again.stderr
    assert key.read_text() == value  # never overwritten
    res = check(cai(model), "model.key_file")
    assert res.status == "pass" and "mode 0600" in res.summary and value.strip() not in res.summary
    # a second, independent key differs
    other = tmp_path / "other-key"
    tools("key-file", "--recipe", str(recipe_file(tmp_path, {"password": f"file:{other}"})))
    assert other.read_text() != value


def test_existing_bad_key_files_are_kept_and_fail(tmp_path: Path) -> None:
    key = tmp_path / "pw"
    key.write_text("\nsecond line\n")
    key.chmod(0o600)
    model = {"password": f"file:{key}"}
    path = recipe_file(tmp_path, model)
    r = tools("key-file", "--recipe", str(path))
    assert r.returncode == 1 and "is empty" in r.stderr and "Traceback" not in r.stderr
    assert key.read_text() == "\nsecond line\n"
    res = check(cai(model), "model.key_file")
    assert res.status == "fail" and "is empty" in res.summary and res.fix is not None
    key.write_text("s3cret-value\n")
    key.chmod(0o644)
    r = tools("key-file", "--recipe", str(path))
    assert r.returncode == 1 and f"chmod 600 {key}" in r.stderr
    assert "s3cret-value" not in r.stdout + r.stderr
    res = check(cai(model), "model.key_file")
    assert res.status == "fail" and res.fix is not None and f"chmod 600 {key}" in res.fix.text
    assert res.evidence and "mode 0644" in res.evidence[0].observed
    key.chmod(0o600)
    assert check(cai(model), "model.key_file").status == "pass"


def test_non_file_references_have_nothing_to_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = {"password": "env:CAI_TEST_MODEL_PW"}
    path = recipe_file(tmp_path, model)
    r = tools("key-file", "--recipe", str(path))
    assert r.returncode == 0 and "answers.model.password is env:CAI_TEST_MODEL_PW: nothing to write" in r.stdout
    monkeypatch.delenv("CAI_TEST_MODEL_PW", raising=False)
    res = check(cai(model), "model.key_file")
    assert res.status == "fail" and "env:CAI_TEST_MODEL_PW" in res.summary and "is not set" in res.summary
    monkeypatch.setenv("CAI_TEST_MODEL_PW", "pw-from-the-environment")
    res = check(cai(model), "model.key_file")
    assert res.status == "pass" and "pw-from-the-environment" not in res.summary
    # no reference at all: a clear line, exit 2
    r = tools("key-file", "--recipe", str(recipe_file(tmp_path, {})))
    assert r.returncode == 2 and "answers.model.password is not set" in r.stderr and "Traceback" not in r.stderr
    assert check(cai({}), "model.key_file").status == "fail"


def test_sam_key_goes_to_the_sam_reference(tmp_path: Path) -> None:
    key = tmp_path / "sam-key"
    model = {"encryption_method": "sam", "sam": {"key": f"file:{key}"}}
    r = tools("key-file", "--recipe", str(recipe_file(tmp_path, model)))
    assert r.returncode == 0 and "sam key" in r.stdout, r.stderr
    assert 4 <= len(key.read_text().strip()) <= 128 and mode(key) == 0o600
    assert check(cai(model), "model.key_file").status == "pass"


def test_key_file_bad_recipe_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "schema_version: 1\nflow: cai\nname: x\nanswers: {model: {password: hunter2}, oss: {bucket_path: 'b-1:/m/'}}\n"
    )
    r = tools("key-file", "--recipe", str(bad))
    assert r.returncode == 2 and "answers.model.password" in r.stderr and "hunter2" not in r.stderr
    assert "Traceback" not in r.stderr


# --- gocryptfs --------------------------------------------------------------------------------------------------------


def need_gocryptfs() -> str:
    found = shutil.which("gocryptfs")
    if found is None:
        pytest.fail("gocryptfs is missing: apt-get install -y gocryptfs")
    return found


def test_version_parsing_and_judgement() -> None:
    import subprocess

    real = subprocess.run([need_gocryptfs(), "-version"], capture_output=True, text=True, check=False).stdout
    version = gocryptfs_tool.parse_version(real)
    assert version is not None and version[0] == 2, real
    assert gocryptfs_tool.parse_version(STATIC_V240) == (2, 4, 0)
    assert gocryptfs_tool.parse_version("gocryptfs 2.3; go-fuse 2.1.0") == (2, 3, 0)
    assert gocryptfs_tool.parse_version("gocryptfs v1.8.0; go-fuse v2.0.3") == (1, 8, 0)
    assert gocryptfs_tool.parse_version("bash: gocryptfs: command not found") is None
    assert gocryptfs_tool.judge((2, 4, 0))[0] == "pass"
    status, words = gocryptfs_tool.judge((2, 3, 0))
    assert status == "warn" and "same default on-disk format" in words and "v2.4.0" in words
    assert gocryptfs_tool.judge((1, 8, 0))[0] == "fail"
    assert gocryptfs_tool.judge(None)[0] == "unknown"


def test_package_manager_follows_os_release(tmp_path: Path) -> None:
    cases = {
        'NAME="Alibaba Cloud Linux"\nVERSION="3 (Soaring Falcon)"\nID="alinux"\nID_LIKE="rhel fedora centos anolis"\n': "rpm",
        'NAME="openEuler"\nVERSION="22.03 (LTS-SP4)"\nID="openEuler"\nVERSION_ID="22.03"\n': "rpm",
        'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n': "apt-get",
        "ID=linuxmint\nID_LIKE='ubuntu debian'\n": "apt-get",
        "ID=arch\n": None,
    }
    for text, want in cases.items():
        f = tmp_path / "os-release"
        f.write_text(text)
        got = gocryptfs_tool.package_manager(gocryptfs_tool.os_release(f))
        assert got in ("dnf", "yum") if want == "rpm" else got == want, (text, got)
    assert gocryptfs_tool.package_manager(gocryptfs_tool.os_release(tmp_path / "absent")) is None
    this = gocryptfs_tool.package_manager(gocryptfs_tool.os_release())  # this machine: Debian
    assert this == "apt-get"
    assert gocryptfs_tool.install_commands("dnf", root=False) == [["sudo", "dnf", "install", "-y", "gocryptfs", "fuse"]]
    apt = gocryptfs_tool.install_commands("apt-get", root=True)
    assert apt[-1][-2:] == ["gocryptfs", "fuse3"] and apt[0][-1] == "update"


def test_install_gocryptfs_reports_the_installed_binary() -> None:
    need_gocryptfs()
    r = tools("install-gocryptfs")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("already installed: ") and "gocryptfs 2." in r.stdout
    assert "v2.4.0" in r.stdout and "default" in r.stdout and "format" in r.stdout


def test_install_gocryptfs_without_the_binary_plans_the_package_manager(tmp_path: Path) -> None:
    """PATH without gocryptfs (an empty folder): the dry run prints what it would install with."""
    empty = tmp_path / "bin"
    empty.mkdir()
    r = tools("install-gocryptfs", "--dry-run", env={"PATH": str(empty)})
    if os.geteuid() == 0:
        assert r.returncode == 0, r.stderr
        assert (
            "$ env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gocryptfs fuse3"
            in r.stdout
        )
    else:  # installing needs sudo, which this PATH lacks
        assert r.returncode == 1 and "sudo is missing" in r.stderr
    assert "Traceback" not in r.stderr


def test_gocryptfs_version_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    need_gocryptfs()
    fuse = {"gocryptfs_engine": "fuse"}
    res = check(cai(fuse), "gocryptfs.version")
    assert res.status in ("pass", "warn"), res.summary  # Debian 12 packages 2.3: warn
    assert res.evidence and res.evidence[0].observed.startswith("gocryptfs ")
    if res.status == "warn":
        assert res.fix is not None and res.fix.faq_id == "gocryptfs-missing" and "same default" in res.summary
    native = check(cai({"gocryptfs_engine": "native"}), "gocryptfs.version")
    assert native.status == "skip" and "native" in native.summary
    sam = check(cai({"encryption_method": "sam"}), "gocryptfs.version")
    assert sam.status == "skip" and "sam" in sam.summary
    monkeypatch.setenv("PATH", str(tmp_path))  # no gocryptfs on it
    missing = check(cai(fuse), "gocryptfs.version")
    assert missing.status == "fail" and "not installed" in missing.summary
    assert missing.fix is not None and "cai-tui tools install-gocryptfs" in missing.fix.text
    assert missing.fix.faq_id == "gocryptfs-missing"
