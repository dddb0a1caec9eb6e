"""The user's path on the lab stack, through the CLI only: ``cai-tui deploy`` starts the stack from the recipe
(CAI-5.4's compose file including the CAI stack), a container fails, the deploy says so and points at
``cai-tui troubleshoot``, which names the fix with the proving line."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from cai_tui.cli.main import main
from cai_tui.labstack.bed import PROJECT, compose_command
from tests.labstack.conftest import StackBedFactory


@pytest.mark.timeout(300)
def test_deploy_fails_then_troubleshoot_names_the_fix(
    lab: Any, stack_bed_factory: StackBedFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    bed = stack_bed_factory()
    bed.remove_project()
    bed.share_mount_point()  # what the instance's MODEL_MOUNT_POINT is: a mount docker may propagate (:shared)
    lab.faults.set("oss-bad-signature", True)
    recipe = str(bed.recipe_file)
    common = ["--recipe", recipe, "--target", "instance=local"]

    capsys.readouterr()
    rc = main(
        [
            "deploy",
            *common,
            "--yes",
            "--timeout",
            "120",
            "--project",
            PROJECT,
            "--compose-cmd",
            shlex.join(compose_command()),
        ]
    )
    out = capsys.readouterr()
    assert rc == 1, out.out + out.err
    assert "cai-tui troubleshoot" in out.out + out.err
    assert f"{PROJECT}-oss-1" in out.out + out.err

    rc = main(["troubleshoot", *common, "--json"])
    got = capsys.readouterr()
    assert rc == 1, got.err
    doc = json.loads(got.out)
    top = min((f for f in doc["findings"] if f["service"] == "oss"), key=lambda f: f["rank"])
    assert top["faq_id"] == "oss-signature-mismatch" and top["confidence"] == "high"
    # ossfs prints OSS's answer twice (curl.cpp's body with <Code>SignatureDoesNotMatch</Code>, and the check-service
    # line with its <Message>); stdout and stderr interleave differently from run to run, so either may be the newest
    line = top["evidence"]["line"]
    assert "SignatureDoesNotMatch" in line or "The request signature we calculated does not match" in line, line
    assert top["evidence"]["time"]
    assert top["evidence"]["source"] == f"docker logs {PROJECT}-oss-1"
    assert doc["deployed_env"]["drift"] == []  # deploy wrote exactly what the recipe says
    waiting = {c["service"] for c in doc["containers"] if c["condition"] == "waiting"}
    assert {"cachefs", "inference"} <= waiting
    secret = json.loads(lab.credentials_path.read_text())["oss_access_key_secret"]
    assert secret not in got.out and secret not in out.out + out.err
