"""guest.nvidia_smi through a real ``ctr task exec`` into containers of the local Docker engine (its containerd).

The images are built here ``FROM scratch`` with this machine's static busybox (no registry is reachable). In the "guest"
image an executable ``nvidia-smi`` script replays the real H100 capture (tests/fixtures/captures/h100-vm-2026-11-22):
it stands in for the driver tools the OCI hook brings into a kata guest. The "nvml" image's nvidia-smi fails the way a
driver/library mismatch does; the "bare" image has no nvidia-smi at all (the hook did not run).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cai_tui.checks.base import CheckContext
from cai_tui.checks.registry import all_checks
from cai_tui.checks.runner import CheckOutcome, run_checks
from cai_tui.recipe.model import KataRecipe
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.container import CtrTarget
from tests.targets.docker_lab import BUSYBOX, docker, ensure_engine, find_containerd_socket

from .checklib import expect

CAPTURE = Path(__file__).resolve().parents[1] / "fixtures/captures/h100-vm-2026-11-22"
REPLAYED = ("nvidia-smi.txt", "nvidia-smi-L.txt", "nvidia-smi-query-csv.txt", "nvidia-smi-q.txt")
APPLETS = ("sh", "cat", "echo", "sleep", "ls", "env", "test", "printf", "base64", "readlink", "head", "true")
QUERY = "--query-gpu=index,name,pci.bus_id,driver_version,memory.total --format=csv,noheader,nounits"
FAKE_SMI = f"""#!/bin/sh
# Stands in for the guest driver's nvidia-smi: prints what the real one printed on an H100 (the capture).
D=/usr/share/cai-test/h100
case "$*" in
  "") exec cat "$D/nvidia-smi.txt" ;;
  "-L") exec cat "$D/nvidia-smi-L.txt" ;;
  "-q") exec cat "$D/nvidia-smi-q.txt" ;;
  "{QUERY}") exec cat "$D/nvidia-smi-query-csv.txt" ;;
  *) echo "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help." >&2; exit 2 ;;
esac
"""
MISMATCH_SMI = """#!/bin/sh
echo "Failed to initialize NVML: Driver/library version mismatch"
echo "NVML library version: 550.127"
exit 18
"""
DOCKERFILE = """FROM scratch AS bare
COPY bare/ /
CMD ["/bin/sleep", "3600"]

FROM bare AS guest
COPY guest/ /

FROM bare AS nvml
COPY nvml/ /
"""


def capture_body(name: str) -> str:
    lines = (CAPTURE / name).read_text().splitlines(keepends=True)
    return "".join(ln for ln in lines if not ln.startswith(("# $ ", "# rc=")))


def build_images(work: Path) -> dict[str, str]:
    """bare / guest / nvml images; their tags."""
    if not os.path.exists(BUSYBOX):
        pytest.fail(f"{BUSYBOX} is missing: install busybox-static (apt-get install -y busybox-static)")
    bare = work / "bare"
    (bare / "bin").mkdir(parents=True)
    (bare / "tmp").mkdir()
    shutil.copy2(BUSYBOX, bare / "bin/busybox")
    for applet in APPLETS:
        os.symlink("busybox", bare / "bin" / applet)
    guest = work / "guest"
    (guest / "usr/share/cai-test/h100").mkdir(parents=True)
    for name in REPLAYED:
        (guest / "usr/share/cai-test/h100" / name).write_text(capture_body(name))
    for folder, script in ((guest, FAKE_SMI), (work / "nvml", MISMATCH_SMI)):
        smi = folder / "usr/bin/nvidia-smi"
        smi.parent.mkdir(parents=True, exist_ok=True)
        smi.write_text(script)
        smi.chmod(0o755)
    (work / "Dockerfile").write_text(DOCKERFILE)
    tags = {}
    for stage in ("bare", "guest", "nvml"):
        tag = f"cai-tui-test/kata-{stage}:latest"
        r = subprocess.run(
            ["docker", "build", "-q", "--target", stage, "-t", tag, str(work)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
        if r.returncode != 0:
            pytest.fail(f"docker build --target {stage} failed: {r.stderr.strip()}")
        tags[stage] = tag
    return tags


@pytest.fixture(scope="module")
def guests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, CtrTarget]]:
    """A running container per image, reached with ``ctr -n moby task exec`` on dockerd's containerd."""
    ensure_engine()
    tags = build_images(tmp_path_factory.mktemp("kata-guest-images"))
    names: list[str] = []
    try:
        targets: dict[str, CtrTarget] = {}
        for stage, tag in tags.items():
            name = f"cai-tui-kata-{stage}-{secrets.token_hex(3)}"
            names.append(name)
            cid = docker("run", "-d", "--name", name, "--label", "cai-tui-test=1", tag).stdout.strip()
            targets[stage] = CtrTarget(cid, namespace="moby", address=find_containerd_socket(cid))
        yield targets
    finally:
        for name in names:
            docker("rm", "-f", name, check=False)


def run(guest: CtrTarget, **answers: Any) -> dict[str, CheckOutcome]:
    rec = KataRecipe.model_validate({"flow": "kata-virtcca", "name": "guest-test", "answers": answers})
    ctx = CheckContext(recipe=rec, targets={"guest": guest}, redactor=Redactor(), timeout=20.0)
    outcomes = asyncio.run(run_checks([all_checks()["guest.nvidia_smi"]], ctx, timeout=20.0))
    return {o.id: o for o in outcomes}


def test_nvidia_smi_in_the_guest_shows_the_h100(guests: dict[str, CtrTarget]) -> None:
    guest = guests["guest"]
    out = run(guest, driver={"version": "580.159.04"})
    res = expect(out, "guest.nvidia_smi", "pass")
    assert res.summary == "GPU 0: NVIDIA H100 80GB HBM3 (00000000:00:06.0), driver 580.159.04"
    assert res.data["gpus"] == [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "bus_id": "00000000:00:06.0",
            "driver": "580.159.04",
            "memory_mib": 81559,
        }
    ]
    (e,) = res.evidence
    assert e.observed == "0, NVIDIA H100 80GB HBM3, 00000000:00:06.0, 580.159.04, 81559"
    assert e.source == f"nvidia-smi {QUERY}" and e.target == f"ctr://moby/{guest.task}"
    assert out["guest.nvidia_smi"].target_name == f"ctr://moby/{guest.task}"
    # the recipe expects the seed's driver: still a pass, with the difference said
    res = expect(run(guest), "guest.nvidia_smi", "pass")
    assert res.summary.endswith("driver 580.159.04; note: the recipe's driver.version is 550.127.08")


def test_nvidia_smi_not_found_points_at_the_hook(guests: dict[str, CtrTarget]) -> None:
    res = expect(run(guests["bare"]), "guest.nvidia_smi", "fail", "gpu-missing-in-guest")
    assert res.summary == f"nvidia-smi: not found in ctr://moby/{guests['bare'].task}"
    assert "KATA-1.5" in res.fix.text and "KATA-1.6" in res.fix.text and "KATA-1.8" in res.fix.text
    assert res.data["rc"] == 127
    assert 'exec: "nvidia-smi": executable file not found in $PATH' in res.evidence[0].observed


def test_nvml_failure(guests: dict[str, CtrTarget]) -> None:
    res = expect(run(guests["nvml"]), "guest.nvidia_smi", "fail", "nvml-init-failed")
    assert res.summary.endswith("Failed to initialize NVML: Driver/library version mismatch")
    assert res.evidence[0].observed == "Failed to initialize NVML: Driver/library version mismatch (exit 18)"
    assert res.data["failure"] == "driver_library_mismatch"
