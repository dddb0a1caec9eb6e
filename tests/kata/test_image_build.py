"""KATA-2.1–2.3 on this machine's dockerd: buildx checked (absent here: Debian's docker.io has none), a tiny Dockerfile
(FROM scratch + the static busybox) built with live output through the classic builder, ``docker save`` as a plain
tar, the disk-space pre-check, and the undo removing exactly what the build created."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from cai_tui.kata import image_build as ib
from tests.helpers import run_cli
from tests.targets.docker_lab import BUSYBOX, ensure_engine

TINY = (
    "FROM scratch AS base\nCOPY busybox /bin/busybox\nFROM base AS vllm-base\nARG max_jobs\nARG nvcc_threads\n"
    "LABEL cai-tui-test=image-build max_jobs=${max_jobs}\n"
)


def image_id(ref: str) -> str | None:
    r = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def has_buildx() -> bool:
    return subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode == 0


@pytest.fixture
def lab(tmp_path: Path):
    """A build context with busybox, the tiny Dockerfile as image.dockerfile, a unique tag; images removed after."""
    ensure_engine()
    if not Path(BUSYBOX).exists():
        pytest.fail(f"{BUSYBOX} is missing: install busybox-static (apt-get install -y busybox-static)")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy2(BUSYBOX, ctx / "busybox")
    (ctx / "Dockerfile.lab").write_text(TINY)
    tag = f"cai-tui-test/vllm-cvm:ib-{uuid.uuid4().hex[:8]}"
    recipe = tmp_path / "kata.yaml"
    recipe.write_text(
        "schema_version: 1\nflow: kata-virtcca\nname: image-lab\nanswers:\n  image:\n"
        f"    build_dir: {ctx}\n    dockerfile: {ctx / 'Dockerfile.lab'}\n    tag: {tag}\n"
        f"    archive: {tmp_path / 'out' / 'vllm.tar.gz'}\n    max_jobs: 3\ntargets:\n  host: local\n"
    )
    env = {"CAI_TUI_STATE_DIR": str(tmp_path / "state")}
    try:
        yield {"recipe": recipe, "tag": tag, "archive": tmp_path / "out" / "vllm.tar.gz", "env": env, "ctx": ctx}
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def events(stdout: str) -> list[dict]:
    return [json.loads(ln) for ln in stdout.splitlines() if ln.startswith('{"schema"')]


def test_build_save_and_undo(lab: dict) -> None:
    tag, archive = lab["tag"], lab["archive"]
    r = run_cli("kata", "image", "install-buildx", "--recipe", str(lab["recipe"]), env=lab["env"])
    assert r.returncode == 0, r.stdout + r.stderr
    if not has_buildx():
        assert "docker buildx is missing" in r.stderr
        assert "needs no BuildKit: image.build uses the classic builder" in r.stdout

    r = run_cli("kata", "image", "build", "--recipe", str(lab["recipe"]), env={**lab["env"], "CAI_TUI_EVENTS": "jsonl"})
    assert r.returncode == 0, r.stdout + r.stderr
    evs = events(r.stdout)
    built = [e.get("text", "") for e in evs if e.get("kind") == "line" and e.get("source") == "docker build"]
    assert any("busybox" in t for t in built), built  # the build's own lines, one event each
    notes = [e.get("text", "") for e in evs if e.get("kind") == "note"]
    assert any(n.startswith("docker's data root: ") and "GiB free (needs about 1 GiB)" in n for n in notes)
    assert any(f"--build-arg max_jobs=3 --build-arg nvcc_threads=8 --target vllm-base --tag {tag}" in n for n in notes)
    if not has_buildx():
        assert any("building with the classic builder (DOCKER_BUILDKIT=0 docker build)" in n for n in notes)
    assert any(e.get("kind") == "progress" and e.get("done") == archive.stat().st_size for e in evs)
    assert image_id(tag) is not None
    with tarfile.open(archive) as tar:  # a plain tar despite the name, as the seed's docker save writes it
        names = tar.getnames()
    assert "manifest.json" in names and not list(archive.parent.glob("*.cai-partial"))
    labels = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", tag], capture_output=True, text=True
    ).stdout
    assert json.loads(labels)["max_jobs"] == "3"

    again = run_cli("kata", "image", "build", "--recipe", str(lab["recipe"]), env=lab["env"])
    assert again.returncode == 0, again.stderr
    record = json.loads((Path(lab["env"]["CAI_TUI_STATE_DIR"]) / f"{ib.record_name(tag)}.json").read_text())
    assert ib.record_name(tag) == "kata-image-build-" + tag.replace("/", "_").replace(":", "_")
    assert record["tag_existed"] is False and record["archive"] == str(archive)

    r = run_cli("kata", "image", "undo", "--recipe", str(lab["recipe"]), env=lab["env"])
    assert r.returncode == 0, r.stderr
    assert f"removed the image {tag}" in r.stdout and f"removed {archive}" in r.stdout
    assert image_id(tag) is None and not archive.exists()
    r = run_cli("kata", "image", "undo", "--recipe", str(lab["recipe"]), env=lab["env"])
    assert r.returncode == 0 and f"nothing to undo: no build of {tag} recorded" in r.stdout


def test_undo_gives_a_tag_that_existed_its_image_back(lab: dict) -> None:
    (lab["ctx"] / "Dockerfile.old").write_text("FROM scratch\nCOPY busybox /bin/sh\n")
    subprocess.run(
        ["docker", "build", "-q", "-t", lab["tag"], "-f", str(lab["ctx"] / "Dockerfile.old"), str(lab["ctx"])],
        check=True,
        capture_output=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    before = image_id(lab["tag"])
    lab["archive"].parent.mkdir()
    lab["archive"].write_text("the user's archive\n")
    r = run_cli("kata", "image", "build", "--recipe", str(lab["recipe"]), env=lab["env"])
    assert r.returncode == 0, r.stderr
    assert image_id(lab["tag"]) not in (None, before)
    assert f"{lab['archive']} existed: kept as {lab['archive']}.bak" in r.stderr
    r = run_cli("kata", "image", "undo", "--recipe", str(lab["recipe"]), env=lab["env"])
    assert r.returncode == 0, r.stderr
    assert image_id(lab["tag"]) == before and lab["archive"].read_text() == "the user's archive\n"


def test_not_enough_disk_stops_before_building(lab: dict) -> None:
    r = run_cli("kata", "image", "build", "--recipe", str(lab["recipe"]), "--need-gib", "1000000", env=lab["env"])
    assert r.returncode == 1
    assert "docker's data root: " in r.stderr and "the step needs about 1000000 GiB" in r.stderr
    assert image_id(lab["tag"]) is None and not lab["archive"].exists()


def test_seed_dockerfile_without_buildx(tmp_path: Path) -> None:
    """The seed's Dockerfile uses RUN --mount: the classic builder cannot build it, so without buildx both steps
    stop (exit 1) with the documented install, and nothing is written into the checkout."""
    ensure_engine()
    checkout = tmp_path / "vllm-build"
    checkout.mkdir()
    recipe = tmp_path / "seed.yaml"
    recipe.write_text(
        "schema_version: 1\nflow: kata-virtcca\nname: seed\nanswers:\n  image:\n"
        f"    build_dir: {checkout}\n    archive: {tmp_path / 'vllm.tar.gz'}\ntargets:\n  host: local\n"
    )
    env = {"CAI_TUI_STATE_DIR": str(tmp_path / "state")}
    if has_buildx():  # pragma: no cover - this machine's docker.io has none
        r = run_cli("kata", "image", "install-buildx", "--recipe", str(recipe), env=env)
        assert r.returncode == 0 and "docker buildx: github.com/docker/buildx" in r.stdout
        return
    r = run_cli("kata", "image", "install-buildx", "--recipe", str(recipe), env=env)
    assert r.returncode == 1
    assert (
        "wget -O ~/.docker/cli-plugins/docker-buildx "
        "https://github.com/docker/buildx/releases/download/v0.19.2/buildx-v0.19.2.linux-arm64"
    ) in r.stdout
    assert "chmod +x ~/.docker/cli-plugins/docker-buildx" in r.stdout and "docker-buildx package" in r.stderr
    r = run_cli("kata", "image", "build", "--recipe", str(recipe), env=env)
    assert r.returncode == 1 and "needs BuildKit (RUN --mount=type=cache" in r.stderr
    assert list(checkout.iterdir()) == []
    r = run_cli("kata", "image", "build", "--recipe", str(recipe).replace("seed", "none"), env=env)
    assert r.returncode == 2


def test_missing_checkout_is_an_input_error(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "schema_version: 1\nflow: kata-virtcca\nname: r\nanswers:\n  image:\n"
        f"    build_dir: {tmp_path / 'absent'}\ntargets:\n  host: local\n"
    )
    with pytest.raises(ib.ImageError) as e:
        from cai_tui.recipe import load_recipe

        ib.source(load_recipe(recipe).recipe)
    assert e.value.exit_code == 2 and "clone the vllm-build project there first" in e.value.message


def test_plans_and_the_seed_dockerfile_needs_buildkit(tmp_path: Path) -> None:
    from cai_tui.actions.registry import get
    from cai_tui.recipe import load_recipe
    from cai_tui.render.vllm_dockerfile import VllmDockerfile

    loaded = load_recipe(Path(__file__).parents[2] / "recipes/kata-virtcca-qwen1.5-1.8b.yaml")
    recipe = str(loaded.path)
    seed = VllmDockerfile().render(loaded.recipe).text
    assert ib.needs_buildkit(seed)[0].startswith("RUN --mount=type=cache") and ib.needs_buildkit(TINY) == []
    (check,) = get("image.install_buildx").plan(loaded)  # type: ignore[union-attr]
    assert check.argv == ["cai-tui", "kata", "image", "install-buildx", "--recipe", recipe]
    assert check.changes.startswith("nothing") and check.undo == ()
    (build,) = get("image.build").plan(loaded)  # type: ignore[union-attr]
    assert build.argv == ["cai-tui", "kata", "image", "build", "--recipe", recipe]
    assert build.undo == ("cai-tui", "kata", "image", "undo", "--recipe", recipe)
    assert "/home/pass-through/vllm-build/Dockerfile" in build.changes and "vllm-cvm:latest" in build.changes


def test_the_target_stage(lab: dict) -> None:
    """Stages without image.target: refused before building; a single-stage image.dockerfile: built whole."""
    (lab["ctx"] / "Dockerfile.lab").write_text("FROM scratch AS base\nCOPY busybox /bin/busybox\n")
    r = run_cli("kata", "image", "build", "--recipe", str(lab["recipe"]), env=lab["env"])
    assert r.returncode == 2
    assert "has no stage vllm-base (FROM … AS vllm-base) for --target: its stages are base" in r.stderr
    assert image_id(lab["tag"]) is None
    (lab["ctx"] / "Dockerfile.lab").write_text("FROM scratch\nCOPY busybox /bin/busybox\n")
    r = run_cli("kata", "image", "build", "--recipe", str(lab["recipe"]), env=lab["env"])
    assert r.returncode == 0, r.stderr
    assert "names no stages: built whole, without --target vllm-base" in r.stderr
    assert "--target" not in r.stdout and image_id(lab["tag"]) is not None
    assert run_cli("kata", "image", "undo", "--recipe", str(lab["recipe"]), env=lab["env"]).returncode == 0
    assert image_id(lab["tag"]) is None


def test_sigterm_stops_the_build_and_leaves_nothing(lab: dict) -> None:
    (lab["ctx"] / "Dockerfile.lab").write_text(
        'FROM scratch AS vllm-base\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "60"]\n'
    )
    import signal
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "cai_tui.cli.main", "kata", "image", "build", "--recipe", str(lab["recipe"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **lab["env"]},
    )
    seen: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    for text in proc.stdout:  # live: the RUN step's line arrives while the build runs
        seen.append(text)
        if "busybox" in text and "sleep" in text and "Step" in text:
            break
        assert time.monotonic() < deadline, "".join(seen)
    time.sleep(1)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=30)[0]
    assert proc.returncode == 130, "".join(seen) + rest
    assert time.monotonic() - started < 20
    assert "cancelled: the build was stopped" in rest
    assert image_id(lab["tag"]) is None and not lab["archive"].exists()


def test_the_seed_dockerfile_replaces_the_checkouts_and_undo_puts_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cai_tui.recipe import load_recipe

    monkeypatch.setenv("CAI_TUI_STATE_DIR", str(tmp_path / "state"))
    checkout = tmp_path / "vllm-build"
    checkout.mkdir()
    (checkout / "Dockerfile").write_text("# vllm-build's own Dockerfile\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "schema_version: 1\nflow: kata-virtcca\nname: r\nanswers:\n  image:\n"
        f"    build_dir: {checkout}\n    max_jobs: 16\ntargets:\n  host: local\n"
    )
    src = ib.source(load_recipe(recipe).recipe)
    assert src.rendered and src.dockerfile == str(checkout / "Dockerfile")
    assert "ARG max_jobs" in src.text and "FROM nvcr.io/nvidia/pytorch:24.07-py3 AS base" in src.text
    argv, env = ib.build_argv(load_recipe(recipe).recipe, src, classic=False)
    assert argv[:3] == ["docker", "build", "--progress=plain"] and env == {"DOCKER_BUILDKIT": "1"}
    assert argv[3:] == [
        *("--build-arg", "max_jobs=16", "--build-arg", "nvcc_threads=8", "--target", "vllm-base"),
        *("--tag", "vllm-cvm:latest", "-f", str(checkout / "Dockerfile"), str(checkout)),
    ]
    said = ib.write_dockerfile(src, {"tag": "vllm-cvm:latest"})
    assert said is not None and "Dockerfile.bak" in said
    assert (checkout / "Dockerfile").read_text() == src.text
    assert (checkout / "Dockerfile.bak").read_text() == "# vllm-build's own Dockerfile\n"
    rec = ib.state.read_record(ib.record_name("vllm-cvm:latest"))
    assert ib.write_dockerfile(src, rec) is None  # already there: nothing written
    notes: list[str] = []
    assert ib.undo(load_recipe(recipe).recipe, lambda e: notes.append(e.text)).startswith("undone")
    assert (checkout / "Dockerfile").read_text() == "# vllm-build's own Dockerfile\n"
    assert not (checkout / "Dockerfile.bak").exists() and any("put the checkout's" in n for n in notes)
