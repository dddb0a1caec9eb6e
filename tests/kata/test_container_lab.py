"""The kata lab's pieces for KATA-2.4/KATA-5 (a private containerd, a CNI bridge netns, a tiny image with the
nvidia-smi stand-in) as fixtures the container and image-import tests share, and the tests of those pieces.

Everything is real: Debian's containerd/ctr/runc, the bridge and host-local CNI plugins in a network namespace made
here, images built with the local Docker engine from this machine's static busybox (no registry is reachable).
Names carry a random suffix and the subnet is 10.213.X.0/24, so parallel runs do not collide; all is removed after.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cai_tui.lab.kata.containerd import LabContainerd, start_containerd
from cai_tui.lab.kata.vllm_image import CAPTURE_DIR, nvidia_smi_script, write_nvidia_smi_stand_in
from tests.targets.docker_lab import BUSYBOX, _start_engine, docker

CAI_TUI = str(Path(sys.executable).parent / "cai-tui")
CNI_DIR = "/usr/lib/cni"
APPLETS = ("sh", "sleep", "cat", "tail", "echo", "true", "env", "test", "base64", "ls", "head", "printf", "readlink")
TINY_DOCKERFILE = 'FROM scratch\nCOPY rootfs/ /\nCMD ["/bin/sh"]\n'


def need(tool: str, hint: str) -> str:
    path = shutil.which(tool) or (tool if os.access(tool, os.X_OK) else None)
    if path is None:
        pytest.fail(f"{tool} is missing: {hint}")
    return path


@dataclass
class Net:
    netns: str
    bridge: str
    address: str


@dataclass
class Lab:
    ctrd: LabContainerd
    net: Net
    work: Path

    def ctr(self, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "-a", self.ctrd.address, "-n", namespace, *args], capture_output=True, text=True, timeout=60
        )

    def listing(self, namespace: str, *what: str) -> list[str]:
        r = self.ctr(namespace, *what, "ls", "-q")
        assert r.returncode == 0, r.stderr
        return sorted(r.stdout.split())

    def snapshot(self, namespace: str) -> dict[str, list[str]]:
        """What the undo must leave as it was: images, containers, tasks, snapshots."""
        tasks = self.ctr(namespace, "tasks", "ls").stdout.splitlines()[1:]
        snaps = self.ctr(namespace, "snapshots", "ls").stdout.splitlines()[1:]
        return {
            "images": self.listing(namespace, "images"),
            "containers": self.listing(namespace, "containers"),
            "tasks": sorted(ln.split()[0] for ln in tasks if ln.strip()),
            "snapshots": sorted(ln.split()[0] for ln in snaps if ln.strip()),
        }


def cni(command: str, conf: dict[str, Any], netns: str, cid: str) -> subprocess.CompletedProcess[str]:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": f"/var/run/netns/{netns}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": CNI_DIR,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    return subprocess.run(
        [f"{CNI_DIR}/bridge"], input=json.dumps(conf), env=env, capture_output=True, text=True, timeout=30
    )


@pytest.fixture(scope="session")
def kata_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    """A netns with eth0 on a bridge of its own (Debian's bridge + host-local plugins), the host the gateway."""
    need("ip", "apt-get install -y iproute2")
    if not os.access(f"{CNI_DIR}/bridge", os.X_OK):
        pytest.fail(f"{CNI_DIR}/bridge is missing: apt-get install -y containernetworking-plugins")
    tag = secrets.token_hex(3)
    netns, bridge = f"cai-k5-{tag}", f"caik5{tag}"
    subnet = f"10.213.{100 + secrets.randbelow(150)}.0/24"
    conf = {
        "cniVersion": "0.4.0",
        "name": f"cai-k5-{tag}",
        "type": "bridge",
        "bridge": bridge,
        "isGateway": True,
        "ipMasq": False,
        "ipam": {"type": "host-local", "subnet": subnet, "dataDir": str(tmp_path_factory.mktemp("ipam"))},
    }
    subprocess.run(["ip", "netns", "add", netns], check=True, timeout=10)
    try:
        r = cni("ADD", conf, netns, tag)
        assert r.returncode == 0, f"CNI bridge ADD failed: {r.stdout} {r.stderr}"
        address = json.loads(r.stdout)["ips"][0]["address"].split("/")[0]
        yield Net(netns, bridge, address)
    finally:
        cni("DEL", conf, netns, tag)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=10)


@pytest.fixture(scope="session")
def kata_lab(kata_net: Net) -> Iterator[Lab]:
    need("/usr/bin/containerd", "apt-get install -y containerd")
    need("runc", "apt-get install -y runc")
    work = Path(f"/tmp/cai-k5-{secrets.token_hex(3)}")
    ctrd = start_containerd(work / "ctrd")
    try:
        yield Lab(ctrd, kata_net, work)
    finally:
        ctrd.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(docker save archive, the ref containerd gives it): busybox and the nvidia-smi stand-in, FROM scratch."""
    _start_engine()  # not ensure_engine: its clean-up of compose leftovers is for the compose tests
    if not os.path.exists(BUSYBOX):
        pytest.fail(f"{BUSYBOX} is missing: apt-get install -y busybox-static")
    ctx = tmp_path_factory.mktemp("tiny-image")
    rootfs = ctx / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "tmp").mkdir()
    shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
    for applet in APPLETS:
        os.symlink("busybox", rootfs / "bin" / applet)
    write_nvidia_smi_stand_in(rootfs)
    (ctx / "Dockerfile").write_text(TINY_DOCKERFILE)
    tag = f"cai-tui-test/kata-tiny:{secrets.token_hex(4)}"
    r = subprocess.run(
        ["docker", "build", "-q", "-t", tag, str(ctx)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    assert r.returncode == 0, f"docker build failed: {r.stderr}"
    archive = ctx / "tiny.tar"
    try:
        docker("save", tag, "-o", str(archive))
        yield archive, f"docker.io/{tag}"
    finally:
        docker("rmi", "-f", tag, check=False)


def write_recipe(path: Path, lab: Lab, namespace: str, archive: Path, ref: str, **answers: Any) -> Path:
    """A kata lab recipe for the KATA-2.4/5 steps (what the lead's lab recipe needs, per step)."""
    doc: dict[str, Any] = {
        "schema_version": 1,
        "flow": "kata-virtcca",
        "name": "kata-lab-container",
        "answers": {
            "image": {"archive": str(archive), "containerd_ref": ref},
            "kata": {"runtime": "io.containerd.runc.v2"},
            "gpu": {"iommu_group": 81, "sysroot": str(lab.work / "sysroot")},
            "cni": {"netns": lab.net.netns},
            "container": {"name": f"arch-{namespace}", "address": lab.ctrd.address, "namespace": namespace},
            "serve": {"model": "/models/Qwen1.5-1.8B-Chat", "served_name": "Qwen1.5-1.8B-Chat", "port": 8000},
        },
        "targets": {"host": "local", "guest": f"ctr://{namespace}/arch-{namespace}?address={lab.ctrd.address}"},
    }
    for section, values in answers.items():
        doc["answers"].setdefault(section, {}).update(values)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2))  # JSON is YAML
    return path


def cli(*args: str, state: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CAI_TUI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "CAI_TUI_STATE_DIR": str(state), "NO_COLOR": "1"},
    )


# --------------------------------------------------------------------------------------------- the pieces' tests


def test_private_containerd_is_not_the_system_one(kata_lab: Lab) -> None:
    address = kata_lab.ctrd.address
    assert address == str(kata_lab.work / "ctrd/containerd.sock") and os.path.exists(address)
    config = (kata_lab.work / "ctrd/config.toml").read_text()
    assert 'disabled_plugins = ["io.containerd.grpc.v1.cri"]' in config
    assert f'root = "{kata_lab.work}/ctrd/root"' in config and f'state = "{kata_lab.work}/ctrd/state"' in config
    plugins = subprocess.run(["ctr", "-a", address, "plugins", "ls"], capture_output=True, text=True, timeout=30)
    assert plugins.returncode == 0 and "io.containerd.grpc.v1" in plugins.stdout
    assert "io.containerd.grpc.v1.cri" not in plugins.stdout.replace("  ", " ")  # not loaded at all
    assert "runtime.v2" in plugins.stdout


def test_start_and_stop_leave_no_process(tmp_path: Path) -> None:
    work = Path(f"/tmp/cai-k5s-{secrets.token_hex(3)}")
    try:
        c = start_containerd(work)
        pid = c.proc.pid if c.proc else 0
        assert pid and os.path.exists(f"/proc/{pid}")
        c.stop()
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in Path(f"/proc/{pid}/status").read_text()
        c.stop()  # twice is fine
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry))
    return found


def test_stop_ends_the_tasks_it_still_has(tiny_archive: tuple[Path, str]) -> None:
    """A task left running when the lab stops: its shim and process end too, and no mount stays under the dir."""
    work = Path(f"/tmp/cai-k5t-{secrets.token_hex(3)}")
    try:
        c = start_containerd(work)
        ns = f"left{secrets.token_hex(3)}"
        ctr = ["ctr", "-a", c.address, "-n", ns]
        assert subprocess.run([*ctr, "images", "import", str(tiny_archive[0])], capture_output=True).returncode == 0
        r = subprocess.run(
            [*ctr, "run", "-d", tiny_archive[1], "left1", "sleep", "600"], capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        assert _processes_naming(c.address)  # containerd and the task's shim name the socket
        c.stop()
        assert _processes_naming(c.address) == []
        assert str(work) not in Path("/proc/self/mounts").read_text()
        assert not os.path.exists(f"/run/containerd/runc/{ns}")  # runc's folder of the namespace, emptied and removed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_nvidia_smi_stand_in_prints_the_real_capture(tmp_path: Path) -> None:
    script = write_nvidia_smi_stand_in(tmp_path)
    assert script.stat().st_mode & 0o777 == 0o755
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n") and "--format=csv,noheader,nounits') cat" in text
    captured = (tmp_path / "usr/share/cai-tui-lab/nvidia-smi/h100-vm-2026-11-22/nvidia-smi-query-csv.txt").read_text()
    assert captured == "0, NVIDIA H100 80GB HBM3, 00000000:00:06.0, 580.159.04, 81559\n"
    assert nvidia_smi_script({"-L": ("nvidia-smi-L.txt", 0)}).count(") cat") == 1
    assert (CAPTURE_DIR / "SOURCE.md").is_file()


def test_lab_answers_for_the_lead_recipe(tmp_path: Path, kata_lab: Lab) -> None:
    from cai_tui.lab.kata.containerd import lab_container_answers, lab_guest_target
    from cai_tui.lab.kata.vllm_image import containerd_ref, lab_image_answers
    from cai_tui.recipe.kata import KataAnswers

    image = lab_image_answers(tmp_path, tag="cai-tui-test/vllm-cvm:x", base="cai-tui-labstack:0123456789ab")
    context = tmp_path / "vllm-build"
    assert image["image"] == {
        "build_dir": str(context),
        "dockerfile": str(context / "Dockerfile"),
        "tag": "cai-tui-test/vllm-cvm:x",
        "target": "vllm-base",
        "archive": str(tmp_path / "vllm.tar.gz"),
        "containerd_ref": "docker.io/cai-tui-test/vllm-cvm:x",
    }
    lines = (context / "Dockerfile").read_text().splitlines()
    assert lines[1:4] == ["FROM cai-tui-labstack:0123456789ab AS vllm-base", "COPY rootfs/ /", "ENV CAI_LAB_DEVICE=cpu"]
    assert (context / "rootfs/models/Qwen1.5-1.8B-Chat/config.json").is_file()
    assert (context / "rootfs/usr/bin/nvidia-smi").stat().st_mode & 0o111
    shim = next(context.glob("rootfs/usr/local/lib/python3.*/dist-packages/vllm/entrypoints/openai/api_server.py"))
    assert "inference.LOOPBACK = args.host" in shim.read_text()
    container = lab_container_answers(kata_lab.ctrd, namespace="lab", name="arch")
    assert container == {
        "kata": {"runtime": "io.containerd.runc.v2"},
        "container": {"address": kata_lab.ctrd.address, "namespace": "lab", "name": "arch"},
    }
    assert lab_guest_target(kata_lab.ctrd, namespace="lab") == f"ctr://lab/arch?address={kata_lab.ctrd.address}"
    KataAnswers.model_validate({**image, **container})  # the recipe model takes them as they are
    assert containerd_ref("vllm-cvm:latest") == "docker.io/library/vllm-cvm:latest"
    assert containerd_ref("reg.example:5000/v:1") == "reg.example:5000/v:1"


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("ctr://arch", True),
        ("ctr://default/arch", True),
        ("ctr://cai-kata-lab/arch?address=/tmp/x/containerd.sock", True),
        ("ctr://a/b/c", False),
        ("ctr://default/arch?address=run/containerd.sock", False),
        ("ctr://default/arch?addr=/run/containerd.sock", False),
    ],
)
def test_recipe_guest_target_takes_namespace_and_address(uri: str, ok: bool) -> None:
    from pydantic import ValidationError

    from cai_tui.recipe.model import KataRecipe
    from cai_tui.targets.container import split_ctr_uri

    doc = {"flow": "kata-virtcca", "name": "t", "answers": {}, "targets": {"host": "local", "guest": uri}}
    if ok:
        assert KataRecipe.model_validate(doc).targets.guest == uri
        split_ctr_uri(uri)  # and the target parser reads it
    else:
        with pytest.raises(ValidationError, match=r"ctr://\[NAMESPACE/\]TASK\[\?address=SOCKET\]"):
            KataRecipe.model_validate(doc)
