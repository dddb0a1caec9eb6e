"""Plans of the kata-virtcca doers of KATA-2.x: the vLLM image (image.install_buildx, image.build, image.import)."""

from __future__ import annotations

from typing import Any

from ..registry import ActionSpec, PlanStep
from ._common import CLI, kata_answers, recipe_path

# --- image.install_buildx / image.build (KATA-2.1–2.3): the image-build section ------------------------------------


def plan_install_buildx(loaded: Any) -> list[PlanStep]:
    a = kata_answers(loaded)
    notes: list[str] = []
    recipe = recipe_path(loaded, notes)
    notes.append(
        f"the documented install downloads buildx {a.image.buildx_version} (linux-arm64) from GitHub into "
        "~/.docker/cli-plugins/docker-buildx; the step shows those commands when buildx is missing"
    )
    return [
        PlanStep(
            "check docker buildx; without it, say whether the classic builder can build the Dockerfile (KATA-2.1)",
            [CLI, "kata", "image", "install-buildx", "--recipe", recipe],
            where="host",
            changes="nothing: docker buildx version is read (exit 1 with the documented install when buildx is missing "
            "and the Dockerfile needs BuildKit)",
            notes=tuple(notes),
        )
    ]


def plan_build(loaded: Any) -> list[PlanStep]:
    a = kata_answers(loaded)
    i = a.image
    notes: list[str] = []
    recipe = recipe_path(loaded, notes)
    dockerfile = i.dockerfile or f"{i.build_dir.rstrip('/')}/Dockerfile"
    wrote = (
        f"builds {i.dockerfile} (image.dockerfile)"
        if i.dockerfile
        else f"writes the seed's Dockerfile to {dockerfile} (the checkout's own kept as Dockerfile.bak)"
    )
    notes.append(
        f"runs: DOCKER_BUILDKIT=1 docker build --build-arg max_jobs={i.max_jobs} --build-arg nvcc_threads="
        f"{i.nvcc_threads} --target {i.target} --tag {i.tag} -f {dockerfile} {i.build_dir}, then docker save -o "
        f"{i.archive} {i.tag}; first a disk-space check of docker's data root"
    )
    base = [CLI, "kata", "image"]
    return [
        PlanStep(
            f"build {i.tag} (target {i.target}) and save it to {i.archive} (KATA-2.2, KATA-2.3)",
            [*base, "build", "--recipe", recipe],
            where="host",
            changes=f"{wrote}; creates the docker image {i.tag} and the archive {i.archive} (a plain tar)",
            notes=tuple(notes),
            undo=(*base, "undo", "--recipe", recipe),
        )
    ]


ACTIONS: list[ActionSpec] = [
    ActionSpec("image.install_buildx", "Check docker buildx", "kata-virtcca", plan_install_buildx),
    ActionSpec("image.build", "Build the vLLM image and save it", "kata-virtcca", plan_build),
]


# --- image.import (KATA-2.4): the container helper's section --------------------------------------------------------
def plan_image_import(loaded: Any) -> list[PlanStep]:
    from ...kata.image_import import plan_import as ctr_import

    a = kata_answers(loaded)
    notes: list[str] = []
    recipe = recipe_path(loaded, notes)
    notes.append(f"runs: {ctr_import(a).shown} (gunzip -c first when the archive is gzip)")
    notes.append("checks first that containerd's disk has about twice the unpacked image free")
    return [
        PlanStep(
            f"import {a.image.archive} into containerd as {a.image.containerd_ref} (KATA-2.4)",
            [CLI, "kata", "image", "import", "--recipe", recipe],
            where="host",
            changes=f"adds the image {a.image.containerd_ref} to containerd ({a.container.address}, namespace "
            f"{a.container.namespace})",
            notes=tuple(notes),
            undo=(CLI, "kata", "image", "undo-import", "--recipe", recipe),
        )
    ]


ACTIONS.append(
    ActionSpec(
        "image.import", "Import the vLLM image into containerd (ctr image import)", "kata-virtcca", plan_image_import
    )
)
