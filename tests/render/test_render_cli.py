"""``cai-tui render``: --list, printing, and --write with a shown diff, confirmation and a backup."""

from __future__ import annotations

import stat
from pathlib import Path

from cai_tui.recipe import save_recipe
from cai_tui.render import all_ids
from tests.helpers import run_cli
from tests.render.conftest import CAI_RECIPE, with_answers


def test_list_names_every_kind() -> None:
    proc = run_cli("render", "--list")
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[0] for line in proc.stdout.splitlines()]
    assert listed == all_ids()
    assert "~/cai.env" in proc.stdout


def test_print_is_the_unresolved_rendering() -> None:
    proc = run_cli("render", "cai-env", "--recipe", str(CAI_RECIPE), env={"OSS_ACCESS_KEY_SECRET": "zzSecretzz"})
    assert proc.returncode == 0, proc.stderr
    assert 'MODEL_OSS_SECRET_ACCESS_KEY="<from env:OSS_ACCESS_KEY_SECRET>"' in proc.stdout
    assert "zzSecretzz" not in proc.stdout


def test_usage_errors() -> None:
    assert run_cli("render", "nope", "--recipe", str(CAI_RECIPE)).returncode == 2
    assert "unknown artifact" in run_cli("render", "nope", "--recipe", str(CAI_RECIPE)).stderr
    assert run_cli("render", "cai-env").returncode == 2  # no recipe
    proc = run_cli("render", "cni-conf", "--recipe", str(CAI_RECIPE))
    assert proc.returncode == 2 and "kata-virtcca flow" in proc.stderr
    proc = run_cli("render", "bucket-policy", "--recipe", str(CAI_RECIPE))
    assert proc.returncode == 2 and "account_uid" in proc.stderr


def test_write_shows_diff_asks_and_backs_up(cai_full, tmp_path: Path) -> None:
    recipe_file = tmp_path / "r.yaml"
    save_recipe(cai_full, recipe_file, backup=False)
    dest = tmp_path / "docker-compose.yml"
    first = run_cli("render", "compose", str(dest), "--recipe", str(recipe_file), "--write", "--yes")
    assert first.returncode == 0, first.stderr
    assert "wrote" in first.stdout and ".bak" not in first.stdout
    original = dest.read_text()
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644

    save_recipe(with_answers(cai_full, {"service": {"port": 9090}}), recipe_file, backup=False)
    # not a terminal and no --yes: shown, not written
    refused = run_cli("render", "compose", str(dest), "--recipe", str(recipe_file), "--write")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert dest.read_text() == original and not dest.with_name(dest.name + ".bak").exists()

    second = run_cli("render", "compose", str(dest), "--recipe", str(recipe_file), "--write", "--yes")
    assert second.returncode == 0, second.stderr
    assert (
        '-    command: ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model=/tmp/model", '
        '"--trust-remote-code", "--port", "8080"]' in second.stdout
    )
    assert '"--port", "9090"]' in second.stdout
    assert dest.with_name(dest.name + ".bak").read_text() == original
    assert '"9090"' in dest.read_text()

    again = run_cli("render", "compose", str(dest), "--recipe", str(recipe_file), "--write", "--yes")
    assert again.returncode == 0 and "unchanged" in again.stdout
