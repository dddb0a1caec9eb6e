"""Confirming a finding with the doctor's checks against the embedded lab, and keeping the recipe's secrets out.

cachefs (a real container) says ``Password incorrect.`` and exits 12, and its log also carries the model password
and the OSS AccessKey secret that the lab recipe references by file. With a healthy lab the related checks pass, so
the finding is contradicted (high → medium); with the lab's ``kms-secret-missing`` fault kms.secret_exists fails,
kms.secret_matches is skipped because of it, and both are attached to the confirmed finding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cai_tui.cli.main import main
from cai_tui.recipe import REDACTOR
from tests.targets.docker_lab import docker, ensure_engine, ensure_image
from tests.troubleshoot import stack


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["troubleshoot", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def top_cachefs(doc: dict[str, Any]) -> dict[str, Any]:
    return min((f for f in doc["findings"] if f["service"] == "cachefs"), key=lambda f: f["rank"])


def test_related_checks_confirm_or_contradict(lab: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ensure_engine()
    image = ensure_image(tmp_path)
    password = Path(lab.demo.password_file).read_text().strip()
    oss_secret = (lab.state_dir / "oss_access_key_secret").read_text().strip()
    assert len(password) >= 8 and len(oss_secret) >= 8
    project = stack.new_project("ctsl")
    # planted where the report shows them: in the proving line, and in a telling line of an unknown failure
    script = f"echo 'Password incorrect. (extpass returned {password})' >&2; exit 12"
    name = stack.run(project, "cachefs", image, script)
    other = stack.run(
        project, "attestation-agent", image, f"echo 'error: upstream request {oss_secret} failed'; exit 2"
    )
    try:
        stack.wait_for(name, lambda a: a["State"]["Status"] == "exited", "exited")
        stack.wait_for(other, lambda a: a["State"]["Status"] == "exited", "exited")
        logs = docker("logs", name).stderr + docker("logs", other).stdout
        assert password in logs and oss_secret in logs  # planted, or the redaction checks below prove nothing
        REDACTOR.clear()  # the troubleshooter must find the recipe's secrets itself
        recipe = str(lab.recipe_path)

        rc, out, err = run(capsys, "--recipe", recipe, "--project", project, "--json", "--timeout", "8")
        assert rc == 1, err
        doc = json.loads(out)
        assert doc["confirm"] == "ran"
        top = top_cachefs(doc)
        assert top["faq_id"] == "model-password-wrong"
        checks = {c["id"]: c for c in top["related_checks"]}
        assert checks["kms.secret_matches"]["status"] == "pass", checks
        assert top["confirmation"] == "contradicted" and top["confidence"] == "medium"
        assert password not in out + err and oss_secret not in out + err
        assert top["evidence"]["line"] == "Password incorrect. (extpass returned <redacted:known-secret>)"
        unknown = next(f for f in doc["findings"] if f["service"] == "attestation-agent")
        assert unknown["evidence"]["line"] == "error: upstream request <redacted:known-secret> failed"

        lab.faults.set("kms-secret-missing", True)
        rc, out, err = run(capsys, "--recipe", recipe, "--project", project, "--json", "--timeout", "8")
        doc = json.loads(out)
        top = top_cachefs(doc)
        assert top["faq_id"] == "model-password-wrong" and top["confirmation"] == "confirmed"
        assert top["confidence"] == "high"  # from the log line; checks alone never make it high
        checks = {c["id"]: c for c in top["related_checks"]}
        assert checks["kms.secret_matches"]["status"] == "skip"
        assert checks["kms.secret_exists"]["status"] == "fail"
        assert "does not exist" in checks["kms.secret_exists"]["summary"]
        # the failing checks now also count for the entries whose patterns name them
        assert "kms-secret-missing" in {f["faq_id"] for f in doc["findings"]}
        assert password not in out + err and oss_secret not in out + err

        rc, out, err = run(capsys, "--recipe", recipe, "--project", project, "--tail", "5")
        assert rc == 1 and "✗ kms.secret_exists:" in out
        assert "extpass returned <redacted:known-secret>" in out and "request <redacted:known-secret> failed" in out
        assert password not in out + err and oss_secret not in out + err

        rc, out, _ = run(capsys, "--recipe", recipe, "--project", project, "--json", "--no-confirm")
        doc = json.loads(out)
        assert doc["confirm"] == "skipped: --no-confirm"
        assert all(f["related_checks"] == [] for f in doc["findings"])
        assert top_cachefs(doc)["confidence"] == "high"
        assert password not in out and oss_secret not in out
    finally:
        stack.remove_project(project)
