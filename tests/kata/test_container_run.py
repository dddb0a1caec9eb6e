"""KATA-5.1/5.2 and the undo: ``cai-tui kata container run|smi|undo`` on the kata lab — the private containerd, runc
for the kata runtime, a netns attached with Debian's bridge plugin, the tiny image's nvidia-smi stand-in read by the
doctor's guest.nvidia_smi — and the plans of container.run/serve/ask."""

from __future__ import annotations

import json
import secrets
import shlex
from pathlib import Path
from typing import Any

import pytest

from cai_tui.actions import registry
from cai_tui.kata.container import KEEPALIVE, run_argv
from cai_tui.kata.container_ctr import KataRunError
from cai_tui.recipe import load_recipe
from tests.kata.test_container_lab import Lab, cli, kata_lab, kata_net, tiny_archive, write_recipe  # noqa: F401


def imported(tmp_path: Path, lab: Lab, archive: tuple[Path, str], **answers: object) -> tuple[str, str, Path]:
    """(recipe, namespace, state dir) with the tiny image imported into a namespace of its own."""
    space = f"run{secrets.token_hex(3)}"
    recipe = str(write_recipe(tmp_path / "r.yaml", lab, space, archive[0], archive[1], **answers))  # type: ignore[arg-type]
    state = tmp_path / "state"
    out = cli("kata", "image", "import", "--recipe", recipe, state=state)
    assert out.returncode == 0, out.stderr
    return recipe, space, state


def test_run_smi_undo_on_the_lab(tmp_path: Path, kata_lab: Lab, tiny_archive: tuple[Path, str]) -> None:  # noqa: F811
    recipe, space, state = imported(tmp_path, kata_lab, tiny_archive)
    name = f"arch-{space}"
    before = kata_lab.snapshot(space)
    assert before["containers"] == [] and before["tasks"] == []

    out = cli("kata", "container", "run", "--recipe", recipe, state=state)
    assert out.returncode == 0, out.stderr
    # the lab's one difference, said where it happens; the ctr line as it ran
    assert "kata lab: --device /dev/vfio/81 is left off the ctr run line: runc" in out.stderr
    line = (
        f"$ ctr -a {kata_lab.ctrd.address} -n {space} --debug run --runtime io.containerd.runc.v2 "
        f"--with-ns=network:/var/run/netns/{kata_lab.net.netns} -d {tiny_archive[1]} {name} /bin/sh -c "
        + shlex.quote(KEEPALIVE)
    )
    assert line in out.stderr
    assert f"{name}: RUNNING (ctr task ls)" in out.stderr
    assert out.stdout.startswith(f"the container {name} runs (ctr -a {kata_lab.ctrd.address} -n {space} --debug run")
    tasks = kata_lab.ctr(space, "tasks", "ls").stdout
    assert f"{name} " in tasks and "RUNNING" in tasks
    assert json.loads((state / "kata-container.json").read_text()) == {
        "address": kata_lab.ctrd.address,
        "name": name,
        "namespace": space,
    }
    # the container is in the recipe's netns: its eth0 is the address the CNI plugin gave
    ip = kata_lab.ctr(space, "tasks", "exec", "--exec-id", "ip", name, "cat", "/proc/net/fib_trie")
    assert kata_lab.net.address in ip.stdout

    again = cli("kata", "container", "run", "--recipe", recipe, state=state)
    assert again.returncode == 0 and f"the container {name} is already running" in again.stdout

    smi = cli("kata", "container", "smi", "--recipe", recipe, state=state)
    assert smi.returncode == 0, smi.stderr
    assert "| NVIDIA-SMI 580.159.04             Driver Version: 580.159.04     CUDA Version: 13.0     |" in smi.stderr
    assert (
        "guest.nvidia_smi pass: GPU 0: NVIDIA H100 80GB HBM3 (00000000:00:06.0), driver 580.159.04; note: the "
        "recipe's driver.version is 550.127.08" in smi.stderr
    )

    # the tiny image has no python3: serve starts the command, follows its log and says it ended
    serve = cli("kata", "container", "serve", "--recipe", recipe, "--timeout", "30", state=state)
    assert serve.returncode == 1
    assert f"waiting for http://{kata_lab.net.address}:8000/health" in serve.stderr
    assert f"[ctr://{name}] sh: python3: not found" in serve.stderr
    assert "the serve command ended before" in serve.stderr and "/tmp/cai-tui-vllm-serve.log" in serve.stderr

    undo = cli("kata", "container", "undo", "--recipe", recipe, state=state)
    assert undo.returncode == 0, undo.stderr
    assert f"{name}: killed and deleted the task, deleted the container and its snapshot" in undo.stdout
    assert kata_lab.snapshot(space) == before
    assert not (state / "kata-container.json").exists()
    twice = cli("kata", "container", "undo", "--recipe", recipe, state=state)
    assert twice.returncode == 0 and "nothing to undo: no container started by cai-tui is recorded" in twice.stdout
    # after the task is gone, smi says to start it
    gone = cli("kata", "container", "smi", "--recipe", recipe, state=state)
    assert gone.returncode == 1 and f"the container {name} is not running (ctr task ls: no task)" in gone.stderr
    assert cli("kata", "image", "undo-import", "--recipe", recipe, state=state).returncode == 0


def test_run_refuses_without_the_image_or_the_netns(tmp_path: Path, kata_lab: Lab) -> None:  # noqa: F811
    space = f"run{secrets.token_hex(3)}"
    ref = "docker.io/library/vllm-cvm:latest"
    recipe = str(write_recipe(tmp_path / "r.yaml", kata_lab, space, tmp_path / "x.tar", ref))
    out = cli("kata", "container", "run", "--recipe", recipe, state=tmp_path / "s")
    assert out.returncode == 1
    assert f"{ref} is not in containerd ({kata_lab.ctrd.address}, namespace {space}): import it first" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "s/kata-container.json").exists()
    missing = str(write_recipe(tmp_path / "m.yaml", kata_lab, space, tmp_path / "x.tar", ref, cni={"netns": "nx0"}))
    out = cli("kata", "container", "run", "--recipe", missing, state=tmp_path / "s")
    assert out.returncode == 1 and "is not in containerd" in out.stderr  # the image is checked first
    down = str(
        write_recipe(
            tmp_path / "d.yaml", kata_lab, space, tmp_path / "x.tar", ref, container={"address": "/tmp/nothing.sock"}
        )
    )
    out = cli("kata", "container", "run", "--recipe", down, state=tmp_path / "s")
    assert out.returncode == 1 and "containerd does not answer on /tmp/nothing.sock" in out.stderr


def test_run_in_a_missing_netns_is_refused(tmp_path: Path, kata_lab: Lab, tiny_archive: tuple[Path, str]) -> None:  # noqa: F811
    recipe, space, state = imported(tmp_path, kata_lab, tiny_archive, cni={"netns": f"nx{secrets.token_hex(3)}"})
    out = cli("kata", "container", "run", "--recipe", recipe, state=state)
    assert out.returncode == 1
    assert "does not exist: create and attach the network first" in out.stderr
    assert kata_lab.listing(space, "containers") == []
    assert cli("kata", "image", "undo-import", "--recipe", recipe, state=state).returncode == 0


def test_the_real_host_line_has_the_vfio_device(tmp_path: Path, kata_lab: Lab) -> None:  # noqa: F811
    recipe = write_recipe(tmp_path / "r.yaml", kata_lab, "ns1", tmp_path / "x.tar", "docker.io/library/vllm-cvm:latest")
    loaded = load_recipe(recipe)
    answers: Any = loaded.recipe.answers
    answers.gpu.sysroot = None
    answers.kata.runtime = "io.containerd.kata.v2"
    argv, notes = run_argv(answers)
    assert argv[argv.index("--runtime") + 1] == "io.containerd.kata.v2"
    assert argv[argv.index("--device") + 1] == "/dev/vfio/81"
    assert not any("kata lab" in n for n in notes)
    answers.gpu.iommu_group = None
    with pytest.raises(KataRunError) as e:
        run_argv(answers)
    assert e.value.rc == 2 and "answers.gpu.iommu_group is not set" in str(e.value)


def test_plans_of_run_serve_ask(tmp_path: Path, kata_lab: Lab) -> None:  # noqa: F811
    recipe = write_recipe(tmp_path / "r.yaml", kata_lab, "ns1", tmp_path / "x.tar", "docker.io/library/vllm-cvm:latest")
    loaded = load_recipe(recipe)
    plans = {i: registry.get(i).plan(loaded) for i in ("container.run", "container.serve", "container.ask")}  # type: ignore[union-attr]
    (run,) = plans["container.run"]
    assert run.argv == ["cai-tui", "kata", "container", "run", "--recipe", str(recipe)]
    assert run.undo == ("cai-tui", "kata", "container", "undo", "--recipe", str(recipe))
    assert run.where == "host" and run.changes.startswith("creates the container arch-ns1")
    assert any(n.startswith("kata lab: --device /dev/vfio/81 is left off") for n in run.notes)
    assert any(n.startswith(f"runs: ctr -a {kata_lab.ctrd.address} -n ns1 --debug run") for n in run.notes)
    (serve,) = plans["container.serve"]
    assert serve.argv[:4] == ["cai-tui", "kata", "container", "serve"] and serve.undo == run.undo
    assert (
        "runs in the container (ctr task exec --detach): VLLM_USE_MODELSCOPE=True python3 -m "
        "vllm.entrypoints.openai.api_server --model /models/Qwen1.5-1.8B-Chat --trust-remote-code --host 0.0.0.0 "
        "--port 8000 --served-model-name Qwen1.5-1.8B-Chat --gpu-memory-utilization 0.95" in serve.notes
    )
    (ask,) = plans["container.ask"]
    assert ask.changes.startswith("nothing:") and ask.undo == ()
    out = cli("kata", "container", "serve", "--recipe", str(recipe), "--plan", state=tmp_path / "s")
    assert out.returncode == 0 and f"cai-tui kata container serve --recipe {recipe}\n" in out.stdout
    assert not (tmp_path / "s").exists()
