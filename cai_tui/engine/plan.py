"""``plan_stage(stage, loaded, targets)``: the ordered work of a stage, worked out before anything runs.

For each documented step (``screens/<flow>/NN-<stage>.yaml``) the plan holds, in order: the registered doers'
command lines (actions), the generated files, the documented commands with every ``{field.path}`` filled from the
recipe, the manual steps (console work), then the stage's checks. Every item names the role it runs on and the checks
that guard it (the step's ``verify:``). A step whose ``when:`` does not match the recipe is kept, marked not
applicable, so a person still sees it. Nothing here changes anything; secrets are never resolved into the plan.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..stages.loader import PLACEHOLDER_RE  # the placeholders the stage loader checks are the ones filled
from .items import Item

if TYPE_CHECKING:
    from ..recipe.yaml_io import LoadedRecipe
    from ..stages.spec import StageSpec, Step

# Generated files the deployment writes on the instance (the others go to the replay's files folder).
INSTANCE_FILES = {"cai-env": "service.env_file", "compose": "service.compose_file"}
# Doers that only diagnose: run when something failed, not as part of a healthy run.
ON_FAILURE = frozenset({"cai.troubleshoot", "bundle.collect"})


class PlanError(Exception):
    """The stage cannot be planned (unknown stage, flow mismatch); the message says what to give instead."""


def _value(loaded: LoadedRecipe, path: str) -> Any:
    from ..recipe.draft import Draft

    return Draft(loaded).value(path)


def unmet(step: Step, loaded: LoadedRecipe) -> tuple[str, list[str], str] | None:
    """The first ``when:`` condition of the step the recipe does not meet, as (path, wanted values, the recipe's
    value or ''); None when the step applies."""
    for path, wanted in step.when.items():
        value = _value(loaded, path)
        text = "" if value is None else str(value)
        if text not in wanted:
            return path, list(wanted), text
    return None


def applies(step: Step, loaded: LoadedRecipe) -> str:
    """'' when the step applies to the recipe, else why not (``when:`` of the stage spec)."""
    miss = unmet(step, loaded)
    if miss is None:
        return ""
    path, wanted, text = miss
    return f"for {' or '.join(wanted)} ({path} is {text or 'unset'})"


def fill(command: str, loaded: LoadedRecipe) -> tuple[str, list[str]]:
    """The command with each ``{field.path}`` replaced by the recipe's value (shell-quoted where needed); a secret
    becomes a read of its reference at run time, never its value. Returns (text, problems)."""
    from ..recipe.secrets import SecretRef

    problems: list[str] = []

    def one(m: re.Match[str]) -> str:
        path = m.group(1)
        value = _value(loaded, path)
        if value is None or value == "" or value == []:
            problems.append(f"answers.{path} is not set: set it in the recipe (this command needs it)")
            return f"<UNSET:{path}>"
        if isinstance(value, SecretRef):
            if value.scheme == "file":
                return f'"$(head -n1 {shell_word(value.target)})"'
            if value.scheme == "env":
                return f'"${{{value.target}}}"'
            problems.append(f"answers.{path} is {value}: the command reads it from env: or file: only")
            return f"<PROMPT:{path}>"
        if isinstance(value, (list, tuple)):
            return shlex.quote(",".join(str(v) for v in value))
        return shell_word(str(value))

    return PLACEHOLDER_RE.sub(one, command), problems


def shell_word(text: str) -> str:
    """``text`` as one shell word; a leading ``~/`` stays outside the quotes so the shell still expands it."""
    if text.startswith("~/") and len(text) > 2:
        return "~/" + shlex.quote(text[2:])
    return shlex.quote(text)


def _check_specs() -> Mapping[str, Any]:
    from ..checks.registry import all_checks

    return all_checks()


def _action_items(
    stage: StageSpec, step: Step, action_id: str, loaded: LoadedRecipe, guard: tuple[str, ...]
) -> list[Item]:
    from ..actions import registry

    spec = registry.get(action_id)
    base = {"stage": stage.id, "covers": step.covers, "kind": "action", "name": action_id, "guard": guard}
    if spec is None:
        return [
            Item(**base, title=action_id, target="workstation", problems=[f"no doer is registered for {action_id}"])  # type: ignore[arg-type]
        ]
    try:
        steps = spec.plan(loaded)
    except ValueError as e:
        return [Item(**base, title=spec.title, target="workstation", problems=[str(e)])]  # type: ignore[arg-type]
    if not steps:
        return [
            Item(**base, title=spec.title, target="workstation", changes="nothing: nothing to do for this recipe")  # type: ignore[arg-type]
        ]
    changing = [s for s in steps if not s.changes.startswith("nothing")]
    chosen = changing or steps  # a dry-run/preview step is shown by the plan of its changing twin
    out = []
    for i, s in enumerate(chosen):
        name = action_id if len(chosen) == 1 else f"{action_id}#{i + 1}"
        problems = list(s.notes) if not s.runnable else []
        if s.manual:  # known before anything starts: a person runs this command (the runner reports it as such)
            out.append(
                Item(
                    **base | {"name": name, "kind": "manual"},  # type: ignore[arg-type]
                    title=f"{s.title} — manual: {s.manual}",
                    target=s.where,
                    text=shlex.join(s.argv),
                    changes="done by a person",
                    problems=problems,
                )
            )
            continue
        out.append(
            Item(
                **base | {"name": name},  # type: ignore[arg-type]
                title=s.title,
                target=s.where,
                argv=tuple(s.argv),
                undo_argv=tuple(s.undo),
                changes=s.changes,
                problems=problems,
            )
        )
    return out


def _file_item(stage: StageSpec, step: Step, kind: str, loaded: LoadedRecipe, guard: tuple[str, ...]) -> Item:
    from ..render import registry

    try:
        renderer = registry.get(kind)
    except KeyError as e:
        return Item(
            stage=stage.id, covers=step.covers, kind="file", name=kind, title=kind, target="workstation",
            guard=guard, problems=[str(e.args[0])],
        )  # fmt: skip
    if kind in INSTANCE_FILES:
        path = str(_value(loaded, INSTANCE_FILES[kind]))
        target = "instance"
    else:
        path = renderer.default_path or f"{kind}.txt"
        target = "workstation"
    return Item(
        stage=stage.id,
        covers=step.covers,
        kind="file",
        name=kind,
        title=renderer.title,
        target=target,
        guard=guard,
        text=path,
        changes=f"writes {path} (mode {renderer.mode:04o}; a changed file is kept as .bak)",
    )


def plan_stage(stage: StageSpec, loaded: LoadedRecipe) -> list[Item]:
    """The items of ``stage`` for ``loaded`` (see the module docstring); file diffs are added by the runner, which
    has the targets (:func:`cai_tui.engine.runner.add_diffs`)."""
    if stage.flow != loaded.recipe.flow:
        raise PlanError(f"stage {stage.id} belongs to the {stage.flow} flow; the recipe's flow is {loaded.recipe.flow}")
    from ..stages.spec import Manual

    checks = _check_specs()
    items: list[Item] = []
    stage_checks: dict[str, str] = {}  # check id -> the step that first names it
    for step in stage.steps:
        guard = tuple(step.verify) if not isinstance(step.verify, Manual) else ()
        why_not = applies(step, loaded)
        doers = [d.action or d.artifact for d in step.do if d.action or d.artifact]
        step_items: list[Item] = []
        n_cmd = 0
        for d in step.do:
            if d.action:
                step_items += _action_items(stage, step, d.action, loaded, guard)
            elif d.artifact:
                step_items.append(_file_item(stage, step, d.artifact, loaded, guard))
            elif d.command:
                n_cmd += 1
                text, problems = fill(d.command.strip(), loaded)
                manual = text.startswith("#") or d.where is None
                kind = "manual" if manual else "command"
                step_items.append(
                    Item(
                        stage=stage.id,
                        covers=step.covers,
                        kind=kind,  # type: ignore[arg-type]
                        name=f"{kind} {n_cmd}",
                        title=(text.lstrip("# ").strip() if manual else f"documented command {n_cmd} of {step.covers}"),
                        target=d.where or "console",
                        guard=guard,
                        text=text,
                        changes="done by a person" if manual or not doers else "nothing: the doer does this step",
                        problems=problems,
                        covered_by=", ".join(x for x in doers if x) if doers and not manual else "",
                    )
                )
        if isinstance(step.verify, Manual):
            step_items.append(
                Item(
                    stage=stage.id,
                    covers=step.covers,
                    kind="manual",
                    name="confirm",
                    title=step.verify.manual.en,
                    target="console",
                    text=step.verify.manual.en,
                    changes="done by a person",
                )
            )
        for it in step_items:
            if why_not:
                it.applies, it.not_applicable = False, f"not for this recipe: {step.covers} is {why_not}"
        items += step_items
        if not why_not:
            for c in guard:
                stage_checks.setdefault(c, step.covers)
    for cid, covers in stage_checks.items():
        spec = checks.get(cid)
        items.append(
            Item(
                stage=stage.id,
                covers=covers,
                kind="check",
                name=cid,
                title=spec.title if spec is not None else cid,
                target=spec.runs_on if spec is not None else "workstation",
                guard=(cid,),
                changes="nothing: a check only reads",
                problems=[] if spec is not None else [f"no check {cid} is registered"],
                required=spec.required if spec is not None else True,
            )
        )
    return items


def plan_flow(loaded: LoadedRecipe, stage_ids: list[str] | None = None) -> list[tuple[StageSpec, list[Item]]]:
    """Every stage of the recipe's flow (or those named), in order, each with its items."""
    from ..stages import load_all

    flow = load_all()[loaded.recipe.flow]
    stages = flow.stages if stage_ids is None else [flow.stage(s) for s in stage_ids]
    return [(s, plan_stage(s, loaded)) for s in stages]


def select_stages(flow_stages: list[StageSpec], *, start: str | None, only: list[str] | None) -> list[StageSpec]:
    """``--from`` and ``--only`` as stage ids, their NN numbers, or a procedure step they cover (CAI-5.1)."""

    def find(key: str) -> int:
        key = key.strip()
        for i, s in enumerate(flow_stages):
            if key in (s.id, f"{s.order:02d}", str(s.order)) or key in s.covers:
                return i
        known = ", ".join(f"{s.order:02d} {s.id}" for s in flow_stages)
        raise PlanError(f"no stage {key!r}; the stages are: {known}")

    chosen = list(flow_stages)
    if start:
        chosen = flow_stages[find(start) :]
    if only:
        wanted = {find(k) for k in only if k.strip()}
        chosen = [s for i, s in enumerate(flow_stages) if i in wanted and s in chosen]
    return chosen


__all__ = ["ON_FAILURE", "PlanError", "applies", "fill", "plan_flow", "plan_stage", "select_stages", "unmet"]
