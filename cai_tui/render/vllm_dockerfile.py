"""KATA-2.2: the Dockerfile the procedure puts into the vllm-build checkout (seed 002, verbatim) for KATA-2.3."""

from __future__ import annotations

from ..recipe import KataRecipe
from . import templates
from .base import Prompter, Rendered, Renderer
from .shell import Raw, comment, line

STAGES = ("base", "build", "vllm-base", "vllm-openai")  # the FROM … AS names of the seed's Dockerfile


def build_command(recipe: KataRecipe) -> str:
    """KATA-2.3's build line, run in the vllm-build folder."""
    i = recipe.answers.image
    return line(
        [
            Raw("DOCKER_BUILDKIT=1"),
            "docker",
            "build",
            "--build-arg",
            f"max_jobs={i.max_jobs}",
            "--build-arg",
            f"nvcc_threads={i.nvcc_threads}",
            "--target",
            i.target,
            "--tag",
            i.tag,
            ".",
        ]
    )


class VllmDockerfile(Renderer):
    kind = "vllm-dockerfile"
    title = "Dockerfile of the vLLM image, for the vllm-build checkout (KATA-2.2)"
    flow = "kata-virtcca"
    default_path = "/home/pass-through/vllm-build/Dockerfile"
    mode = 0o644

    def render(self, recipe: KataRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        a = recipe.answers
        header = [
            comment(f"KATA-2.2: {a.image.build_dir}/Dockerfile, replacing the one of the vllm-build checkout."),
            comment(f"KATA-2.3 builds it there: {build_command(recipe)}"),
        ]
        text = templates.fill(templates.load("vllm.Dockerfile.tmpl"), {"HEADER": "\n".join(header)})
        notes: tuple[str, ...] = ()
        if a.serve.use_modelscope and a.image.target != "vllm-openai":
            notes = (
                f"target {a.image.target} has no modelscope, which VLLM_USE_MODELSCOPE=True (KATA-5.3) needs: build "
                "--target vllm-openai, or run `pip install modelscope` in the container before serving",
            )
        path = a.image.build_dir.rstrip("/") + "/Dockerfile"
        return Rendered(text=text, mode=self.mode, path=path, notes=notes)


__all__ = ["STAGES", "VllmDockerfile", "build_command"]
