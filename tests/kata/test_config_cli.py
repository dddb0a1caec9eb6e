"""``cai-tui kata config`` (KATA-1.8) as a user and the engine run it: the diff printed, --write with FILE.bak, a second
run that changes nothing, --restore byte for byte, errors naming the candidates (exit 2), --recipe finding the file
(KATA_CONF_FILE), the plan's argv and undo, and the kata.config guard passing after the edit on the lab file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cai_tui.lab.kata.kata_config import lab_env, write_kata_config
from tests.helpers import run_cli

HOOK = "/usr/share/oci/hooks"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"CAI_TUI_STATE_DIR": str(tmp_path / "state"), "KATA_CONF_FILE": ""}


def kata_recipe(tmp_path: Path, config: Path) -> Path:
    path = tmp_path / "kata.yaml"
    path.write_text(
        "schema_version: 1\nflow: kata-virtcca\nname: kata-lab\n"
        f"answers:\n  kata:\n    config_path: {config}\n    guest_hook_path: {HOOK}/\ntargets:\n  host: local\n"
    )
    return path


def test_diff_write_second_run_restore(tmp_path: Path, env: dict[str, str]) -> None:
    conf = write_kata_config(tmp_path / "kata")
    original = conf.read_bytes()
    r = run_cli("kata", "config", str(conf), "--set", f"guest_hook_path={HOOK}", env=env)
    assert r.returncode == 0, r.stderr
    assert f"--- {conf}\n+++ {conf} (edited)\n" in r.stdout
    assert '-guest_hook_path = ""\n+guest_hook_path = "/usr/share/oci/hooks"\n' in r.stdout
    assert "not written: add --write" in r.stdout
    assert conf.read_bytes() == original and not Path(f"{conf}.bak").exists()

    r = run_cli("kata", "config", str(conf), "--set", f"guest_hook_path={HOOK}", "--write", env=env)
    assert r.returncode == 0, r.stderr
    assert f"wrote {conf} (the original is {conf}.bak" in r.stdout
    assert Path(f"{conf}.bak").read_bytes() == original
    written = conf.read_bytes()
    assert written == original.replace(b'guest_hook_path = ""', f'guest_hook_path = "{HOOK}"'.encode())

    r = run_cli("kata", "config", str(conf), "--set", f"guest_hook_path={HOOK}", "--write", env=env)
    assert r.returncode == 0 and "already has guest_hook_path as asked: nothing changed" in r.stdout
    assert "---" not in r.stdout and conf.read_bytes() == written
    assert Path(f"{conf}.bak").read_bytes() == original

    r = run_cli("kata", "config", str(conf), "--restore", env=env)
    assert r.returncode == 0, r.stderr
    assert f"restored {conf} from {conf}.bak" in r.stdout and '+guest_hook_path = ""' in r.stdout
    assert conf.read_bytes() == original and not Path(f"{conf}.bak").exists()
    r = run_cli("kata", "config", str(conf), "--restore", env=env)
    assert r.returncode == 0 and "nothing to undo" in r.stdout


def test_errors_exit_2_naming_the_candidates(tmp_path: Path, env: dict[str, str]) -> None:
    conf = write_kata_config(tmp_path)
    r = run_cli("kata", "config", str(conf), "--set", "enable_debug=true", env=env)
    assert r.returncode == 2
    assert "enable_debug is in more than one table" in r.stderr
    assert "hypervisor.qemu.enable_debug" in r.stderr and "runtime.enable_debug" in r.stderr
    r = run_cli("kata", "config", str(conf), "--set", "no_such_key=1", env=env)
    assert r.returncode == 2 and "no_such_key is not in" in r.stderr and "hypervisor.qemu, factory" in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[hypervisor.qemu\n")
    r = run_cli("kata", "config", str(bad), "--set", "x=1", env=env)
    assert r.returncode == 2 and f"{bad} is not valid TOML" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("kata", "config", str(tmp_path / "absent.toml"), "--set", "x=1", env=env)
    assert r.returncode == 2 and "absent.toml does not exist" in r.stderr
    assert conf.read_bytes() == write_kata_config(tmp_path / "again").read_bytes()


def test_recipe_finds_the_file_and_sets_the_hook_path(tmp_path: Path, env: dict[str, str]) -> None:
    conf = write_kata_config(tmp_path / "kata")
    original = conf.read_bytes()
    recipe = kata_recipe(tmp_path, tmp_path / "not-there.toml")
    r = run_cli("kata", "config", "--recipe", str(recipe), "--write", env={**env, **lab_env(conf)})
    assert r.returncode == 0, r.stderr
    assert f"kata configuration: {conf} (KATA_CONF_FILE={conf})" in r.stdout
    assert "does not exist: editing" in r.stderr
    assert b'guest_hook_path = "/usr/share/oci/hooks"' in conf.read_bytes()
    r = run_cli("kata", "config", "--recipe", str(recipe), "--restore", env={**env, **lab_env(conf)})
    assert r.returncode == 0 and conf.read_bytes() == original
    r = run_cli("kata", "config", "--recipe", str(recipe), "--set", "x=1", env=env)
    assert r.returncode == 2 and "no kata configuration file to edit" in r.stderr


def test_plan_argv_undo_and_the_guard(tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from cai_tui.actions.registry import get
    from cai_tui.checks.base import CheckContext
    from cai_tui.checks.registry import all_checks
    from cai_tui.checks.runner import run_checks
    from cai_tui.recipe import load_recipe
    from cai_tui.recipe.redaction import Redactor
    from cai_tui.targets.local import LocalTarget

    conf = write_kata_config(tmp_path / "kata")
    recipe = kata_recipe(tmp_path, conf)
    loaded = load_recipe(recipe)
    spec = get("kata.set_hook_path")
    assert spec is not None
    (step,) = spec.plan(loaded)
    assert step.argv == [
        "cai-tui",
        "kata",
        "config",
        "--recipe",
        str(recipe),
        "--set",
        f"guest_hook_path={HOOK}",
        "--write",
    ]
    assert step.undo == ("cai-tui", "kata", "config", "--recipe", str(recipe), "--restore")
    assert step.where == "host" and str(conf) in step.changes and not step.changes.startswith("nothing")

    monkeypatch.setenv("KATA_CONF_FILE", str(conf))

    def guard() -> str:
        ctx = CheckContext(recipe=loaded.recipe, targets={"host": LocalTarget()}, redactor=Redactor(), timeout=10.0)
        (outcome,) = asyncio.run(run_checks([all_checks()["kata.config"]], ctx, timeout=10.0))
        return outcome.result.status

    assert guard() == "fail"  # guest_hook_path = "" as kata 3.24 ships it
    r = run_cli(*step.argv[1:], env={**env, **lab_env(conf)})
    assert r.returncode == 0, r.stderr
    assert guard() == "pass"
    r = run_cli(*step.undo[1:], env={**env, **lab_env(conf)})
    assert r.returncode == 0 and guard() == "fail"
