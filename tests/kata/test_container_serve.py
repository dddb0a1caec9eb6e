"""KATA-5.3/5.4 on the kata lab with the lab's vLLM stand-in image (built FROM the labstack image, saved with docker
save, imported with cai-tui kata image import): the serve command started in the container, /health on the
container's address, the chat question answered by the stand-in; the undos leave containerd as it was."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cai_tui.lab.kata.vllm_image import LAB_MODEL_DIR, LAB_SERVED_NAME, write_vllm_build_context
from tests.kata.test_container_lab import Lab, cli, kata_lab, kata_net, write_recipe  # noqa: F401
from tests.targets.docker_lab import _start_engine, docker


@pytest.fixture(scope="module")
def vllm_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    _start_engine()
    ctx = tmp_path_factory.mktemp("vllm-lab")
    dockerfile = write_vllm_build_context(ctx / "context")
    assert dockerfile == ctx / "context/Dockerfile"
    assert dockerfile.read_text().splitlines()[1].startswith("FROM cai-tui-labstack:")
    tag = f"cai-tui-test/vllm-cvm:{secrets.token_hex(4)}"
    r = subprocess.run(
        ["docker", "build", "-q", "-t", tag, str(ctx / "context")], capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr
    try:
        docker("save", tag, "-o", str(ctx / "vllm.tar.gz"), timeout=300)  # the seed's name; docker writes a tar
        yield ctx / "vllm.tar.gz", f"docker.io/{tag}"
    finally:
        docker("rmi", "-f", tag, check=False)


@pytest.mark.slow
def test_serve_and_ask_in_the_lab_container(
    tmp_path: Path,
    kata_lab: Lab,  # noqa: F811
    vllm_archive: tuple[Path, str],
) -> None:
    space = f"srv{secrets.token_hex(3)}"
    archive, ref = vllm_archive
    recipe = str(
        write_recipe(
            tmp_path / "r.yaml",
            kata_lab,
            space,
            archive,
            ref,
            serve={"model": LAB_MODEL_DIR, "served_name": LAB_SERVED_NAME, "question": "什么是机密容器？"},
        )
    )
    state = tmp_path / "state"
    before = kata_lab.snapshot(space)
    try:
        imp = cli("kata", "image", "import", "--recipe", recipe, state=state, timeout=300)
        assert imp.returncode == 0, imp.stderr
        assert f"{archive} is gzip" not in imp.stderr  # docker save wrote a plain tar whatever the name says
        run = cli("kata", "container", "run", "--recipe", recipe, state=state)
        assert run.returncode == 0, run.stderr
        smi = cli("kata", "container", "smi", "--recipe", recipe, state=state)
        assert smi.returncode == 0 and "guest.nvidia_smi pass: GPU 0: NVIDIA H100 80GB HBM3" in smi.stderr

        base = f"http://{kata_lab.net.address}:8000"
        # a model directory that is not there: vLLM's own error from the log, and the serve fails
        missing = write_recipe(
            tmp_path / "m.yaml", kata_lab, space, archive, ref, serve={"model": "/models/none", "served_name": "x"}
        )
        failed = cli("kata", "container", "serve", "--recipe", str(missing), "--timeout", "60", state=state)
        assert failed.returncode == 1
        assert "ValueError: Invalid repository ID or local directory specified: '/models/none'." in failed.stderr
        assert "the serve command ended before" in failed.stderr
        assert f"[ctr://arch-{space}] Traceback (most recent call last):" in failed.stderr  # vLLM's log, followed
        serve = cli("kata", "container", "serve", "--recipe", recipe, "--timeout", "60", state=state)
        assert serve.returncode == 0, serve.stderr
        assert (
            "task exec --detach --exec-id" in serve.stderr
            and f"--model {LAB_MODEL_DIR} --trust-remote-code --host 0.0.0.0 --port 8000" in serve.stderr
        )
        assert f"waiting for {base}/health" in serve.stderr
        assert "Uvicorn running on http://0.0.0.0:8000" in serve.stderr  # the server's log, followed
        assert serve.stdout == f"vLLM answers {base}/health (served as {LAB_SERVED_NAME})\n"
        again = cli("kata", "container", "serve", "--recipe", recipe, state=state)
        assert again.returncode == 0 and f"vLLM already answers {base}/health; nothing to do" in again.stdout

        ask = cli("kata", "container", "ask", "--recipe", recipe, state=state)
        assert ask.returncode == 0, ask.stderr
        assert f"$ curl {base}/v1/chat/completions" in ask.stderr and '"content": "什么是机密容器？"' in ask.stderr
        answer = "Hello from the cai-tui lab model (Qwen2ForCausalLM, prompt "
        assert ask.stdout.startswith(f"the model answered ({LAB_SERVED_NAME}): {answer}")

        wrong = write_recipe(tmp_path / "w.yaml", kata_lab, space, archive, ref, serve={"served_name": "other"})
        bad = cli("kata", "container", "ask", "--recipe", str(wrong), state=state)
        assert bad.returncode == 1 and "answered HTTP 404 without a chat answer" in bad.stderr
        assert "The model `other` does not exist." in bad.stderr
    finally:
        undo = cli("kata", "container", "undo", "--recipe", recipe, state=state)
        undo_import = cli("kata", "image", "undo-import", "--recipe", recipe, state=state)
    assert undo.returncode == 0 and "killed and deleted the task" in undo.stdout, undo.stderr
    assert undo_import.returncode == 0 and f"removed {ref} from containerd" in undo_import.stdout
    assert kata_lab.snapshot(space) == before
    down = cli("kata", "container", "ask", "--recipe", recipe, state=state)
    assert down.returncode == 1 and "is not running" in down.stderr


@pytest.mark.slow
def test_replay_runs_the_stage_and_its_undo(
    tmp_path: Path,
    kata_lab: Lab,  # noqa: F811
    vllm_archive: tuple[Path, str],
) -> None:
    """The engine runs KATA-5 through these doers (guards, live lines, summaries); replay --undo reverses them."""
    space = f"rpl{secrets.token_hex(3)}"
    archive, ref = vllm_archive
    recipe = str(
        write_recipe(
            tmp_path / "r.yaml",
            kata_lab,
            space,
            archive,
            ref,
            serve={"model": LAB_MODEL_DIR, "served_name": LAB_SERVED_NAME},
        )
    )
    state = tmp_path / "state"
    before = kata_lab.snapshot(space)
    try:
        # the image is there (KATA-2.4's doer) before the container stage runs
        assert cli("kata", "image", "import", "--recipe", recipe, state=state, timeout=300).returncode == 0
        out = cli(
            "replay", recipe, "--yes", "--only", "confidential-container", "--json", str(tmp_path / "s.json"),
            state=state, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
        finished = {}
        for line in out.stdout.splitlines():
            e = json.loads(line)
            if e.get("kind") == "step_finished":
                finished[e["step"].split("/", 1)[1]] = (e["status"], e["text"])
        name = f"arch-{space}"
        assert finished["KATA-5.1/action:container.run"][0] == "applied"
        assert finished["KATA-5.1/action:container.run"][1].startswith(f"the container {name} runs (")
        assert finished["KATA-5.2/check:guest.nvidia_smi"] == (
            "skipped",
            "pass: GPU 0: NVIDIA H100 80GB HBM3 (00000000:00:06.0), driver 580.159.04; note: the recipe's "
            "driver.version is 550.127.08",
        )
        assert finished["KATA-5.3/action:container.serve"][0] == "applied"
        assert finished["KATA-5.3/action:container.serve"][1].startswith("vLLM answers http://")
        status, text = finished["KATA-5.4/action:container.ask"]
        assert (
            status == "skipped" and "the model answered (Qwen1.5-1.8B-Chat): Hello from the cai-tui lab model" in text
        )
        assert '"text":"Uvicorn running on http://0.0.0.0:8000' in out.stdout.replace("INFO:     ", "")  # live lines
        # the undo plan of the stage: the container undo, last item first (serve's, then run's: the second finds
        # nothing left)
        plan = cli("replay", recipe, "--undo", "--plan", "--only", "confidential-container", state=state)
        assert plan.returncode == 0, plan.stderr
        undos = [json.loads(ln) for ln in plan.stdout.splitlines() if ln.startswith("{")]
        assert [(u["item"], u["command"]) for u in undos] == [
            ("undo:container.serve", f"cai-tui kata container undo --recipe {recipe}"),
            ("undo:container.run", f"cai-tui kata container undo --recipe {recipe}"),
        ]
        undo = cli("replay", recipe, "--yes", "--undo", "--only", "confidential-container", state=state, timeout=300)
        assert undo.returncode == 0, undo.stdout[-3000:] + undo.stderr[-2000:]
        done = [json.loads(ln) for ln in undo.stdout.splitlines() if '"step_finished"' in ln]
        assert [(e["step"].rsplit(":", 1)[1], e["status"]) for e in done] == [
            ("container.serve", "applied"),
            ("container.run", "applied"),
        ]
        assert done[0]["text"] == f"{name}: killed and deleted the task, deleted the container and its snapshot"
        assert done[1]["text"] == "nothing to undo: no container started by cai-tui is recorded"
        assert kata_lab.listing(space, "containers") == []
    finally:
        cli("kata", "container", "undo", "--recipe", recipe, state=state)
        cli("kata", "image", "undo-import", "--recipe", recipe, state=state)
    assert kata_lab.snapshot(space) == before
