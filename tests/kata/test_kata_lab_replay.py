"""The whole kata-virtcca flow on the kata lab, through ``cai-tui replay`` as a user runs it (issue 13's "done when").

``cai-tui lab kata DIR`` starts the lab (a real process, as a user starts it); ``replay --plan`` lists every KATA-*
step of the procedure map; ``replay --yes`` reaches the chat answer through the runc stand-in; a second run changes less
(what is done is skipped); ``replay --undo --only cni-network`` takes back that stage alone; ``replay --undo --yes``
leaves the host as it was: the fake sysfs tree, the netns list, the mounts, the kata configuration, the rootfs image,
and containerd's containers and images.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cai_tui.stages.coverage import load_procedure_map
from tests.helpers import SHARED

pytestmark = pytest.mark.slow


def _cli() -> list[str]:
    beside = Path(sys.executable).with_name("cai-tui")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "cai_tui.cli.main"]


class Lab:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        env = {k: v for k, v in os.environ.items() if k != "CAI_TUI_EVENTS"}
        self.proc = subprocess.Popen(
            [*_cli(), "lab", "kata", str(directory)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(30)
            raise AssertionError(
                f"cai-tui lab kata did not start: {self.proc.stderr.read() if self.proc.stderr else ''}"
            )
        ready = json.loads(line)
        self.recipe = Path(ready["recipe"])
        self.env = {**env, **ready["env"]}
        self.recipe_doc = json.loads(self.recipe.read_text())

    def replay(self, *args: str, timeout: float = 600) -> tuple[int, list[dict[str, Any]], str]:
        out = self.dir / f"replay-{time.monotonic_ns()}.json"
        r = subprocess.run(
            [*_cli(), "replay", str(self.recipe), *args, "--json", str(out)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )
        items = json.loads(out.read_text())["items"] if out.exists() else []
        return r.returncode, items, r.stdout + r.stderr

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    assert os.geteuid() == 0, "the kata lab needs root (mounts, network namespaces, containerd)"
    lab = Lab(tmp_path / "kl")
    try:
        yield lab
    finally:
        err = lab.stop()
        assert lab.proc.returncode == 0, err


def _ctr(lab: Lab, *args: str) -> list[str]:
    c = lab.recipe_doc["answers"]["container"]
    r = subprocess.run(["ctr", "-a", c["address"], "-n", c["namespace"], *args, "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return sorted(r.stdout.split())


def _host_state(lab: Lab) -> dict[str, Any]:
    from cai_tui.lab.kata.sysfs import FakeSysfs

    answers = lab.recipe_doc["answers"]
    root = Path(answers["gpu"]["sysroot"])
    drivers = {}
    for dev in sorted((root / "sys/bus/pci/devices").iterdir()):
        link = dev / "driver"
        drivers[dev.name] = (
            os.path.basename(os.readlink(link)) if link.is_symlink() else None,
            (dev / "driver_override").read_text().strip(),
        )
    vfio = sorted(p.name for p in (root / "dev/vfio").iterdir()) if (root / "dev/vfio").exists() else []
    image = Path(answers["rootfs"]["image"])
    mounts = [ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines() if str(lab.dir) in ln.split()[1]]
    assert FakeSysfs  # the tree is read without its pipes (they would block)
    return {
        "drivers": drivers,
        "dev_vfio": vfio,
        "netns": sorted(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")),
        "mounts": mounts,
        "kata_config": hashlib.sha256(Path(answers["kata"]["config_path"]).read_bytes()).hexdigest(),
        "kata_config_bak": Path(answers["kata"]["config_path"] + ".bak").exists(),
        "image": hashlib.sha256(image.read_bytes()).hexdigest(),
        "image_bak": image.with_name(image.name + ".bak").exists(),
        "containers": _ctr(lab, "containers", "ls"),
        "images": _ctr(lab, "images", "ls"),
        "cni_conf": sorted(p.name for p in Path(answers["cni"]["conf_dir"]).iterdir()),
    }


def _kata_steps() -> set[str]:
    steps = load_procedure_map(SHARED / "reference" / "procedure-map.md")
    return {s.id for s in steps if s.id.startswith("KATA-")}


def test_the_kata_flow_replays_on_the_kata_lab_and_undo_leaves_the_host_as_it_was(lab: Lab) -> None:
    before = _host_state(lab)
    assert before["drivers"]["0000:01:00.0"][0] == "nvidia" and before["containers"] == []

    # --plan: every documented KATA step, each changing doer with its undo; nothing changes.
    code, planned, out = lab.replay("--plan")
    assert code == 0, out
    covered = {i["covers"] for i in planned}
    kata = _kata_steps()
    assert len(kata) == 24, sorted(kata)
    missing = kata - covered
    assert not missing, f"steps the plan does not list: {sorted(missing)}"
    actions = {i["item"] for i in planned if i["kind"] in ("action", "manual") and "." in i["item"]}
    assert {
        "rootfs.grow",
        "kata.set_hook_path",
        "gpu.bind_vfio",
        "cni.attach",
        "container.run",
        "container.ask",
    } <= actions
    assert _host_state(lab) == before

    # apply: the chat answer through the runc stand-in, every guard passing.
    code, items, out = lab.replay("--yes")
    assert code == 0, out
    status = {i["item"]: i for i in items}
    assert (
        status["container.ask"]["status"] == "skipped"
        and "Hello from the cai-tui lab model" in status["container.ask"]["detail"]
    )
    for name in ("rootfs.grow", "kata.set_hook_path", "gpu.bind_vfio", "cni.attach", "container.run", "image.import"):
        assert status[name]["status"] == "applied", status[name]
    assert status["rootfs.install_tools"]["kind"] == "manual"  # dnf against openEuler's repositories: by hand
    for check in ("guest.nvidia_smi", "container.running", "guest.inference", "gpu.vfio_bound", "cni.network"):
        assert status[check]["detail"].startswith("pass"), status[check]
    assert "serves Qwen1.5-1.8B-Chat" in status["guest.inference"]["detail"]
    assert not [i for i in items if i["status"] == "failed"]
    after = _host_state(lab)
    assert after["drivers"]["0000:01:00.0"][0] == "vfio-pci" and "81" in after["dev_vfio"]
    assert after["containers"] == ["arch"] and after["kata_config"] != before["kata_config"]

    # a second run: what is done is skipped
    code, again, out = lab.replay("--yes")
    assert code == 0, out
    second = {i["item"]: i["status"] for i in again}
    for name in (
        "rootfs.grow",
        "kata.set_hook_path",
        "gpu.bind_vfio",
        "cni.attach",
        "container.run",
        "container.serve",
    ):
        assert second[name] == "skipped", (name, second[name])

    # undo one stage: only the network goes
    netns = lab.recipe_doc["answers"]["cni"]["netns"]
    code, undone, out = lab.replay("--undo", "--only", "cni-network", "--yes")
    assert code == 0, out
    assert [i["item"] for i in undone] == ["undo:cni.attach", "undo:cni.create_netns", "undo:cni.write_conf"]
    state = _host_state(lab)
    assert netns not in " ".join(state["netns"]) and state["containers"] == ["arch"]

    # undo everything: the host as it was
    code, undone, out = lab.replay("--undo", "--yes")
    assert code == 0, out
    assert undone[0]["item"].startswith("undo:container.") and undone[-1]["item"] == "undo:rootfs.grow"
    assert _host_state(lab) == before
