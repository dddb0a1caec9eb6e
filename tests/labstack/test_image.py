"""The labstack image: what the services rely on is inside and works, FUSE works in a container here, and the tag
follows the content (reused while nothing changed, new when a cai_tui file changes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cai_tui.events import Event
from cai_tui.labstack.bed import mounts_under, privileged_works
from cai_tui.labstack.image import assemble, build_image, image_tag
from tests.targets.docker_lab import docker

REPO = Path(__file__).resolve().parents[2]
APPLETS = [
    "sh",
    "test",
    "cat",
    "grep",
    "ls",
    "sleep",
    "mkdir",
    "rm",
    "mountpoint",
    "stat",
    "head",
    "tail",
    "wc",
    "echo",
    "printf",
    "true",
    "false",
    "env",
    "kill",
    "ps",
    "cut",
    "sed",
    "awk",
    "find",
    "umount",
]


def run_in(image: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return docker("run", "--rm", "--network", "none", image, *argv, check=False, timeout=timeout)


def test_python_and_the_runtime_dependencies_import(labstack_image: str) -> None:
    code = (
        "import sys, cai_tui, oss2, httpx, pydantic, cryptography, ruamel.yaml, platformdirs, ssl, sqlite3, ctypes\n"
        "import cai_tui.clients.kbs, cai_tui.recipe, cai_tui.render\n"
        "from cai_tui.resources import data_dir\n"
        "print(sys.executable, sys.version_info[:2], data_dir('recipes'), data_dir('assets') / 'labstack')\n"
        "for name in ('textual', 'rich', 'questionary', 'pytest', 'mypy'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError:\n"
        "        continue\n"
        "    raise SystemExit(f'{name} must not be in the image')\n"
    )
    r = run_in(labstack_image, "python3", "-c", code)
    assert r.returncode == 0, r.stderr
    exe, rest = r.stdout.split(" ", 1)
    assert exe == "/usr/bin/python3"
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    site = f"/usr/local/lib/python{ver}/dist-packages"
    assert rest.split() == [
        f"({sys.version_info.major},",
        f"{sys.version_info.minor})",
        f"{site}/cai_tui/_data/recipes",
        f"{site}/cai_tui/_data/assets/labstack",
    ], rest


def test_every_service_module_imports_in_the_image(labstack_image: str) -> None:
    """What the six stand-ins import (directly or through cai_tui) is in the image."""
    import cai_tui.labstack.services as services

    names = sorted(p.stem for p in Path(services.__file__).parent.glob("*.py") if p.stem != "__init__")
    assert "inference" in names, "cai_tui/labstack/services/inference.py is missing"
    code = "import importlib\n" + "".join(f"importlib.import_module('cai_tui.labstack.services.{n}')\n" for n in names)
    r = run_in(labstack_image, "python3", "-c", code)
    assert r.returncode == 0, r.stderr


def test_busybox_gocryptfs_and_fusermount(labstack_image: str) -> None:
    script = (
        "set -e; for a in " + " ".join(APPLETS) + '; do command -v "$a" >/dev/null || { echo "no $a"; exit 1; }; done; '
        "echo one two | awk '{print $2}' | sed s/two/TWO/; "
        "test -d /tmp && stat -c %a /tmp; grep -c root /etc/passwd; grep user_allow_other /etc/fuse.conf; "
        "mountpoint -q /proc && ! mountpoint -q /tmp && echo mountpoint-ok; "
        "gocryptfs -version; fusermount -V; fusermount3 -V; test -s /etc/ssl/certs/ca-certificates.crt && echo certs"
    )
    r = run_in(labstack_image, "sh", "-c", script)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.splitlines()
    assert out[:5] == ["TWO", "1777", "1", "user_allow_other", "mountpoint-ok"], out
    assert out[5].startswith("gocryptfs 2.") and "fusermount3 version" in out[6], out
    assert out[-1] == "certs"


def test_the_vllm_shim_runs_the_inference_stand_in(labstack_image: str) -> None:
    """The argv of the rendered compose file reaches the inference stand-in's argument parser."""
    r = run_in(labstack_image, "python3", "-m", "vllm.entrypoints.openai.api_server", "--help")
    assert r.returncode == 0, r.stderr
    assert "--model" in r.stdout and "--trust-remote-code" in r.stdout and "--port" in r.stdout, r.stdout


@pytest.fixture
def shared_dir(tmp_path: Path) -> Iterator[Path]:
    """A shared bind mount (as the bed makes MODEL_MOUNT_POINT), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.fail("this test bind-mounts a directory and runs FUSE: run it as root", pytrace=False)
    d = tmp_path / "model"
    d.mkdir()
    subprocess.run(["mount", "--bind", str(d), str(d)], check=True)
    subprocess.run(["mount", "--make-shared", str(d)], check=True)
    yield d
    for point in mounts_under(d):
        subprocess.run(["umount", "-l", point], check=False)
    assert not mounts_under(d)


def test_real_gocryptfs_mounts_in_a_container_and_the_host_sees_the_plaintext(
    labstack_image: str, tmp_path: Path, shared_dir: Path
) -> None:
    """FUSE inside a container, propagated to the host through the shared bind (what cachefs does in the stack)."""
    gocryptfs = shutil.which("gocryptfs")
    assert gocryptfs, "gocryptfs is missing: apt-get install -y gocryptfs fuse3"
    cipher = tmp_path / "cipher"
    cipher.mkdir()
    passfile = tmp_path / "model.key"
    passfile.write_text("lab password\n")
    r = subprocess.run(
        [gocryptfs, "-q", "-init", "-scryptn", "10", "-passfile", str(passfile), str(cipher)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    name = f"cai-tui-labstack-fuse-{uuid.uuid4().hex[:8]}"
    caps = ["--privileged"] if privileged_works(labstack_image) else ["--cap-add", "SYS_ADMIN"]
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        *caps,
        "--device",
        "/dev/fuse",
        "--security-opt",
        "apparmor=unconfined",
        "-v",
        f"{cipher}:/run/cai/cipher",
        "-v",
        f"{passfile}:/run/cai/model.key:ro",
        "-v",
        f"{shared_dir}:{shared_dir}:shared",
        labstack_image,
        "gocryptfs",
        "-fg",
        "-allow_other",
        "-passfile",
        "/run/cai/model.key",
        "/run/cai/cipher",
        str(shared_dir),
    )
    try:
        deadline = time.monotonic() + 20
        logs = ""
        while time.monotonic() < deadline:
            logs = docker("logs", name, check=False).stdout + docker("logs", name, check=False).stderr
            if "Filesystem mounted and ready." in logs:
                break
            time.sleep(0.2)
        assert "Filesystem mounted and ready." in logs, logs
        assert any(
            " fuse.gocryptfs " in line
            for line in Path("/proc/mounts").read_text().splitlines()
            if str(shared_dir) in line
        )

        (shared_dir / "config.json").write_text('{"model_type": "lab"}\n')  # through the container's gocryptfs
        stored = [p for p in cipher.iterdir() if p.name not in ("gocryptfs.conf", "gocryptfs.diriv")]
        assert len(stored) == 1 and stored[0].name != "config.json"
        assert b"model_type" not in stored[0].read_bytes()
        inside = docker("exec", name, "cat", f"{shared_dir}/config.json")
        assert inside.stdout == '{"model_type": "lab"}\n'
    finally:
        docker("stop", "-t", "5", name, check=False)
        docker("rm", "-f", name, check=False)
    assert not any(
        "fuse.gocryptfs" in line for line in Path("/proc/mounts").read_text().splitlines() if str(shared_dir) in line
    )


def test_the_tag_follows_the_content(labstack_image: str, tmp_path: Path) -> None:
    """Unchanged sources: the same tag, reused without a build; a touched cai_tui file: another tag."""
    current = build_image()  # the session's image, unless a source changed since the session began
    assert current == labstack_image or current == image_tag()
    got: list[Event] = []
    t0 = time.monotonic()
    assert build_image(on_event=got.append) == current
    lines = [e.text for e in got]
    assert time.monotonic() - t0 < 15
    assert lines == [lines[0]] and "is up to date" in lines[0], lines

    copy = tmp_path / "repo"
    shutil.copytree(REPO / "cai_tui", copy / "cai_tui", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("screens", "recipes", "assets"):
        shutil.copytree(REPO / name, copy / name)
    first = image_tag(repo_root=copy)
    assert first == image_tag(repo_root=copy)
    assert first.startswith("cai-tui-labstack:") and len(first.split(":")[1]) == 12
    target = copy / "cai_tui" / "labstack" / "__init__.py"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert image_tag(repo_root=copy) != first
    (copy / "assets" / "labstack" / "extra.txt").write_text("x")
    assert image_tag(repo_root=copy) not in (first, labstack_image)


def test_the_rootfs_is_complete_and_deterministic() -> None:
    fs, facts = assemble()
    paths = dict(fs.complete())
    site = f"usr/local/lib/python{facts['python']}/dist-packages"
    for path in (
        "usr/bin/busybox",
        "usr/bin/sh",
        f"usr/bin/python{facts['python']}",
        "usr/bin/python3",
        "usr/bin/gocryptfs",
        "usr/bin/fusermount3",
        "usr/bin/fusermount",
        "usr/lib64/ld-linux-x86-64.so.2",
        "etc/fuse.conf",
        "etc/passwd",
        "etc/group",
        "tmp",
        f"{site}/cai_tui/__init__.py",
        f"{site}/cai_tui/_data/assets/labstack/cai-docker-compose.yml.tmpl",
        f"{site}/vllm/entrypoints/openai/api_server.py",
    ):
        assert path in paths, path
    assert paths["tmp"].mode == 0o1777
    assert not any(p.startswith(f"usr/lib/python{facts['python']}/test/") for p in paths)
    assert not any("/textual/" in p or "/rich/" in p for p in paths)
    dists = {d.split("==")[0].lower() for d in facts["distributions"]}
    assert {"oss2", "httpx", "pydantic", "cryptography", "ruamel.yaml", "platformdirs"} <= dists
    assert not dists & {"textual", "rich", "questionary", "pytest", "mypy", "hypothesis"}
    again, _ = assemble()
    assert again.digest("x") == fs.digest("x")


def test_a_missing_tool_is_named_with_the_package_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cai_tui.labstack.image import LabImageError

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ldd = shutil.which("ldd")
    assert ldd
    (bin_dir / "ldd").symlink_to(ldd)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(LabImageError) as e:
        assemble()
    assert str(e.value) == "gocryptfs is missing on this machine: install gocryptfs (apt-get install -y gocryptfs)"
    gocryptfs = shutil.which("gocryptfs", path=os.defpath + ":/usr/bin")
    assert gocryptfs
    (bin_dir / "gocryptfs").symlink_to(gocryptfs)
    with pytest.raises(LabImageError) as e:
        assemble()
    assert str(e.value) == "fusermount3 is missing on this machine: install fuse3 (apt-get install -y fuse3)"
