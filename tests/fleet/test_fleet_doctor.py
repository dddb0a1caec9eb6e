"""``cai-tui doctor --hosts``: real Ansible (ansible-runner, ansible-playbook) over a fleet of real sshd on loopback
ports (cai_tui.lab.fleet), each host's capture judged by the checks. One host is stopped (unreachable); one host's
sshd sets DOCKER_HOST to a socket that does not exist, so its Docker daemon does not answer (a failing check).
The other hosts are this machine, whose own Docker engine answers (the test command starts dockerd)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cai_tui.lab.fleet import Fleet, start_fleet
from tests.fleet.private import keep_private_dir

REPO = Path(__file__).resolve().parents[2]
DOCKER_ONLY = "docker.version,docker.compose"
COUNT = 9
BROKEN, STOPPED = "host05", "host09"


def cai_tui(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cai_tui.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    from tests.targets.docker_lab import ensure_engine

    ensure_engine()  # the hosts' docker.version asks this machine's engine
    f = start_fleet(
        tmp_path_factory.mktemp("fleet"),
        COUNT,
        extra={"host05": ["SetEnv DOCKER_HOST=unix:///run/cai-tui-no-such-docker.sock"]},
    )
    try:
        f.stop_host("host09")
        yield f
    finally:
        f.stop()


def name(short: str) -> str:
    return short


@pytest.fixture(scope="module")
def inventory(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fleet.write_inventory(tmp_path_factory.mktemp("inv") / "hosts.ini")


@pytest.fixture(scope="module")
def fleet_run(
    inventory: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    out = tmp_path_factory.mktemp("out")
    junit, captures = out / "fleet.xml", out / "captures"
    res = cai_tui(
        "doctor", "--hosts", str(inventory), "--only", DOCKER_ONLY, "--json", "--forks", "9",
        "--junit", str(junit), "--captures", str(captures),
    )  # fmt: skip
    return res, junit, captures


def test_per_host_results(fleet_run: tuple[subprocess.CompletedProcess[str], Path, Path]) -> None:
    res, _junit, _captures = fleet_run
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    assert doc["schema"] == "cai-tui/fleet/v1"
    assert doc["summary"] == {"ok": 7, "failed": 1, "unreachable": 1}
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert sorted(hosts) == [f"host{i:02d}" for i in range(1, COUNT + 1)]
    broken, stopped = hosts[name(BROKEN)], hosts[name(STOPPED)]
    assert stopped["status"] == "unreachable" and stopped["exit_code"] == 1 and stopped["checks"] == []
    assert "Connection refused" in stopped["error"] or "connect" in stopped["error"].lower()
    assert broken["status"] == "failed" and broken["exit_code"] == 1
    checks = {c["id"]: c for c in broken["checks"]}
    assert checks["docker.version"]["status"] == "fail"
    assert "the Docker daemon does not answer" in checks["docker.version"]["summary"]
    assert checks["docker.version"]["fix"]["faq_id"] == "docker-too-old"
    assert checks["docker.version"]["target"] == f"{name(BROKEN)} (Ansible capture)"
    for n, h in hosts.items():
        if n in (name(BROKEN), name(STOPPED)):
            continue
        assert h["status"] == "ok" and h["exit_code"] == 0, h
        assert {c["id"]: c["status"] for c in h["checks"]} == {"docker.version": "pass", "docker.compose": "pass"}


def test_hosts_agree_with_doctor_on_this_machine(
    fleet_run: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    """The hosts are this machine: each host's verdicts and summaries are what `doctor --target local` says."""
    res, _junit, _captures = fleet_run
    local = json.loads(cai_tui("doctor", "--target", "local", "--only", DOCKER_ONLY, "--json").stdout)
    want = {c["id"]: (c["status"], c["summary"]) for c in local["checks"]}
    ok = next(h for h in json.loads(res.stdout)["hosts"] if h["name"] == "host01")
    assert {c["id"]: (c["status"], c["summary"]) for c in ok["checks"]} == want


def test_junit_one_suite_per_host(fleet_run: tuple[subprocess.CompletedProcess[str], Path, Path]) -> None:
    from junitparser import Error, Failure, JUnitXml

    _res, junit, _captures = fleet_run
    suites = {s.name: s for s in JUnitXml.fromfile(str(junit))}
    assert sorted(suites) == [f"host{i:02d}" for i in range(1, COUNT + 1)]
    results = {n: {c.name: [type(r).__name__ for r in c.result] for c in s} for n, s in suites.items()}
    assert results["host01"] == {"docker.version": [], "docker.compose": []}
    assert results[name(BROKEN)]["docker.version"] == [Failure.__name__]
    assert results[name(STOPPED)] == {"reach and capture": [Error.__name__]}


def test_captures_are_kept_and_read_by_doctor_sysroot(
    fleet_run: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    _res, _junit, captures = fleet_run
    assert sorted(p.name for p in captures.iterdir()) == [f"host{i:02d}" for i in range(1, COUNT)]  # not host09
    first = (captures / name(BROKEN) / "docker-version.txt").read_text()
    assert first.startswith("# $ sh -c docker version; docker compose version\n") and "# rc=" in first
    again = cai_tui("doctor", "--sysroot", str(captures / name(BROKEN)), "--only", "docker.version", "--json")
    assert again.returncode == 1
    assert json.loads(again.stdout)["checks"][0]["status"] == "fail"


def test_limit_and_yaml_inventory(fleet: Fleet, tmp_path: Path) -> None:
    inv = fleet.write_inventory(tmp_path / "hosts.yaml", fmt="yaml", groups={"gpu": ["host01", "host02", "host03"]})
    res = cai_tui("doctor", "--hosts", str(inv), "-l", "gpu:!host02", "--only", DOCKER_ONLY, "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert [h["name"] for h in doc["hosts"]] == ["host01", "host03"]
    assert doc["summary"] == {"ok": 2, "failed": 0, "unreachable": 0}


def test_human_output_names_the_failing_check_and_fix(fleet: Fleet, inventory: Path) -> None:
    res = cai_tui("doctor", "--hosts", str(inventory), "-l", "host01,host05,host09", "--only", DOCKER_ONLY)
    assert res.returncode == 1
    out = res.stdout
    assert "host05 ✗ docker.version: the Docker daemon does not answer" in out
    assert "fix [docker-too-old]" in out
    assert "3 host(s): 1 ok, 1 failed, 1 unreachable" in out
    assert "Traceback" not in res.stderr


def test_host_vars_override_the_recipe(fleet: Fleet, tmp_path: Path) -> None:
    from cai_tui.fleet.inventory import load_inventory, recipe_for_host

    recipe = REPO / "recipes/lab-demo.yaml"
    good = {"host01": {"cai_tui_answers": {"instance.public_ip": "192.0.2.10", "tng.proxy_port": 41777}}}
    inv = fleet.write_inventory(tmp_path / "good.ini", host_vars=good)
    hosts = {h.name: h for h in load_inventory(inv, "host01,host02")}
    one = recipe_for_host(recipe, hosts["host01"]).recipe
    two = recipe_for_host(recipe, hosts["host02"]).recipe
    assert str(one.answers.instance.public_ip) == "192.0.2.10" and one.answers.tng.proxy_port == 41777
    assert two.answers.tng.proxy_port == 41000  # the recipe's own value
    res = cai_tui(
        "doctor", "--hosts", str(inv), "--recipe", str(recipe), "-l", "host01", "--only", "docker.version", "--json"
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["recipe"] == str(recipe)

    bad = fleet.write_inventory(
        tmp_path / "bad.ini", host_vars={"host02": {"cai_tui_answers": {"instance.public_ip": "nope"}}}
    )
    res = cai_tui("doctor", "--hosts", str(bad), "--recipe", str(recipe), "--only", "docker.version")
    assert res.returncode == 2
    assert "host host02: cai_tui_answers.instance.public_ip:" in res.stderr and "Traceback" not in res.stderr
    res = cai_tui("doctor", "--hosts", str(bad), "--only", "docker.version")
    assert res.returncode == 2 and "host host02 sets cai_tui_answers, which needs --recipe" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hosts", "{tmp}/missing.ini"], "missing.ini: no such file"),
        (["--hosts", "{inv}", "-l", "nohost*"], "--limit 'nohost*' matches no host"),
        (["--hosts", "{tmp}/broken.yaml"], "Ansible cannot read it as an inventory"),
        (["--hosts", "{inv}", "--only", "nope.*"], "--only 'nope.*' matches no check"),
        (["--hosts", "{inv}", "--target", "local"], "--hosts takes the place of --target"),
        (["--hosts", "{inv}", "--forks", "0"], "--forks must be 1 or more"),
        (["--junit", "{tmp}/x.xml"], "--junit go with --hosts INVENTORY"),
    ],
)
def test_input_errors(inventory: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "broken.yaml").write_text("all:\n  hosts: [unclosed\n")
    argv = [a.format(tmp=tmp_path, inv=inventory) for a in args]
    res = cai_tui("doctor", *argv)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert message in res.stderr and "Traceback" not in res.stderr


def test_without_ansible_says_how_to_install(inventory: Path) -> None:
    code = (
        "import sys; sys.modules['ansible_runner'] = None; "  # as if ansible-runner were not installed
        "from cai_tui.cli.main import main; sys.exit(main(['doctor', '--hosts', sys.argv[1]]))"
    )
    res = subprocess.run([sys.executable, "-c", code, str(inventory)], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 2
    assert "ansible-runner is not installed: pip install 'cai-tui[fleet]'" in res.stderr


def test_no_secret_reaches_the_runner_dir_the_artifacts_or_the_outputs(
    fleet: Fleet, inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret in the controller's environment, referenced by the recipe (env:), resolved by model.encrypted (it opens
    a real gocryptfs cipherdir with it) and put next to OSS keys the OSS checks read: it is
    nowhere in ansible-runner's private data dir (kept here for the look), the captures, the JSON or the JUnit."""
    import secrets as pysecrets

    from cai_tui.fleet import doctor as fleet_doctor
    from cai_tui.fleet.junit import write_fleet_junit

    secret = "SK-" + pysecrets.token_hex(16)
    monkeypatch.setenv("CAI_FLEET_TEST_SK", secret)
    monkeypatch.setenv("CAI_FLEET_TEST_AK", "LTAI" + pysecrets.token_hex(8))
    text = (REPO / "recipes/lab-demo.yaml").read_text()
    text = text.replace("file:~/.local/state/cai-tui/lab/oss_access_key_secret", "env:CAI_FLEET_TEST_SK")
    text = text.replace("file:~/.local/state/cai-tui/lab/oss_access_key_id", "env:CAI_FLEET_TEST_AK")
    cipher, passfile = tmp_path / "cipher", tmp_path / "pass"
    cipher.mkdir()
    passfile.write_text(secret + "\n")
    subprocess.run(["gocryptfs", "-init", "-q", "-scryptn", "10", "-passfile", str(passfile), str(cipher)], check=True)
    passfile.unlink()
    text = text.replace("file:~/.local/state/cai-tui/lab/model-password", "env:CAI_FLEET_TEST_SK")
    text = re.sub(r"(?m)^(\s+cipher_dir:).*$", rf"\1 {cipher}", text)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    kept = keep_private_dir(monkeypatch, fleet_doctor, tmp_path / "private")
    plan = fleet_doctor.prepare(inventory, recipe, "host01,host02,host05", "oss.*,model.encrypted,docker.version")
    report = fleet_doctor.run_fleet_doctor(plan, forks=3, limit="host01,host02,host05", timeout=5)
    opened = [o.result.summary for h in report.hosts for o in h.outcomes if o.id == "model.encrypted"]
    assert len(opened) == 3 and all(s.startswith("the password opens the cipherdir") for s in opened), [
        (h.name, h.status, h.error, [o.id for o in h.outcomes]) for h in report.hosts
    ]
    assert {h.name: h.status for h in report.hosts}["host05"] == "failed"
    from cai_tui.recipe import REDACTOR

    assert secret in REDACTOR, "a check resolved the secret (so the outputs had it to redact)"
    junit = tmp_path / "fleet.xml"
    write_fleet_junit(report, junit)
    doc = json.dumps(report.to_json())
    assert secret not in doc and secret not in junit.read_text()
    files = [p for p in kept.rglob("*") if p.is_file()]
    assert any("job_events" in str(p) for p in files), "ansible-runner wrote its artifacts there"
    assert not (kept / "runner/env/envvars").exists() and not (kept / "runner/env/extravars").exists()
    leaked = [str(p) for p in files if secret.encode() in p.read_bytes()]
    assert leaked == []
