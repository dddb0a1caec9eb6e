"""``replay --hosts --export-playbook``: the whole kata recipe as plays that the real ``ansible-playbook`` accepts
(``--syntax-check``, ``--list-tasks`` by tag), one play per stage, each doer after the guard that skips it when its
checks pass; the hosts' own values in host_vars/, the recipes as references. No host is contacted."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes/kata-virtcca-qwen1.5-1.8b.yaml"


def export(tmp_path: Path) -> tuple[Path, Path]:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[kata]\n"
        "arm1 ansible_host=127.0.0.1 ansible_port=1 cai_tui_command=/opt/cai/bin/cai-tui\n"
        "arm2 ansible_host=127.0.0.1 ansible_port=2 cai_tui_answers=\"{'gpu.bdf': '0000:02:00.0'}\"\n"
    )
    dest = tmp_path / "export"
    res = subprocess.run(
        [sys.executable, "-m", "cai_tui.cli.main", "replay", str(RECIPE), "--hosts", str(inventory),
         "--export-playbook", str(dest)],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return inventory, dest


def ansible(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    return subprocess.run(["ansible-playbook", *args], capture_output=True, text=True, env=env, timeout=120)


def test_plays_per_stage_guards_and_host_values(tmp_path: Path) -> None:
    from cai_tui.stages import load_all

    _inventory, dest = export(tmp_path)
    plays = YAML(typ="safe").load((dest / "site.yml").read_text())
    stages = [s.id for s in load_all()["kata-virtcca"].stages]
    assert [p["name"] for p in plays] == [f"cai-tui stage {s}" for s in stages]
    config = next(p for p in plays if p["name"] == "cai-tui stage kata-config")
    names = [t["name"] for t in config["tasks"]]
    guard = next(i for i, n in enumerate(names) if "guard kata-config/KATA-1.8/action:kata.set_hook_path" in n)
    assert "kata.set_hook_path" in names[guard + 1] and names[-1] == "cai-tui checks"
    assert all("kata-config" in t.get("tags", []) or "always" in t.get("tags", []) for t in config["tasks"])
    one = YAML(typ="safe").load((dest / "host_vars/arm1.yml").read_text())["cai_tui_stages"]["kata-config"]
    action = next(v for v in one["items"].values() if "argv" in v)
    assert action["argv"][:3] == ["/opt/cai/bin/cai-tui", "kata", "config"]
    assert (
        action["argv"][action["argv"].index("--recipe") + 1]
        == ".config/cai-tui/fleet/kata-virtcca-qwen1.5-1.8b-arm1.yaml"
    )
    assert action["guard_argv"][-2:] == ["--only", "kata.config,kata.hook"]
    assert "0000:02:00.0" in (dest / "recipes/arm2.yaml").read_text()
    assert "0000:02:00.0" not in (dest / "recipes/arm1.yaml").read_text()


def test_real_ansible_accepts_it(tmp_path: Path) -> None:
    inventory, dest = export(tmp_path)
    res = ansible("-i", str(inventory), str(dest / "site.yml"), "--syntax-check")
    assert res.returncode == 0, res.stdout + res.stderr
    res = ansible("-i", str(inventory), str(dest / "site.yml"), "--list-tasks", "--tags", "cni-network")
    assert res.returncode == 0, res.stderr
    listed = res.stdout
    assert "cni.write_conf" in listed and "cni.attach" in listed and "kata.set_hook_path" not in listed


def test_export_needs_hosts(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "cai_tui.cli.main", "replay", str(RECIPE), "--export-playbook", str(tmp_path / "x")],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert res.returncode == 2 and "--export-playbook go with --hosts INVENTORY" in res.stderr


def test_exported_doctor_tasks_fail_a_host_as_the_engine_judges(tmp_path: Path) -> None:
    """The condition the exported plays put on the host's and the controller's doctor, evaluated by the real
    ansible-playbook: exit 0 and "nothing was checked" (exit 2, every selected check skipped, which the engine does not
    count as a failure) pass; exit 1 (a required check failed or unknown) and any other exit 2 (bad input) fail."""
    from cai_tui.fleet.playbook import DOCTOR_LANG, NOTHING_CHECKED, _doctor_failed

    assert DOCTOR_LANG == ["--lang", "en"]
    cases = {
        "passed": (0, "6 pass"),
        "all-skipped": (2, f"3 skip — {NOTHING_CHECKED}"),
        "failed": (1, "1 fail — 1 required check failed"),
        "bad-input": (2, "recipe.yaml:3: answers.oss: bad"),
        "crashed": (3, ""),
    }
    tasks = [
        {
            "name": name,
            "command": {"argv": ["sh", "-c", f"printf '%s\\n' {shlex.quote(out)}; exit {rc}"]},
            "register": "doctor",
            "failed_when": _doctor_failed("doctor"),
            "ignore_errors": True,
        }
        for name, (rc, out) in cases.items()
    ]
    play = tmp_path / "play.yml"
    YAML(typ="safe").dump([{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}], play)
    res = ansible("-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}", str(play))
    assert res.returncode == 0, res.stdout + res.stderr
    verdicts = {}
    for name in cases:
        block = res.stdout.split(f"TASK [{name}]", 1)[1].split("TASK [", 1)[0]
        verdicts[name] = "failed" if "fatal:" in block else "ok"
    assert verdicts == {
        "passed": "ok",
        "all-skipped": "ok",
        "failed": "failed",
        "bad-input": "failed",
        "crashed": "failed",
    }
