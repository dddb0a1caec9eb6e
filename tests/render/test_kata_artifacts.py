"""kata-hook, kata-config-patch and vllm-dockerfile: faithful to seed 002, safe to run, accepted by the kata checks.

The goldens are checked by test_golden.py (kata-hook.sh, kata-config-patch.sh, vllm-dockerfile.sh). Here the
config-patch script really runs (bash, awk, coreutils) on copies of kata configuration files, and its result is read
back with the project's TOML parser and judged by the ``kata.config`` check; the rendered hook is written with
``cai-tui render --write`` into a guest rootfs tree and judged by ``kata.hook``.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from cai_tui.parsers.kata_toml import parse_kata_config
from cai_tui.recipe import KataRecipe, save_recipe
from cai_tui.render import get
from cai_tui.render.kata_config import toml_string
from cai_tui.render.vllm_dockerfile import STAGES
from tests.checks.checklib import expect
from tests.checks.test_kata_config import COMMENTED, ETC_CONF, HOOK, SET, guest_rootfs, kata_toml, put, recipe, run
from tests.helpers import REPO, SHARED, run_cli
from tests.render.conftest import with_answers

SEED = SHARED / "seeds" / "002_f6f041e7cf9eb09a.txt"
FIXTURES = REPO / "tests" / "fixtures" / "parsers"


def seed_block(after: str) -> str:
    """The first fenced code block after the line ``after`` in seed 002."""
    assert SEED.is_file(), f"{SEED} is missing: the shared seeds must sit beside the checkout"
    text = SEED.read_text(encoding="utf-8")
    start = text.index(after)
    m = re.compile(r"```[a-z]*\n(.*?)\n```", re.S).search(text, start)
    assert m is not None
    return m.group(1) + "\n"


# --------------------------------------------------------------------------------------------- kata-hook


def test_hook_is_the_seeds_with_quoted_arguments(kata_seed) -> None:
    out = get("kata-hook").render(kata_seed)
    assert out.mode == 0o755
    assert out.path == "/home/mnt/usr/share/oci/hooks/prestart/nvidia-container-toolkit.sh"
    commands = [ln for ln in out.text.splitlines() if not ln.startswith("#")]
    seed = seed_block("增加以下内容：").splitlines()
    assert out.text.splitlines()[0] == seed[0] == "#!/bin/bash -x"
    assert seed[1] == "/usr/bin/nvidia-container-toolkit -debug $@"
    assert commands == ['/usr/bin/nvidia-container-toolkit -debug "$@"']
    assert "\r" not in out.text
    assert subprocess.run(["bash", "-n"], input=out.text, text=True).returncode == 0


def test_written_hook_passes_the_kata_hook_check(tmp_path: Path) -> None:
    rootfs = guest_rootfs(tmp_path / "mnt with space")
    (rootfs / HOOK.lstrip("/")).unlink()  # guest_rootfs puts the seed's hook there; ours replaces it
    rec = recipe(rootfs={"mount_dir": str(rootfs)})
    recipe_file = tmp_path / "kata.yaml"
    save_recipe(rec, recipe_file, backup=False)
    proc = run_cli("render", "kata-hook", "--recipe", str(recipe_file), "--write", "--yes")
    assert proc.returncode == 0, proc.stderr
    hook = rootfs / HOOK.lstrip("/")
    assert stat.S_IMODE(hook.stat().st_mode) == 0o755
    assert hook.read_text() == get("kata-hook").render(rec).text
    from cai_tui.targets.local import LocalTarget

    res = expect(run(LocalTarget(), "kata.hook", rec), "kata.hook", "pass")
    assert "calls /usr/bin/nvidia-container-toolkit" in res.summary


# --------------------------------------------------------------------------------------------- kata-config-patch


def patch_script(tmp_path: Path, config: Path, hook_path: str = "/usr/share/oci/hooks") -> Path:
    rec = KataRecipe.model_validate(
        {
            "flow": "kata-virtcca",
            "name": "t",
            "answers": {
                "kata": {"config_path": str(config), "guest_hook_path": hook_path},
                "driver": {"hook_path": hook_path.rstrip("/") + "/prestart/nvidia-container-toolkit.sh"},
            },
        }
    )
    script = tmp_path / "kata-config-patch.sh"
    script.write_text(get("kata-config-patch").render(rec).text)
    return script


def run_patch(script: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(script.parent), "LC_ALL": "C"}
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=30)


def backups(config: Path) -> list[Path]:
    return sorted(config.parent.glob(config.name + ".bak.*"))


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b), "a line was added or removed"
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


def test_patch_uncomments_the_shipped_line_in_place(tmp_path: Path) -> None:
    config = tmp_path / "configuration.toml"
    original = (FIXTURES / "kata-configuration-qemu-upstream.toml").read_text()
    config.write_text(original)
    config.chmod(0o640)
    proc = run_patch(patch_script(tmp_path, config))
    assert proc.returncode == 0, proc.stderr
    after = config.read_text()
    assert changed_lines(original, after) == [('#guest_hook_path = "/usr/share/oci/hooks"', SET)]
    parsed = parse_kata_config(after)
    assert parsed.guest_hook_path == "/usr/share/oci/hooks" and parsed.hypervisor_name == "qemu"
    assert parsed.raw["runtime"] == parse_kata_config(original).raw["runtime"]
    [backup] = backups(config)
    assert backup.read_text() == original
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert f"set {SET} in {config}" in proc.stdout and "+" + SET in proc.stdout  # the diff
    # the upstream file lacks the rest of the virtCCA setup: reported, not changed
    assert "virtcca_cvm_guest=1" in proc.stderr and "cold_plug_vfio" in proc.stderr
    assert "default_memory is 2048 MiB" in proc.stderr

    again = run_patch(patch_script(tmp_path, config))
    assert again.returncode == 0 and "nothing changed" in again.stdout
    assert config.read_text() == after and len(backups(config)) == 1
    config.write_text(original)  # edited back: a second backup, the first one kept
    assert run_patch(patch_script(tmp_path, config)).returncode == 0
    assert [b.read_text() for b in backups(config)] == [original, original] and config.read_text() == after


def test_patch_on_a_configured_virtcca_file_changes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "configuration.toml"
    original = (FIXTURES / "kata-configuration-virtcca-gpu.toml").read_text()
    config.write_text(original)
    proc = run_patch(patch_script(tmp_path, config))
    assert proc.returncode == 0, proc.stderr
    assert "nothing changed" in proc.stdout and "warning" not in proc.stderr
    assert config.read_text() == original and backups(config) == []


def test_patch_replaces_another_value_or_adds_the_key_under_the_header(tmp_path: Path) -> None:
    config = tmp_path / "configuration.toml"
    other = kata_toml('guest_hook_path = "/opt/hooks"\n#guest_hook_path = "/usr/share/oci/hooks"')
    config.write_text(other)
    assert run_patch(patch_script(tmp_path, config)).returncode == 0
    assert changed_lines(other, config.read_text()) == [('guest_hook_path = "/opt/hooks"', SET)]

    absent = kata_toml("")
    config.write_text(absent)
    assert run_patch(patch_script(tmp_path, config)).returncode == 0
    lines = config.read_text().splitlines()
    assert lines[lines.index("[hypervisor.qemu]") + 1] == SET
    assert parse_kata_config(config.read_text()).guest_hook_path == "/usr/share/oci/hooks"


def test_patch_refuses_what_it_cannot_place(tmp_path: Path) -> None:
    config = tmp_path / "configuration.toml"
    two = kata_toml(COMMENTED) + '\n[hypervisor.clh]\npath = "/usr/bin/cloud-hypervisor"\n'
    config.write_text(two)
    proc = run_patch(patch_script(tmp_path, config))
    assert proc.returncode == 3 and "found 2" in proc.stderr and "was not changed" in proc.stderr
    assert config.read_text() == two and backups(config) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configuration.toml", "kata-config-patch.sh"]

    missing = tmp_path / "absent.toml"
    proc = run_patch(patch_script(tmp_path, missing))
    assert proc.returncode == 1 and "kata-runtime --show-default-config-paths" in proc.stderr
    assert not missing.exists()


def test_patch_quotes_hostile_paths(tmp_path: Path) -> None:
    """A path with quotes, a backslash, $(…) and backticks: one shell word, a valid TOML string, nothing executed."""
    evil = f"/hooks/a b'c\"d\\e $(touch {tmp_path}/pwned) `touch {tmp_path}/pwned2`"
    folder = tmp_path / "etc $(touch pwned3) 'x'"
    folder.mkdir()
    config = folder / "configuration.toml"
    config.write_text(kata_toml(COMMENTED))
    proc = run_patch(patch_script(tmp_path, config, hook_path=evil))
    assert proc.returncode == 0, proc.stderr
    assert parse_kata_config(config.read_text()).guest_hook_path == evil
    assert not any((tmp_path / n).exists() for n in ("pwned", "pwned2")) and not (folder / "pwned3").exists()
    assert toml_string("a\x7fb\n") == '"a\\u007Fb\\u000A"'


def test_patched_file_passes_the_kata_config_check(tmp_path: Path) -> None:
    host = tmp_path / "host"
    config = put(host, ETC_CONF, kata_toml(COMMENTED))
    expect(run(host, "kata.config"), "kata.config", "fail", "kata-config-missing")
    assert run_patch(patch_script(tmp_path, config)).returncode == 0
    res = expect(run(host, "kata.config"), "kata.config", "pass")
    assert res.summary.startswith(f'kata loads {ETC_CONF}: guest_hook_path = "/usr/share/oci/hooks"')


def test_patch_script_shape(kata_seed) -> None:
    out = get("kata-config-patch").render(kata_seed)
    assert out.mode == 0o755 and out.path == "~/kata-config-patch.sh"
    assert "CONFIG=/etc/kata-containers/configuration.toml\n" in out.text
    assert f"SETTING='{SET}'\n" in out.text
    assert subprocess.run(["bash", "-n"], input=out.text, text=True).returncode == 0


# --------------------------------------------------------------------------------------------- vllm-dockerfile


def test_dockerfile_is_the_seeds(kata_seed) -> None:
    out = get("vllm-dockerfile").render(kata_seed)
    assert out.path == "/home/pass-through/vllm-build/Dockerfile" and out.mode == 0o644
    header, body = out.text.split("# https://github.com/skandermoalla/vllm-build\n", 1)
    assert "# https://github.com/skandermoalla/vllm-build\n" + body == seed_block("修改项目内的dockerfile为如下内容")
    assert header.splitlines() == [
        "# KATA-2.2: /home/pass-through/vllm-build/Dockerfile, replacing the one of the vllm-build checkout.",
        "# KATA-2.3 builds it there: DOCKER_BUILDKIT=1 docker build --build-arg max_jobs=64 --build-arg "
        "nvcc_threads=8 --target vllm-base --tag vllm-cvm:latest .",
    ]
    # no parser directive by accident (``# name=value`` at the top of a Dockerfile)
    assert not re.match(r"#\s*[A-Za-z][A-Za-z0-9]*\s*=", out.text)
    stages = re.findall(r"^FROM \S+ AS (\S+)$", out.text, re.M)
    assert tuple(stages) == STAGES
    assert set(KataRecipe.model_json_schema()["$defs"]["ImageAnswers"]["properties"]["target"]["enum"]) == set(STAGES)


@pytest.mark.parametrize(("target", "noted"), [("vllm-base", True), ("vllm-openai", False)])
def test_dockerfile_notes_the_missing_modelscope(kata_seed, target: str, noted: bool) -> None:
    rec = with_answers(kata_seed, {"image": {"target": target, "max_jobs": 8, "build_dir": "/srv/b"}})
    out = get("vllm-dockerfile").render(rec)
    assert bool(out.notes) is noted
    assert f"--build-arg max_jobs=8 --build-arg nvcc_threads=8 --target {target} --tag vllm-cvm:latest ." in out.text
    assert out.path == "/srv/b/Dockerfile"


def test_render_cli_prints_them(tmp_path: Path) -> None:
    kata = REPO / "recipes" / "kata-virtcca-qwen1.5-1.8b.yaml"
    for kind in ("kata-hook", "kata-config-patch", "vllm-dockerfile"):
        proc = run_cli("render", kind, "--recipe", str(kata))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == (REPO / "tests/render/golden" / f"{kind}.sh").read_text()
    assert os.listdir(tmp_path) == []
