"""Plans of the kata-virtcca doers of KATA-5.x: the confidential container (container.run, container.serve, container.ask)."""

from __future__ import annotations

import shlex
from typing import Any

from ..registry import ActionSpec, PlanStep
from ._common import CLI, kata_answers, recipe_path


def _ctr_line(answers: Any) -> tuple[str, list[str]]:
    from ...kata.container import run_argv
    from ...kata.container_ctr import KataRunError

    try:
        argv, notes = run_argv(answers)
    except KataRunError as e:
        return "", [str(e)]
    return shlex.join(argv), notes


def plan_run(loaded: Any) -> list[PlanStep]:
    a = kata_answers(loaded)
    notes: list[str] = []
    recipe = recipe_path(loaded, notes)
    line, extra = _ctr_line(a)
    notes += extra
    if line:
        notes.append(f"runs: {line}")
    return [
        PlanStep(
            f"start the container {a.container.name} from {a.image.containerd_ref} in netns {a.cni.netns} (KATA-5.1)",
            [CLI, "kata", "container", "run", "--recipe", recipe],
            where="host",
            changes=f"creates the container {a.container.name} and starts its task in containerd "
            f"({a.container.address}, namespace {a.container.namespace}); verified RUNNING with ctr task ls",
            notes=tuple(notes),
            undo=(CLI, "kata", "container", "undo", "--recipe", recipe),
        )
    ]


def plan_serve(loaded: Any) -> list[PlanStep]:
    a = kata_answers(loaded)
    notes: list[str] = []
    recipe = recipe_path(loaded, notes)
    from ...kata.container import serve_command

    notes.append(f"runs in the container (ctr task exec --detach): {serve_command(loaded.recipe)}")
    notes.append(f"waits for GET /health on <address of eth0 in netns {a.cni.netns}>:{a.serve.port}")
    return [
        PlanStep(
            f"serve {a.serve.served_name} with vLLM inside {a.container.name} (KATA-5.3)",
            [CLI, "kata", "container", "serve", "--recipe", recipe],
            where="host",
            changes=f"starts the vLLM server in the container {a.container.name} (it stops with the container: "
            "cai-tui kata container undo)",
            notes=tuple(notes),
            undo=(CLI, "kata", "container", "undo", "--recipe", recipe),
        )
    ]


def plan_ask(loaded: Any) -> list[PlanStep]:
    a = kata_answers(loaded)
    notes: list[str] = []
    recipe = recipe_path(loaded, notes)
    return [
        PlanStep(
            f"ask {a.serve.served_name} in the container the recipe's question (KATA-5.4)",
            [CLI, "kata", "container", "ask", "--recipe", recipe],
            where="host",
            changes="nothing: POST /v1/chat/completions to the container's address and print the answer",
            notes=tuple(notes),
        )
    ]


ACTIONS: list[ActionSpec] = [
    ActionSpec("container.run", "Start the confidential container (ctr run)", "kata-virtcca", plan_run),
    ActionSpec("container.serve", "Serve the model with vLLM in the container", "kata-virtcca", plan_serve),
    ActionSpec("container.ask", "Ask the served model the test question", "kata-virtcca", plan_ask),
]
