"""The labstack bed against the embedded lab: the files it writes, the whole stack up and serving the decrypted model,
a failing stack reported by ``up()``, and nothing left behind by ``down()``."""

from __future__ import annotations

import json
import stat
import time
from typing import Any

import httpx

from cai_tui.labstack.bed import CONTAINERS, PROJECT, StackBed, mounts_under
from tests.labstack.conftest import StackBedFactory


def assert_nothing_left(bed: StackBed) -> None:
    assert bed.containers() == {}
    assert bed.volumes() == []
    assert mounts_under(bed.mount_point) == []


def get_models(url: str, deadline_s: float = 10) -> httpx.Response:
    """GET /v1/models; the server may still be between "started" and listening for a moment after ``up``."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            return httpx.get(f"{url}/v1/models", timeout=3, trust_env=False)
        except httpx.TransportError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def test_the_files_are_the_instance_s_files_from_the_lab_recipe(stack_bed_factory: StackBedFactory, lab: Any) -> None:
    bed = stack_bed_factory(
        env_overrides={"MODEL_KEY_ID": "kbs:///default/aliyun/wrong-key", "MODEL_SHARING_PEER": "127.0.0.2"},
        env_drop=["MODEL_OSS_SESSION_TOKEN"],
        service_env={"attestation-agent": {"CAI_LAB_ATTESTER": None}, "tng": {"RUST_LOG": "debug"}},
    )
    env = bed.env_file.read_text()
    assert stat.S_IMODE(bed.env_file.stat().st_mode) == 0o600
    assert f'MODEL_OSS_ACCESS_KEY_ID="{lab.keys.oss_access_key_id}"' in env  # real credentials, resolved
    assert 'MODEL_KEY_ID="kbs:///default/aliyun/wrong-key"' in env
    assert 'MODEL_SHARING_PEER="127.0.0.2"' in env
    assert "MODEL_OSS_SESSION_TOKEN" not in env
    assert f"MODEL_SERVICE_PORT={bed.port}\n" in env and bed.port != 8080
    assert f"MODEL_MOUNT_POINT={bed.mount_point}\n" in env
    recipe = bed.recipe_file.read_text()
    assert lab.keys.oss_access_key_secret not in recipe and "file:" in recipe  # references only
    assert f'"{bed.cai_compose_file}"' in bed.compose_file.read_text()
    assert f"image: {bed.image}" in bed.cai_compose_file.read_text()

    r = bed.compose("config", "--format", "json", timeout=60)
    assert r.rc == 0, r.text
    model = json.loads(r.text)
    assert model["name"] == PROJECT
    assert sorted(model["services"]) == sorted(c.split("-", 2)[2].rsplit("-", 1)[0] for c in CONTAINERS)
    assert all(s["image"] == bed.image for s in model["services"].values())
    inference = model["services"]["inference"]
    assert "deploy" not in inference and inference["environment"]["CAI_LAB_DEVICE"] == "cpu"
    assert "CAI_LAB_ATTESTER" not in model["services"]["attestation-agent"]["environment"]
    assert model["services"]["tng"]["environment"]["RUST_LOG"] == "debug"
    assert model["services"]["oss"]["environment"]["MODEL_KEY_ID"] == "kbs:///default/aliyun/wrong-key"


def test_up_serves_the_decrypted_model_and_down_leaves_nothing(stack_bed: StackBed, lab: Any) -> None:
    got: list[Any] = []
    result = stack_bed.up(timeout=60, on_event=got.append)
    assert {(e.kind, e.source) for e in got} == {("line", "compose")}
    lines = [e.text for e in got]
    assert result.rc == 0, result.text + "".join(f"\n--- {s}\n{stack_bed.logs(s)}" for s in ("oss", "cachefs"))
    assert lines == result.lines and any("Healthy" in line for line in lines)
    assert result.elapsed_s < 45, result.elapsed_s

    states = stack_bed.containers()
    assert sorted(states) == sorted(CONTAINERS)
    for name, st in states.items():
        assert st.state == "running", (name, st)
        if not name.endswith("-inference-1"):
            assert st.health == "healthy", (name, st)

    models = get_models(stack_bed.model_url)
    assert models.status_code == 200, models.text
    assert [m["id"] for m in models.json()["data"]] == [str(stack_bed.mount_point)]
    config = (lab.demo.model_dir / "config.json").read_bytes()
    assert (stack_bed.mount_point / "config.json").read_bytes() == config  # the plaintext, seen from the host
    assert "Uvicorn running on http://127.0.0.1:" in stack_bed.logs("inference")

    stack_bed.down()
    assert_nothing_left(stack_bed)
    stack_bed.down()  # idempotent
    assert_nothing_left(stack_bed)


def test_up_reports_a_failing_service_and_down_cleans_up(stack_bed_factory: StackBedFactory) -> None:
    """A wrong OSS secret in cai.env: oss exits 1, ``up --wait`` fails, and everything is removed afterwards."""
    with stack_bed_factory(env_overrides={"MODEL_OSS_SECRET_ACCESS_KEY": "not-the-lab-secret"}) as bed:
        result = bed.up(timeout=40)
        assert result.rc != 0, result.text
        oss = bed.containers()["cai-docker-oss-1"]
        assert oss.state == "exited" and oss.exit_code != 0, oss
        assert "403" in bed.logs("oss") or "SignatureDoesNotMatch" in bed.logs("oss"), bed.logs("oss")
    assert_nothing_left(bed)
