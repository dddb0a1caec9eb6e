"""`cai-tui replay` (the real CLI, a subprocess) on a bare lab with its instance: from nothing to a model that answers,
again with nothing to do, --plan and --export-script changing nothing, and a lab fault that stops the run at the right
stage with the right FAQ id, resumed with --from once the fault is cleared.

Real components only: the lab's Trustee/OSS/KMS servers, the labstack CAI stack on the local Docker engine with
Compose v2, real gocryptfs in the cachefs container, the child ``cai-tui`` commands the engine runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cai_tui.lab.orchestrator import Lab
from tests.conftest import APPLIED_FROM_NOTHING, PROXY_VARS, LabClients, loopback_env

CLI = Path(sys.executable).parent / "cai-tui"
REPLAY_TIMEOUT_S = 420


def _cli() -> list[str]:
    return [str(CLI)] if CLI.exists() else [sys.executable, "-m", "cai_tui.cli.main"]


def replay(recipe: Path, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run ``cai-tui replay RECIPE ARGS`` without a terminal: (rc, JSON-line events on stdout, stderr)."""
    r = subprocess.run(
        [*_cli(), "replay", str(recipe), *args],
        capture_output=True,
        text=True,
        env=loopback_env(),
        stdin=subprocess.DEVNULL,
        timeout=REPLAY_TIMEOUT_S,
    )
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(events) == len([ln for ln in r.stdout.splitlines() if ln.strip()]), "stdout holds only JSON lines"
    return r.returncode, events, r.stderr


def summary(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    assert doc["schema"] == "cai-tui/replay/v1"
    for item in doc["items"]:
        assert item["kind"] in ("action", "file", "command", "manual", "check")
        assert item["status"] in ("planned", "applied", "skipped", "failed", "waived")
        assert item["target"] and item["stage"] and item["item"]
    return doc


def item(doc: dict[str, Any], stage: str, name: str) -> dict[str, Any]:
    return next(i for i in doc["items"] if i["stage"] == stage and i["item"] == name)


def _snapshot(lab: Lab) -> dict[str, Any]:
    """What a replay could change: the lab's OSS objects and KMS secrets, every file under the state directory (bar
    the lab's own logs), and the Docker containers of the lab instance's project."""
    from cai_tui.labstack.stack import docker_client, project_filter

    files = {}
    for root, _dirs, names in os.walk(lab.state_dir):
        for n in names:
            p = Path(root, n)
            if p.is_file() and "oss" not in p.relative_to(lab.state_dir).parts[:1]:
                st = p.stat()
                files[str(p)] = (st.st_size, st.st_mtime_ns)
    clients = LabClients(lab.credentials_path)
    import oss2
    from alibabacloud_kms20160120 import models as kms_models

    objects = sorted((o.key, o.etag) for o in oss2.ObjectIterator(clients.oss_bucket()))
    listed = clients.kms().list_secrets(kms_models.ListSecretsRequest()).body.secret_list.secret
    secrets = sorted(s.secret_name for s in listed)
    assert lab.instance is not None
    containers = sorted(
        c.name for c in docker_client().containers.list(all=True, filters=project_filter(lab.instance.project))
    )
    return {"files": files, "objects": objects, "secrets": secrets, "containers": containers}


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_replay_from_nothing_to_an_answering_model_then_nothing_to_do(bare_lab: Lab, tmp_path: Path) -> None:
    lab = bare_lab
    recipe = lab.recipe_path
    assert not (lab.state_dir / "demo-cipher").exists() and not (lab.state_dir / "model-password").exists()

    # --plan: every item of every stage with its target and guard; nothing changes
    before = _snapshot(lab)
    rc, plan_lines, err = replay(recipe, "--plan", "--json", str(tmp_path / "plan.json"))
    assert rc == 0, err
    assert _snapshot(lab) == before
    planned = summary(tmp_path / "plan.json")
    assert {i["status"] for i in planned["items"]} == {"planned"} and planned["changes"] == 0
    stages = {i["stage"] for i in planned["items"]}
    assert len(stages) == 14
    encrypt = next(p for p in plan_lines if p.get("item") == "model.encrypt" and p["applies"])
    assert encrypt["guard"] == ["model.encrypted"] and encrypt["target"] == "workstation"
    assert encrypt["command"].startswith("cai-tui model encrypt ")

    # --export-script: valid sh, no secret value in it
    script = tmp_path / "replay.sh"
    rc, _lines, err = replay(recipe, "--export-script", str(script))
    assert rc == 0, err
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    creds = json.loads(lab.credentials_path.read_text())
    for key in ("oss_access_key_secret", "kms_access_key_secret", "oss_access_key_id", "kms_access_key_id"):
        assert creds[key] not in text, key
    assert _snapshot(lab) == before

    # apply from nothing
    t0 = time.monotonic()
    rc, events, err = replay(recipe, "--yes", "--json", str(tmp_path / "run1.json"), "--junit", str(tmp_path / "j.xml"))
    first_s = time.monotonic() - t0
    doc = summary(tmp_path / "run1.json")
    assert rc == 0, f"{doc['message']}\n{err[-2000:]}"
    assert doc["status"] == "ok" and doc["stopped_at"] is None
    applied = {(i["stage"], i["item"]) for i in doc["items"] if i["status"] == "applied"}
    assert applied >= APPLIED_FROM_NOTHING
    assert doc["changes"] == len(applied)
    assert item(doc, "trustee-deploy", "trustee.auth_nonce")["status"] == "skipped"
    assert item(doc, "trustee-deploy", "trustee.auth_nonce")["detail"].startswith("pass: nonce ")
    assert item(doc, "inference", "inference.completion")["detail"].startswith("pass: the model answered")
    ask = item(doc, "client", "inference.ask")
    assert ask["status"] == "skipped" and "Hello from the cai-tui lab model" in ask["detail"], ask
    waived = {i["item"] for i in doc["items"] if i["status"] == "waived"}
    assert {"host.tdx_guest", "gpu.present", "tng.client_proxy"} <= waived
    assert not [i for i in doc["items"] if i["status"] in ("failed", "planned")]
    assert events[-1]["schema"] == "cai-tui/replay-summary/v1" and events[-1]["status"] == "ok"
    events = [e for e in events if e["schema"] == "cai-tui/event/v1"]
    kinds = {e["kind"] for e in events}
    assert {"step_started", "step_finished", "check", "note"} <= kinds
    assert any(e["kind"] == "progress" and e.get("total") for e in events), "child progress reaches the parent"
    from junitparser import JUnitXml

    xml = JUnitXml.fromfile(str(tmp_path / "j.xml"))
    suites = {s.name: s for s in xml}
    assert len(suites) == 14 and suites["model-encrypt"].tests > 0 and xml.failures == 0
    print(f"first replay: {first_s:.1f} s, {doc['changes']} changes, counts {doc['counts']}")

    # a second apply changes nothing: every item skipped (waivers reported as waived)
    rc, _events, err = replay(recipe, "--yes", "--json", str(tmp_path / "run2.json"))
    again = summary(tmp_path / "run2.json")
    assert rc == 0, err
    assert again["changes"] == 0 and again["status"] == "ok"
    assert {i["status"] for i in again["items"]} == {"skipped", "waived"}
    assert {i["item"] for i in again["items"] if i["status"] == "waived"} == waived

    # a generated file edited by hand: rewritten, the edited copy kept as .bak with its mode
    from cai_tui.recipe import load_recipe

    rec = load_recipe(recipe).recipe
    env_file = Path(rec.answers.service.env_file)  # type: ignore[union-attr]
    env_file.write_text(env_file.read_text() + "# edited by hand\n")
    rc, _events, err = replay(recipe, "--yes", "--only", "cai-env", "--json", str(tmp_path / "run3.json"))
    rewritten = item(summary(tmp_path / "run3.json"), "cai-env", "cai-env")
    assert rc == 0, err
    assert rewritten["status"] == "applied" and "cai.env.bak" in rewritten["detail"], rewritten
    bak = env_file.with_name("cai.env.bak")
    assert bak.read_text().endswith("# edited by hand\n") and "# edited by hand" not in env_file.read_text()
    assert (bak.stat().st_mode & 0o777, env_file.stat().st_mode & 0o777) == (0o600, 0o600)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_lab_fault_stops_at_the_right_stage_with_its_fix_and_from_resumes(bare_lab: Lab, tmp_path: Path) -> None:
    lab = bare_lab
    lab.faults.set("kbs-policy-deny", True)
    rc, events, err = replay(lab.recipe_path, "--yes", "--json", str(tmp_path / "fail.json"))
    doc = summary(tmp_path / "fail.json")
    assert rc == 1, err
    assert doc["status"] == "failed" and doc["stopped_at"] == "cai-stack"
    failed = [i for i in doc["items"] if i["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["item"] == "cai.start_stack"
    assert failed[0]["faq_id"] == "kbs-policy-deny"
    assert any("PolicyDeny" in e for e in failed[0]["evidence"]), failed[0]["evidence"]
    later = [i for i in doc["items"] if i["stage"] in ("inference", "client")]
    assert later and {i["status"] for i in later} == {"planned"}
    assert any(e.get("kind") == "note" and "kbs-policy-deny" in e.get("text", "") for e in events)

    lab.faults.set("kbs-policy-deny", False)
    rc, _events, err = replay(lab.recipe_path, "--yes", "--from", "cai-stack", "--json", str(tmp_path / "resume.json"))
    resumed = summary(tmp_path / "resume.json")
    assert rc == 0, f"{resumed['message']}\n{err[-2000:]}"
    assert {i["stage"] for i in resumed["items"]} >= {"cai-stack", "inference", "client", "troubleshoot"}
    assert "model-encrypt" not in {i["stage"] for i in resumed["items"]}
    assert item(resumed, "cai-stack", "cai.start_stack")["status"] == "applied"
    assert item(resumed, "inference", "inference.completion")["detail"].startswith("pass: the model answered")


def test_replay_input_errors_change_nothing(lab: Lab, tmp_path: Path) -> None:
    """Without --yes and a terminal, with an unknown stage, or with a prompt secret: exit 2 before any change."""
    recipe = lab.recipe_path
    rc, _e, err = replay(recipe, "--from", "nowhere")
    assert rc == 2 and "no stage 'nowhere'" in err and "01 model-source" in err
    rc, _e, err = replay(recipe)
    assert rc == 2 and "add --yes" in err
    text = recipe.read_text()
    assert "password: file:" in text
    prompted = tmp_path / "prompted.yaml"
    import re

    prompted.write_text(re.sub(r"password: file:\S+", "password: prompt", text))
    rc, _e, err = replay(prompted, "--yes", "--only", "model-key")
    assert rc == 2 and "answers.model.password: `prompt` cannot reach the commands a replay runs" in err
    assert "nothing was changed" in err
    missing = tmp_path / "missing.yaml"
    missing.write_text(re.sub(r"access_key_secret: file:\S+", "access_key_secret: env:CAI_TUI_NOT_SET_ANYWHERE", text))
    rc, _e, err = replay(missing, "--yes", "--only", "model-upload")
    assert rc == 2 and "CAI_TUI_NOT_SET_ANYWHERE is not set" in err
    rc, _e, err = replay(tmp_path / "nope.yaml", "--plan")
    assert rc == 2 and "nope.yaml" in err and "Traceback" not in err
    assert shutil.which("sh")


def test_an_unreachable_target_exits_3_naming_it(lab: Lab, tmp_path: Path) -> None:
    import re
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = lab.recipe_path.read_text()
    text = re.sub(r"(?m)^targets:\n", f"targets:\n  instance: ssh://root@127.0.0.1:{port}\n", text)
    recipe = tmp_path / "unreachable.yaml"
    recipe.write_text(text)
    rc, _events, err = replay(recipe, "--yes", "--only", "cai-env", "--json", str(tmp_path / "u.json"))
    doc = summary(tmp_path / "u.json")
    assert rc == 3, err
    assert doc["status"] == "failed" and doc["stopped_at"] == "cai-env"
    failed = item(doc, "cai-env", "cai-env")
    assert failed["status"] == "failed" and f"127.0.0.1:{port}" in failed["detail"], failed
    assert "unreachable" in doc["message"]
    assert {i["status"] for i in doc["items"] if i["kind"] == "check"} == {"planned"}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_an_interrupted_replay_exits_130_and_resumes_with_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGINT while a stage waits on a hanging Trustee: exit 130, the summary says where to resume; --from finishes."""
    import signal

    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    stages = "model-encrypt,model-upload,trustee-deploy,model-key"
    with Lab(state_dir=tmp_path / "lab-state", seed="bare") as lab:
        lab.faults.set("trustee-hang", True)
        proc = subprocess.Popen(
            [*_cli(), "replay", str(lab.recipe_path), "--yes", "--only", stages, "--json", str(tmp_path / "i.json")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=loopback_env(),
        )
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # until the run waits on Trustee
            seen.append(json.loads(line))
            if seen[-1].get("kind") == "step_started" and seen[-1]["step"].startswith("trustee-deploy/"):
                break
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        doc = summary(tmp_path / "i.json")
        assert doc["status"] == "interrupted" and doc["stopped_at"] == "trustee-deploy"
        assert "resume with --from trustee-deploy" in err
        assert item(doc, "model-upload", "model.upload")["status"] == "applied"
        assert item(doc, "model-key", "kms.create_secret")["status"] == "planned"

        lab.faults.set("trustee-hang", False)
        rc, _events, err = replay(
            lab.recipe_path, "--yes", "--from", "trustee-deploy", "--only", stages, "--json", str(tmp_path / "r.json")
        )
        done = summary(tmp_path / "r.json")
        assert rc == 0, f"{done['message']}\n{err[-2000:]}"
        assert {i["stage"] for i in done["items"]} == {"trustee-deploy", "model-key"}
        assert item(done, "model-key", "kms.create_secret")["status"] == "applied"
