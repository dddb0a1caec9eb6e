"""All seventeen checks together: registered with valid stages, and all passing against a complete, healthy lab."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cai_tui.checks.registry import CHECK_MODULES, all_checks
from cai_tui.gocryptfs import decrypt_tree
from cai_tui.lab.orchestrator import KMS_INSTANCE_ID
from cai_tui.stages import load_all

from .checklib import OUR_CHECKS, assert_no_secrets, describe, expect, lab_recipe, lab_secrets, outcome_text, run
from .test_kms_checks import P12_PASSWORD, _client_key_files


def test_checks_are_registered_with_real_stages() -> None:
    for module in ("cai_tui.checks.trustee", "cai_tui.checks.oss", "cai_tui.checks.kms", "cai_tui.checks.model"):
        assert module in CHECK_MODULES
    specs = all_checks()
    cai_stages = {s.id for s in load_all()["cai"].stages}
    referenced = {c for s in load_all()["cai"].stages for c in s.checks}
    for cid in OUR_CHECKS:
        spec = specs[cid]
        assert spec.stage in cai_stages, (cid, spec.stage)
        assert spec.flows == ("cai",)
        assert cid in referenced, f"{cid} is not verified by any stage"
        for dep in spec.depends:
            assert dep in specs
    assert specs["model.mounted"].runs_on == "instance" and specs["disk.capacity"].runs_on == "instance"
    assert specs["oss.bucket_policy"].required is False


def test_complete_healthy_lab_passes_every_check(policy_lab: Any, tmp_path: Path) -> None:
    mnt = tmp_path / "mounted-model"
    decrypt_tree(policy_lab.demo.cipher_dir, mnt, policy_lab.demo.password)
    files = _client_key_files(tmp_path, ca_instance=KMS_INSTANCE_ID)  # the lab's KMS instance

    def edit(d: dict[str, Any]) -> None:
        d["answers"]["service"].update(mount_point=str(mnt))
        d["answers"]["kms"].update(instance_id=KMS_INSTANCE_ID, **files)

    out = run(lab_recipe(policy_lab, tmp_path, edit), timeout=5.0)
    assert set(out) == set(OUR_CHECKS)
    for cid in OUR_CHECKS:
        expect(out, cid, "pass")
    assert {o.target_name for o in out.values()} == {"local"}
    assert all(o.result.evidence for o in out.values()), describe(out)
    assert_no_secrets(outcome_text(out), [*lab_secrets(policy_lab), P12_PASSWORD])
