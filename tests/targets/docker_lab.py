"""The local Docker engine for tests: started when it is not running, a busybox image built from this machine's
static busybox (no registry needed), and containerd's socket as dockerd uses it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

IMAGE = "cai-tui-test/busybox:latest"
OUR_IMAGES = ("cai-tui-test/", "cai-tui-labstack:")  # the images the tests build (this busybox one, the labstack's)
BUSYBOX = "/bin/busybox"
APPLETS = [
    "sh",
    "cat",
    "echo",
    "sleep",
    "ls",
    "mv",
    "rm",
    "chmod",
    "stat",
    "env",
    "head",
    "base64",
    "readlink",
    "kill",
    "wc",
    "printf",
    "true",
    "false",
    "mkdir",
    "test",
    "id",
]
CONTAINERD_SOCKETS = ("/run/containerd/containerd.sock", "/var/run/docker/containerd/containerd.sock")


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


_cleared = False


def ensure_engine() -> None:
    """``docker info`` works, or dockerd is started in the background (and left running) until it does; the first
    call in a test process also removes what an interrupted earlier run left of compose project cai-docker."""
    global _cleared
    _start_engine()
    if not _cleared:
        clear_cai_docker_leftovers()
        _cleared = True


def clear_cai_docker_leftovers() -> list[str]:
    """Remove the containers of compose project ``cai-docker`` that earlier test runs made and, when none of the
    project is left, its networks. A run cut short (a killed CI job, a restarted machine) leaves them behind, and
    only one cai-docker project can exist at a time. Returns the ids removed."""
    label = "label=com.docker.compose.project=cai-docker"
    removed, kept = remove_test_containers(label)
    if not kept:
        nets = docker("network", "ls", "-q", "--filter", label).stdout.split()
        if nets:
            docker("network", "rm", *nets, check=False)
    return removed


def remove_test_containers(docker_filter: str) -> tuple[list[str], list[str]]:
    """Remove the containers matching ``docker_filter`` (``docker ps --filter``) whose image is one the tests build
    (the busybox test image, the labstack image); containers of any other image — a real CAI stack on a developer's
    machine — are left alone. Returns (ids removed, names of those kept)."""
    ids = docker("ps", "-aq", "--filter", docker_filter).stdout.split()
    if not ids:
        return [], []
    rows = docker("inspect", "-f", "{{.Id}} {{.Name}} {{.Config.Image}}", *ids, check=False).stdout.splitlines()
    ours: list[str] = []
    kept: list[str] = []
    for cid, name, image in (r.split(" ", 2) for r in rows if r.count(" ") >= 2):
        if image.startswith(OUR_IMAGES):
            ours.append(cid)
        else:
            kept.append(name.lstrip("/"))
    if ours:
        docker("rm", "-f", "-v", *ours)
        print(f"removed {len(ours)} container(s) ({docker_filter}) left by an earlier test run")
    return ours, kept


def _start_engine() -> None:
    if shutil.which("docker") is None:
        pytest.fail("the docker CLI is missing: install docker.io (apt-get install -y docker.io containerd)")
    if docker("info", check=False, timeout=30).returncode == 0:
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        pytest.fail("dockerd is missing: install docker.io (apt-get install -y docker.io containerd)")
    if os.geteuid() != 0:
        pytest.fail("the Docker engine is not running and only root can start dockerd here; start it (or run as root)")
    log = Path(tempfile.gettempdir()) / "cai-tui-test-dockerd.log"
    with open(log, "ab") as f:
        subprocess.Popen([dockerd], stdin=subprocess.DEVNULL, stdout=f, stderr=f, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if os.path.exists("/var/run/docker.sock") and docker("info", check=False, timeout=30).returncode == 0:
            return
        time.sleep(0.5)
    pytest.fail(f"dockerd did not come up within 60 s; its log: {log}\n{log.read_text(errors='replace')[-3000:]}")


def ensure_image(workdir: Path) -> str:
    """The test image: a rootfs of static busybox and its applet links, imported (no registry is reachable)."""
    if docker("image", "inspect", IMAGE, check=False).returncode == 0:
        return IMAGE
    if not os.path.exists(BUSYBOX):
        pytest.fail(f"{BUSYBOX} is missing: install busybox-static (apt-get install -y busybox-static)")
    root = workdir / "rootfs"
    for d in ("bin", "tmp", "etc", "work"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    for applet in APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc/os-release").write_text('ID="cai-tui-test"\n')
    archive = workdir / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(root, arcname=".")
    docker("import", str(archive), IMAGE)
    probe = docker("run", "--rm", IMAGE, "/bin/sh", "-c", "echo ok", check=False)
    if probe.stdout.strip() != "ok":
        docker("rmi", IMAGE, check=False)
        pytest.fail(
            f"the busybox image does not run ({probe.stderr.strip()}); {BUSYBOX} must be the static build: "
            "apt-get install -y busybox-static"
        )
    return IMAGE


def find_containerd_socket(container_id: str) -> str:
    """The containerd socket whose ``moby`` namespace holds ``container_id`` (dockerd's own containerd)."""
    if shutil.which("ctr") is None:
        pytest.fail("ctr is missing: install containerd (apt-get install -y containerd)")
    tried = []
    for sock in CONTAINERD_SOCKETS:
        if not os.path.exists(sock):
            tried.append(f"{sock}: absent")
            continue
        r = subprocess.run(["ctr", "--address", sock, "-n", "moby", "task", "ls"], capture_output=True, text=True)
        if container_id in r.stdout:
            return sock
        tried.append(f"{sock}: {r.stderr.strip() or 'no such task in namespace moby'}")
    pytest.fail("ctr cannot reach the containerd that dockerd uses: " + "; ".join(tried))
