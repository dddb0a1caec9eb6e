"""KATA-5.3/5.4 on the kata lab with the lab's vLLM stand-in image (built FROM the labstack image, saved with docker
save, imported with cai-tui kata image import): the serve command started in the container, /health on the
container's address, the chat question answered by the stand-in; the undos leave containerd as it was."""

from __future__ import annotations

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
        serve = cli("kata", "container", "serve", "--recipe", recipe, "--timeout", "60", state=state)
        assert serve.returncode == 0, serve.stderr
        assert (
            "task exec --detach --exec-id" in serve.stderr
            and f"--model {LAB_MODEL_DIR} --trust-remote-code --host 0.0.0.0 --port 8000" in serve.stderr
        )
        assert f"waiting for {base}/health" in serve.stderr
        assert "Uvicorn running on http://0.0.0.0:8000" in serve.stderr  # the server's log, followed
        assert f"vLLM answers {base}/health (served as {LAB_SERVED_NAME})" in serve.stderr
        again = cli("kata", "container", "serve", "--recipe", recipe, state=state)
        assert again.returncode == 0 and f"vLLM already answers {base}/health; nothing to do" in again.stderr

        ask = cli("kata", "container", "ask", "--recipe", recipe, state=state)
        assert ask.returncode == 0, ask.stderr
        assert f"$ curl {base}/v1/chat/completions" in ask.stderr and '"content": "什么是机密容器？"' in ask.stderr
        answer = "Hello from the cai-tui lab model (Qwen2ForCausalLM, prompt "
        assert f"the model answered ({LAB_SERVED_NAME}): {answer}" in ask.stderr

        wrong = write_recipe(tmp_path / "w.yaml", kata_lab, space, archive, ref, serve={"served_name": "other"})
        bad = cli("kata", "container", "ask", "--recipe", str(wrong), state=state)
        assert bad.returncode == 1 and "answered HTTP 404 without a chat answer" in bad.stderr
        assert "The model `other` does not exist." in bad.stderr
    finally:
        undo = cli("kata", "container", "undo", "--recipe", recipe, state=state)
        undo_import = cli("kata", "image", "undo-import", "--recipe", recipe, state=state)
    assert undo.returncode == 0 and "killed and deleted the task" in undo.stderr, undo.stderr
    assert undo_import.returncode == 0 and f"removed {ref} from containerd" in undo_import.stderr
    assert kata_lab.snapshot(space) == before
    down = cli("kata", "container", "ask", "--recipe", recipe, state=state)
    assert down.returncode == 1 and "is not running" in down.stderr
