"""``cai-tui replay RECIPE --hosts`` with the CAI flow's cai-env stage: ``cai.env`` (which holds the OSS AccessKey,
resolved) written to each of 8 real sshd hosts by Ansible's ``copy``, the stage's checks against the real lab
(``cai-tui lab serve``: Trustee, OSS). Each host's ``service.env_file`` comes from a host var; host06's points under
a regular file (its copy fails); host03 is stopped. The OSS secret comes from the controller's environment (env:),
and a last test greps ansible-runner's private data dir, the artifacts and our outputs for it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cai_tui.lab.fleet import Fleet, start_fleet
from tests.fleet.private import keep_private_dir

REPO = Path(__file__).resolve().parents[2]
NAMES = [f"host{i:02d}" for i in range(1, 9)]
BROKEN, STOPPED = "host06", "host03"

pytestmark = pytest.mark.slow


def cai_tui(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cai_tui.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **env},
    )


def planted_recipe(ready: dict[str, Any], dest: Path) -> tuple[Path, dict[str, str]]:
    """The lab's recipe with its OSS AccessKey read from the environment (env:), and that environment."""
    text = Path(ready["recipe"]).read_text()
    env: dict[str, str] = {}
    for key, var in (("oss_access_key_id", "CAI_FLEET_AK"), ("oss_access_key_secret", "CAI_FLEET_SK")):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(key.removeprefix("oss_") + ":"))
        ref = line.split(":", 1)[1].strip()
        assert ref.startswith("file:"), ref
        env[var] = Path(os.path.expanduser(ref.removeprefix("file:"))).read_text().strip()
        text = text.replace(line, line.replace(ref, f"env:{var}"))
    dest.write_text(text)
    return dest, env


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    f = start_fleet(tmp_path / "fleet", len(NAMES))
    try:
        f.stop_host(STOPPED)
        yield f
    finally:
        f.stop()


def env_files(root: Path) -> dict[str, Path]:
    out = {n: root / n / "cai.env" for n in NAMES}
    root.mkdir(parents=True, exist_ok=True)
    (root / BROKEN).write_text("a file where a folder should be\n")
    out[BROKEN] = root / BROKEN / "cai.env"
    return out


def test_cai_env_on_eight_hosts(lab_process: dict[str, Any], fleet: Fleet, tmp_path: Path) -> None:
    recipe, env = planted_recipe(lab_process, tmp_path / "recipe.yaml")
    targets = env_files(tmp_path / "hosts")
    host_vars = {n: {"cai_tui_answers": {"service.env_file": str(p)}} for n, p in targets.items()}
    inventory = fleet.write_inventory(tmp_path / "hosts.yaml", fmt="yaml", host_vars=host_vars)

    def replay(name: str, *extra: str) -> dict[str, Any]:
        out = tmp_path / f"{name}.json"
        res = cai_tui(
            "replay", str(recipe), "--hosts", str(inventory), "--only", "cai-env", "--json", str(out), *extra, env=env
        )
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
        assert env["CAI_FLEET_SK"] not in res.stdout + res.stderr
        return json.loads(out.read_text())

    doc = replay("plan", "--plan")
    assert not any(p.exists() for p in targets.values()), "--plan wrote nothing"
    first = next(h for h in doc["hosts"] if h["name"] == "host01")
    assert first["items"][0]["item"] == "cai-env" and first["items"][0]["detail"].startswith("would change")

    doc = replay("apply", "--yes")
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert {n: h["status"] for n, h in hosts.items()} == {
        **dict.fromkeys(NAMES, "ok"),
        BROKEN: "failed",
        STOPPED: "unreachable",
    }
    assert doc["summary"]["changes"] == 6
    for n in NAMES:
        if n in (BROKEN, STOPPED):
            continue
        got = {i["item"]: (i["status"], i["detail"]) for i in hosts[n]["items"]}
        assert got["cai-env"] == ("applied", f"{targets[n]} written"), got["cai-env"]
        for check in ("trustee.url", "trustee.auth_nonce", "oss.credentials", "oss.model_prefix"):
            assert got[check][0] == "skipped" and got[check][1].startswith("pass: "), (check, got[check])
        text = targets[n].read_text()
        assert env["CAI_FLEET_SK"] in text, "the instance's cai.env holds the resolved AccessKey, as it must"
        assert stat.S_IMODE(targets[n].stat().st_mode) == 0o600
    broken = {i["item"]: (i["status"], i["detail"]) for i in hosts[BROKEN]["items"]}
    assert broken["cai-env"][0] == "failed" and hosts[BROKEN]["stopped_at"] == "cai-env"

    doc = replay("again", "--yes")
    assert doc["summary"]["changes"] == 0
    targets["host02"].write_text("edited by hand\n")
    doc = replay("repair", "--yes")
    assert doc["summary"]["changes"] == 1
    host02 = next(h for h in doc["hosts"] if h["name"] == "host02")
    status, detail = next((i["status"], i["detail"]) for i in host02["items"] if i["item"] == "cai-env")
    assert status == "applied" and "the previous file kept as" in detail
    backup = Path(detail.split("the previous file kept as ", 1)[1].rstrip(")"))
    assert backup.read_text() == "edited by hand\n"


def test_no_secret_reaches_the_runner_dir_or_the_outputs(
    lab_process: dict[str, Any], fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    from cai_tui.fleet import replay as fleet_replay
    from cai_tui.fleet.junit import write_replay_junit

    recipe, env = planted_recipe(lab_process, tmp_path / "recipe.yaml")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    secret = env["CAI_FLEET_SK"]
    targets = env_files(tmp_path / "hosts")
    host_vars = {n: {"cai_tui_answers": {"service.env_file": str(p)}} for n, p in targets.items()}
    inventory = fleet.write_inventory(tmp_path / "hosts.ini", host_vars=host_vars)
    kept = keep_private_dir(monkeypatch, fleet_replay, tmp_path / "private")
    runs, role, path = fleet_replay.prepare_replay(inventory, recipe, "host01,host02", None, ["cai-env"])
    result = fleet_replay.run_fleet_replay(inventory, path, runs, role, forks=2, plan_only=False, timeout=10)
    assert [h.status for h in result.hosts] == ["ok", "ok"]
    assert secret in targets["host01"].read_text()
    junit = tmp_path / "out.xml"
    write_replay_junit(result, junit)
    assert secret not in json.dumps(result.to_json()) and secret not in junit.read_text()

    runner_files = [p for p in kept.rglob("*") if p.is_file() and "runner" in p.relative_to(kept).parts]
    assert any(p.name == "command" for p in runner_files) and any("job_events" in str(p) for p in runner_files)
    assert [str(p) for p in runner_files if secret.encode() in p.read_bytes()] == []
    rendered = [p for p in kept.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert rendered, "the rendered cai.env files are the only place the secret is"
    for p in rendered:
        assert "files" in p.relative_to(kept).parts and stat.S_IMODE(p.stat().st_mode) == 0o600, p
    plays = [p for p in runner_files if p.name == "main.json"]
    assert plays and all('"no_log": true' in p.read_text() for p in plays)


def recap(stdout: str) -> dict[str, dict[str, int]]:
    """ansible-playbook's PLAY RECAP: host → {ok, changed, unreachable, failed, …}."""
    out: dict[str, dict[str, int]] = {}
    for line in stdout.split("PLAY RECAP", 1)[1].splitlines()[1:]:
        if ":" not in line:
            continue
        host, _, rest = line.partition(":")
        out[host.strip()] = {k: int(v) for k, v in (kv.split("=") for kv in rest.split())}
    return out


def test_exported_playbook_runs_with_plain_ansible(lab_process: dict[str, Any], fleet: Fleet, tmp_path: Path) -> None:
    recipe, env = planted_recipe(lab_process, tmp_path / "recipe.yaml")
    targets = {n: tmp_path / "hosts" / n / "cai.env" for n in ("host01", "host02")}
    host_vars = {n: {"cai_tui_answers": {"service.env_file": str(p)}} for n, p in targets.items()}
    inventory = fleet.write_inventory(tmp_path / "hosts.ini", host_vars=host_vars)
    export = tmp_path / "export"
    res = cai_tui(
        "replay", str(recipe), "--hosts", str(inventory), "-l", "host01,host02", "--only", "cai-env",
        "--export-playbook", str(export), env={},  # no secret in the environment: an export needs none
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    names = sorted(str(p.relative_to(export)) for p in export.rglob("*") if p.is_file())
    assert names == [
        "README.md", "capture.sh", "host_vars/host01.yml", "host_vars/host02.yml", "inventory.example.ini",
        "recipes/host01.yaml", "recipes/host02.yaml", "site.yml",
    ]  # fmt: skip
    assert "env:CAI_FLEET_SK" in (export / "recipes/host01.yaml").read_text()
    assert str(targets["host01"]) in (export / "host_vars/host01.yml").read_text()

    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    run_env = {**os.environ, **env, "PATH": path, "ANSIBLE_NOCOLOR": "1"}

    def playbook(*extra: str) -> dict[str, dict[str, int]]:
        argv = ["ansible-playbook", "-i", str(inventory), "-l", "host01,host02", str(export / "site.yml"), *extra]
        done = subprocess.run(argv, capture_output=True, text=True, env=run_env, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        assert env["CAI_FLEET_SK"] not in done.stdout + done.stderr
        return recap(done.stdout)

    checked = playbook("--check", "--diff")
    assert not any(p.exists() for p in targets.values()) and checked["host01"]["failed"] == 0
    applied = playbook()
    assert applied["host01"]["changed"] >= 1 and applied["host02"]["failed"] == 0
    assert env["CAI_FLEET_SK"] in targets["host01"].read_text()
    assert stat.S_IMODE(targets["host01"].stat().st_mode) == 0o600
    again = playbook()
    assert again["host01"]["changed"] == 0 and again["host02"]["changed"] == 0
    leftovers = [p for p in export.rglob("*") if p.is_file() and env["CAI_FLEET_SK"].encode() in p.read_bytes()]
    assert leftovers == [], "no rendered file outlives its copy"
    assert sorted(p.name for p in (export / ".captures").iterdir()) == ["cai-env-host01.txt", "cai-env-host02.txt"]
