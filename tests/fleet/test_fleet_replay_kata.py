"""``cai-tui replay RECIPE --hosts``: the kata recipe's kata-config stage (a doer that edits a file, and the stage's
checks) on 5 real sshd hosts through real Ansible (the 8-host fleet is the CAI test's). Each host has its own kata
configuration (a host var overrides ``kata.config_path``; its sshd sets ``KATA_CONF_FILE`` as a kata host's
environment would); the doer and the checks run on each host by the host's own cai-tui (``cai_tui_command``).
host04's configuration does not exist (its doer fails); host05 is stopped (unreachable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cai_tui.lab.fleet import Fleet, start_fleet
from cai_tui.lab.kata.kata_config import write_kata_config

REPO = Path(__file__).resolve().parents[2]
NAMES = [f"host{i:02d}" for i in range(1, 6)]
BROKEN, STOPPED = "host04", "host05"
HOOK = 'guest_hook_path = "/usr/share/oci/hooks"'

pytestmark = pytest.mark.slow


@dataclass
class Bed:
    fleet: Fleet
    inventory: Path
    recipe: Path
    confs: dict[str, Path]
    out: Path


def cai_tui(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cai_tui.cli.main", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    root = tmp_path_factory.mktemp("kata-fleet")
    confs = {n: write_kata_config(root / n) for n in NAMES}
    confs[BROKEN].unlink()
    fleet = start_fleet(root / "fleet", len(NAMES), extra={n: [f"SetEnv KATA_CONF_FILE={confs[n]}"] for n in NAMES})
    try:
        fleet.stop_host(STOPPED)
        cli = str(Path(sys.executable).parent / "cai-tui")
        host_vars = {n: {"cai_tui_command": cli, "cai_tui_answers": {"kata.config_path": str(confs[n])}} for n in NAMES}
        inventory = fleet.write_inventory(root / "hosts.ini", host_vars=host_vars)
        recipe = root / "kata.yaml"
        text = (REPO / "recipes/kata-virtcca-qwen1.5-1.8b.yaml").read_text()
        assert "\nwaivers:" not in text
        recipe.write_text(
            text + "\nwaivers:\n  - check: kata.hook\n    reason: the fleet test hosts have no guest rootfs image\n"
        )
        yield Bed(fleet, inventory, recipe, confs, root)
    finally:
        fleet.stop()
        for n in NAMES:  # the hosts are this machine: the recipe copies the replays left in its home
            Path(os.path.expanduser(f"~/.config/cai-tui/fleet/kata-{n}.yaml")).unlink(missing_ok=True)


def replay(bed: Bed, *extra: str, name: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = bed.out / f"{name}.json"
    res = cai_tui(
        "replay", str(bed.recipe), "--hosts", str(bed.inventory), "--only", "kata-config", "--forks", "5",
        "--json", str(out), "--junit", str(bed.out / f"{name}.xml"), *extra,
    )  # fmt: skip
    assert "Traceback" not in res.stderr, res.stderr
    return res, json.loads(out.read_text())


def items(doc: dict, host: str) -> dict[str, tuple[str, str]]:
    h = next(h for h in doc["hosts"] if h["name"] == host)
    return {i["item"]: (i["status"], i["detail"]) for i in h["items"]}


def test_plan_apply_and_a_second_run_without_changes(bed: Bed) -> None:
    before = {n: p.read_text() for n, p in bed.confs.items() if p.exists()}
    res, doc = replay(bed, "--plan", name="plan")
    assert res.returncode == 1 and doc["mode"] == "plan"
    assert {n: p.read_text() for n, p in bed.confs.items() if p.exists()} == before, "--plan changed nothing"
    assert items(doc, "host01")["kata.set_hook_path"][0] == "planned"
    assert items(doc, "host01")["kata.set_hook_path"][1].startswith("would run cai-tui kata config")

    res, doc = replay(bed, "--yes", name="apply")
    assert res.returncode == 1, res.stdout
    assert doc["schema"] == "cai-tui/replay/v1" and doc["mode"] == "apply"
    statuses = {h["name"]: h["status"] for h in doc["hosts"]}
    assert statuses == {**dict.fromkeys(NAMES, "ok"), BROKEN: "failed", STOPPED: "unreachable"}
    assert doc["summary"] == {"ok": 3, "failed": 1, "unreachable": 1, "changes": 3}
    for n in NAMES:
        if n in (BROKEN, STOPPED):
            continue
        got = items(doc, n)
        assert got["kata.set_hook_path"][0] == "applied", got
        assert got["kata.set_hook_path"][1].startswith(f"wrote {bed.confs[n]}")
        assert got["kata.config"] == ("skipped", f"pass: kata loads {bed.confs[n]}: {HOOK}"), got["kata.config"]
        assert got["kata.hook"][0] == "waived"
        assert (
            got["kata-config-patch"][0] == "skipped" and "runs on the workstation, once" in got["kata-config-patch"][1]
        )
        assert HOOK in bed.confs[n].read_text() and bed.confs[n].with_name("configuration.toml.bak").exists()
    broken = next(h for h in doc["hosts"] if h["name"] == BROKEN)
    assert broken["exit_code"] == 1 and broken["stopped_at"] == "kata-config"
    status, detail = items(doc, BROKEN)["kata.set_hook_path"]
    assert status == "failed" and detail.startswith("`cai-tui kata config --recipe"), detail
    stopped = next(h for h in doc["hosts"] if h["name"] == STOPPED)
    assert {i["status"] for i in stopped["items"]} == {"planned"} and "Connection refused" in stopped["error"]

    res, doc = replay(bed, "--yes", name="again")
    assert doc["summary"]["changes"] == 0, doc["summary"]
    for n in ("host01", "host02"):
        status, detail = items(doc, n)["kata.set_hook_path"]
        assert status == "skipped" and detail.startswith("already done"), detail


def test_junit_has_a_suite_per_host(bed: Bed) -> None:
    from junitparser import Error, JUnitXml

    path = bed.out / "apply.xml"
    if not path.exists():
        replay(bed, "--yes", name="apply")
    suites = {s.name: s for s in JUnitXml.fromfile(str(path))}
    assert sorted(suites) == NAMES
    assert any(isinstance(r, Error) for c in suites[STOPPED] for r in c.result)
    assert int(suites[BROKEN].failures) >= 1 and int(suites["host01"].failures) == 0


def test_the_hosts_recipe_copy_holds_references_only(bed: Bed) -> None:
    """The doers read the recipe on each host: a copy with the host's overrides, never a secret value."""
    copy = Path(os.path.expanduser("~/.config/cai-tui/fleet/kata-host01.yaml"))
    if not copy.exists():
        replay(bed, "--yes", name="apply")
    text = copy.read_text()
    assert str(bed.confs["host01"]) in text and str(bed.confs["host02"]) not in text
    assert oct(copy.stat().st_mode & 0o777) == "0o600"
