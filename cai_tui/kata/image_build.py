"""KATA-2.1–2.3: docker buildx, the vLLM image built from the seed's Dockerfile, and ``docker save`` for containerd.

* buildx: ``docker buildx version``. The documented install downloads a release from GitHub
  (``buildx-<v>.linux-arm64`` into ``~/.docker/cli-plugins/docker-buildx``); where that cannot run, Debian's
  ``docker.io`` (bookworm) has no buildx at all. Without it ``docker build`` is the classic builder, which cannot
  build a Dockerfile that needs BuildKit (the seed's uses ``RUN --mount``): :func:`buildx_status` says which.
* build: a disk-space pre-check of docker's data root; the rendered vllm-dockerfile written into
  ``image.build_dir`` (``image.dockerfile``, when set, is built instead, the kata lab's stand-in); ``docker build
  --build-arg max_jobs … --build-arg nvcc_threads … --target … --tag …`` with every output line streamed;
  then ``docker save -o image.archive`` — a plain tar as the seed writes it, whatever the name says (``ctr image
  import`` reads it) — through a partial file renamed at the end, with progress.
* undo: removes what the build created, from the record ``kata-image-build``: the tag when it did not exist before
  (the previous image tagged again when it did), the archive (a file it replaced put back), the Dockerfile it wrote
  (the checkout's own put back).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..events import CancelToken, EventSink, line, note, progress
from . import state
from .image_docker import (
    GIB,
    ImageError,
    buildx,
    check_space,
    data_root,
    image_id,
    image_size,
    install_commands,
    needs_buildkit,
    stages,
    stream,
)
from .image_docker import docker as _docker

RECORD = "kata-image-build"  # one record per tag: kata-image-build-<tag, made file-safe>


def record_name(tag: str) -> str:
    return f"{RECORD}-{re.sub(r'[^A-Za-z0-9_.-]', '_', tag)}"


SEED_NEED_GIB = 60
"""Free space the seed's build needs in docker's data root: nvcr.io/nvidia/pytorch:24.07-py3 is about 9 GiB to pull
and 20 GiB unpacked, the build stage adds the compiled wheels and ccache, vllm-base its layers (stated, not measured
here: no registry is reachable from this machine)."""
CUSTOM_NEED_GIB = 1
"""The same for a Dockerfile given as image.dockerfile (the lab's tiny one); --need-gib overrides both."""


# ------------------------------------------------------------------------------------------- the Dockerfile


@dataclass(frozen=True)
class Source:
    dockerfile: str  # the file docker build -f reads
    context: str  # image.build_dir
    text: str
    rendered: bool  # the seed's Dockerfile rendered from the recipe (written into build_dir), not image.dockerfile


def source(recipe: Any) -> Source:
    """The Dockerfile to build and its context; ImageError (2) when image.dockerfile or build_dir is missing."""
    image = recipe.answers.image
    context = os.path.expanduser(image.build_dir)
    if not os.path.isdir(context):
        raise ImageError(
            f"image.build_dir {context} does not exist: clone the vllm-build project there first (KATA-2.2: git "
            f"clone https://github.com/skandermoalla/vllm-build.git {context})",
            2,
        )
    if image.dockerfile:
        path = os.path.expanduser(image.dockerfile)
        try:
            with open(path, encoding="utf-8") as f:
                return Source(path, context, f.read(), False)
        except OSError as e:
            raise ImageError(f"image.dockerfile {path}: {e.strerror or e}", 2) from None
    from ..render.vllm_dockerfile import VllmDockerfile

    rendered = VllmDockerfile().render(recipe)
    return Source(os.path.join(context, "Dockerfile"), context, rendered.text, True)


def write_dockerfile(src: Source, rec: dict[str, Any]) -> str | None:
    """Write the rendered Dockerfile (atomically); the checkout's own kept as ``Dockerfile.bak`` once. Returns what
    was done, for the output; None when it already holds the text."""
    path = src.dockerfile
    try:
        with open(path, encoding="utf-8") as f:
            old: str | None = f.read()
    except FileNotFoundError:
        old = None
    if old == src.text:
        return None
    if old is not None and "dockerfile_backup" not in rec and not rec.get("dockerfile_created"):
        bak = path + ".bak"
        if not os.path.exists(bak):
            shutil.copy2(path, bak)
            rec["dockerfile_backup"] = bak
    elif old is None:
        rec["dockerfile_created"] = True
    rec["dockerfile"] = path
    state.write_record(record_name(rec["tag"]), rec)
    tmp = f"{path}.cai-tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(src.text)
    os.replace(tmp, path)
    return f"wrote {path} (the seed's Dockerfile with the recipe's values)" + (
        f"; the checkout's own is {rec['dockerfile_backup']}" if rec.get("dockerfile_backup") else ""
    )


# ------------------------------------------------------------------------------------------- running


def build_argv(recipe: Any, src: Source, classic: bool, target: bool = True) -> tuple[list[str], dict[str, str]]:
    """The docker build line and its environment; ``target`` False for a single-stage image.dockerfile."""
    i = recipe.answers.image
    argv = ["docker", "build"]
    if not classic:
        argv.append("--progress=plain")
    argv += ["--build-arg", f"max_jobs={i.max_jobs}", "--build-arg", f"nvcc_threads={i.nvcc_threads}"]
    argv += [*(["--target", i.target] if target else []), "--tag", i.tag, "-f", src.dockerfile, src.context]
    return argv, {"DOCKER_BUILDKIT": "0" if classic else "1"}


def save(tag: str, archive: str, sink: EventSink, cancel: CancelToken | None, rec: dict[str, Any]) -> None:
    """``docker save -o`` into a partial file beside the archive, progress from its size, renamed at the end."""
    partial = f"{archive}.cai-partial"
    total = image_size(tag)
    os.makedirs(os.path.dirname(archive) or ".", exist_ok=True)
    if os.path.exists(archive) and not rec.get("archive_created") and "archive_backup" not in rec:
        rec["archive_backup"] = f"{archive}.bak"
        os.replace(archive, rec["archive_backup"])
        sink(note(f"{archive} existed: kept as {rec['archive_backup']} (the undo puts it back)", level="warn"))
    rec["archive"], rec["archive_created"] = archive, True
    state.write_record(record_name(rec["tag"]), rec)
    done = threading.Event()

    def report() -> None:
        while not done.wait(1.0):
            try:
                sink(progress(os.path.getsize(partial), total, text=f"docker save → {archive}"))
            except OSError:
                pass

    t = threading.Thread(target=report, daemon=True)
    t.start()
    try:
        rc = stream(["docker", "save", "-o", partial, tag], sink, cancel, source="docker save")
    finally:
        done.set()
        t.join()
    if rc != 0 or (cancel is not None and cancel.cancelled):
        if os.path.exists(partial):
            os.unlink(partial)
        raise ImageError(f"docker save {tag} failed (exit {rc}); {archive} not written")
    os.replace(partial, archive)
    size = os.path.getsize(archive)
    sink(progress(size, size, text=f"docker save → {archive}"))


def build(recipe: Any, sink: EventSink, cancel: CancelToken | None = None, need_gib: float | None = None) -> str:
    """KATA-2.2/2.3 and the archive of KATA-2.4; returns the summary. ImageError on failure."""
    i = recipe.answers.image
    src = source(recipe)
    bx = buildx()
    classic = bx.version is None
    if classic:
        needing = needs_buildkit(src.text)
        if needing:
            raise ImageError(
                f"docker buildx is missing ({bx.detail or 'docker buildx version failed'}), and {src.dockerfile} needs "
                f"BuildKit ({needing[0]}…), which the classic builder cannot build: install buildx first "
                "(cai-tui kata image install-buildx --recipe R shows how)"
            )
        sink(
            note(
                "docker buildx is missing: building with the classic builder (DOCKER_BUILDKIT=0 docker build)",
                level="warn",
            )
        )
    else:
        sink(note(f"BuildKit through {bx.version}"))
    named = stages(src.text)
    whole = not src.rendered and not named  # a single-stage image.dockerfile: the whole file is the image
    if whole:
        sink(note(f"{src.dockerfile} names no stages: built whole, without --target {i.target}", level="warn"))
    elif i.target not in named:
        raise ImageError(
            f"{src.dockerfile} has no stage {i.target} (FROM … AS {i.target}) for --target: its stages are "
            f"{', '.join(named) or 'none (no FROM … AS name)'}; name the stage, or set image.target to one of them",
            2,
        )
    need = (need_gib if need_gib is not None else (SEED_NEED_GIB if src.rendered else CUSTOM_NEED_GIB)) * GIB
    sink(note(check_space(data_root(), int(need), "docker's data root")))
    rec: dict[str, Any] = state.read_record(record_name(i.tag)) or {}
    if "tag" not in rec:
        previous = image_id(i.tag)
        rec.update({"tag": i.tag, "tag_existed": previous is not None, "previous_id": previous})
        state.write_record(record_name(rec["tag"]), rec)
    if src.rendered:
        wrote = write_dockerfile(src, rec)
        sink(note(wrote or f"{src.dockerfile} already holds the seed's Dockerfile"))
    else:
        sink(note(f"building {src.dockerfile} (image.dockerfile) instead of the seed's Dockerfile"))
    argv, env = build_argv(recipe, src, classic, target=not whole)
    sink(note(f"{'DOCKER_BUILDKIT=0' if classic else 'DOCKER_BUILDKIT=1'} {' '.join(argv)}"))
    started = time.monotonic()
    rc = stream(argv, sink, cancel, env, source="docker build")
    if cancel is not None and cancel.cancelled:
        raise ImageError("cancelled: the build was stopped", 130)
    if rc != 0:
        raise ImageError(
            f"docker build failed (exit {rc}); the output above says where. 'Killed signal terminated program "
            "cc1plus' means the host ran out of memory: lower image.max_jobs"
        )
    built = image_id(i.tag)
    rec["built_id"] = built
    state.write_record(record_name(rec["tag"]), rec)
    size = image_size(i.tag) or 0
    sink(note(f"built {i.tag} ({(built or '')[:19]}, {size / GIB:.2f} GiB) in {time.monotonic() - started:.0f} s"))
    archive = os.path.expanduser(i.archive)
    sink(note(check_space(os.path.dirname(archive) or ".", int(size * 1.05) + 1, "the archive's disk")))
    save(i.tag, archive, sink, cancel, rec)
    plain = (
        " (a plain tar, as the seed's docker save writes it, whatever the name says)" if archive.endswith(".gz") else ""
    )
    return f"built {i.tag} and saved it to {archive}{plain}: {os.path.getsize(archive)} bytes"


def undo(recipe: Any, sink: EventSink) -> str:
    """Remove what :func:`build` created for the recipe's image.tag (its record); "nothing to undo" without one."""
    name = record_name(recipe.answers.image.tag)
    rec = state.read_record(name)
    if not rec:
        return f"nothing to undo: no build of {recipe.answers.image.tag} recorded"
    problems: list[str] = []
    archive = rec.get("archive")
    if archive and rec.get("archive_created"):
        for p in (archive, f"{archive}.cai-partial"):
            if os.path.exists(p):
                os.unlink(p)
                sink(note(f"removed {p}"))
        if rec.get("archive_backup") and os.path.exists(rec["archive_backup"]):
            os.replace(rec["archive_backup"], archive)
            sink(note(f"put {archive} back from {rec['archive_backup']}"))
    tag = rec.get("tag")
    if tag:
        current = image_id(tag)
        if rec.get("tag_existed"):
            prev = rec.get("previous_id")
            if prev and current != prev and image_id(prev):
                _docker("tag", prev, tag)
                sink(note(f"tagged the previous image {prev[:19]} as {tag} again"))
        elif current is not None:
            if rec.get("built_id") and current != rec["built_id"]:
                problems.append(f"{tag} is now {current[:19]}, not the image the build made: left alone")
            else:
                r = _docker("rmi", tag)
                if r.returncode != 0:
                    problems.append(f"docker rmi {tag}: {(r.stderr or r.stdout).strip()[:300]}")
                else:
                    sink(note(f"removed the image {tag}"))
    path = rec.get("dockerfile")
    if path and rec.get("dockerfile_backup") and os.path.exists(rec["dockerfile_backup"]):
        os.replace(rec["dockerfile_backup"], path)
        sink(note(f"put the checkout's {path} back"))
    elif path and rec.get("dockerfile_created") and os.path.exists(path):
        os.unlink(path)
        sink(note(f"removed {path}"))
    if problems:
        raise ImageError("; ".join(problems) + " (the record is kept: run the undo again after fixing it)")
    state.drop_record(name)
    return "undone: what the image build created is gone"


def buildx_check(recipe: Any, sink: Callable[[Any], None]) -> tuple[int, str]:
    """KATA-2.1: (exit code, summary). 0 when buildx answers, or when it is missing but the Dockerfile to build needs
    no BuildKit (image.build then uses the classic builder); 1 with the documented install otherwise."""
    i = recipe.answers.image
    bx = buildx()
    if bx.version is not None:
        want = i.buildx_version
        if want not in bx.version:
            sink(
                note(
                    f"docker buildx is {bx.version}; the procedure installs {want} (newer ones build the same)",
                    level="warn",
                )
            )
        return 0, f"docker buildx: {bx.version}"
    sink(note(f"docker buildx is missing: {bx.detail or 'docker buildx version failed'}", level="warn"))
    try:
        src: Source | None = source(recipe)
    except ImageError:
        src = None
    needing = needs_buildkit(src.text) if src is not None else ["the seed's Dockerfile (RUN --mount)"]
    if src is not None and not needing:
        return 0, (
            f"buildx is not installed, and {src.dockerfile} needs no BuildKit: image.build uses the classic builder "
            "(DOCKER_BUILDKIT=0 docker build) and says so"
        )
    for c in install_commands(i.buildx_version):
        sink(line(c, source="documented install"))
    return 1, (
        "install docker buildx with the documented commands above, for the user that runs docker (they download "
        "from GitHub: arm64 on the virtCCA host; an amd64 binary fails with 'exec format error'); Debian's docker.io "
        "of bookworm ships no buildx — Debian 13 has the docker-buildx package (apt-get install docker-buildx). "
        f"Without it the classic builder cannot build the seed's Dockerfile ({needing[0]})"
    )


__all__ = [
    "ImageError",
    "Source",
    "build",
    "build_argv",
    "buildx_check",
    "needs_buildkit",
    "save",
    "source",
    "undo",
    "write_dockerfile",
]
