"""Load and cross-check the stage specs shipped in ``screens/``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ValidationError

from ..recipe.problems import Problem, RecipeError, mapping_line, problems_from_validation
from ..recipe.yaml_io import decode
from .spec import StageSpec

FILE_RE = re.compile(r"^(\d{2})-([a-z][a-z0-9-]*)\.yaml$")
PLACEHOLDER_RE = re.compile(r"(?<!\$)\{([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+)\}")


class StageSpecError(RecipeError):
    """Problems in stage-spec files (same line format as recipe problems)."""


@dataclass
class FlowStages:
    flow: str
    stages: list[StageSpec]
    unknown: dict[str, list[str]] = field(default_factory=dict)  # kind -> ids referenced but not implemented

    def stage(self, stage_id: str) -> StageSpec:
        for s in self.stages:
            if s.id == stage_id:
                return s
        raise KeyError(stage_id)


def answers_model(flow: str) -> type[BaseModel]:
    from ..recipe.model import MODEL_BY_FLOW

    return MODEL_BY_FLOW[flow].model_fields["answers"].annotation  # type: ignore[return-value]


def path_problem(model: type[BaseModel], path: str) -> str | None:
    """Why ``path`` names no field of ``model`` (with did-you-mean), or None when it does: the Draft's resolution."""
    from ..recipe.draft import lookup

    try:
        lookup(model, path)
    except ValueError as e:
        return str(e)
    return None


def path_exists(model: type[BaseModel], path: str) -> bool:
    return path_problem(model, path) is None


def load_stage_file(path: Path, flow: str) -> StageSpec:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    name = str(path)
    m = FILE_RE.match(path.name)
    if not m:
        raise StageSpecError([Problem(name, None, "", "stage files are named NN-<stage-id>.yaml")])
    try:
        doc = YAML(typ="rt").load(decode(path.read_bytes(), name))
    except YAMLError as e:
        raise StageSpecError([Problem(name, None, "", f"malformed YAML: {e}")]) from None
    if not isinstance(doc, dict):
        raise StageSpecError([Problem(name, 1, "", "a stage spec is a mapping")])
    try:
        spec = StageSpec.model_validate({**doc, "flow": flow, "order": int(m.group(1)), "file": name})
    except ValidationError as e:
        raise StageSpecError(
            problems_from_validation(
                e, StageSpec, file=name, line_of=lambda loc: mapping_line(doc, loc), strip_tag=False
            )
        ) from None
    problems: list[Problem] = []
    if spec.id != m.group(2):
        problems.append(Problem(name, mapping_line(doc, ["id"]), "id", f"id {spec.id!r} differs from the file name"))
    model = answers_model(flow)
    for i, f in enumerate(spec.fields):
        why = path_problem(model, f.path)
        if why is not None:
            problems.append(
                Problem(
                    name,
                    mapping_line(doc, ["fields", i]),
                    f"fields[{i}].path",
                    f"{f.path!r} is not a {flow} answer ({why})",
                )
            )
    for i, step in enumerate(spec.steps):
        for answer in step.when:
            why = path_problem(model, answer)
            if why is not None:
                problems.append(
                    Problem(
                        name,
                        mapping_line(doc, ["steps", i, "when"]),
                        f"steps[{i}].when",
                        f"{answer!r} is not a {flow} answer ({why})",
                    )
                )
        for j, d in enumerate(step.do):
            for ph in PLACEHOLDER_RE.findall(d.command or ""):
                why = path_problem(model, ph)
                if why is not None:
                    problems.append(
                        Problem(
                            name,
                            mapping_line(doc, ["steps", i, "do", j]),
                            f"steps[{i}].do[{j}]",
                            f"placeholder {{{ph}}} is not a {flow} answer ({why})",
                        )
                    )
    if problems:
        raise StageSpecError(problems)
    return spec


def _unknown(stages: list[StageSpec]) -> dict[str, list[str]]:
    from ..catalog import known_ids

    out: dict[str, list[str]] = {}
    for kind, getter in (("actions", "actions"), ("checks", "checks"), ("artifacts", "artifacts")):
        known = known_ids(kind)
        ids = sorted({i for s in stages for i in getattr(s, getter)})
        out[kind] = [i for i in ids if i not in known]
    return out


def load_flow(flow: str, root: Path | None = None) -> FlowStages:
    from ..resources import data_dir

    base = (root or data_dir("screens")) / flow
    if not base.is_dir():
        raise StageSpecError([Problem(str(base), None, "", f"no stage folder for flow {flow!r}")])
    stages: list[StageSpec] = []
    problems: list[Problem] = []
    for path in sorted(base.glob("*.yaml")):
        try:
            stages.append(load_stage_file(path, flow))
        except StageSpecError as e:
            problems.extend(e.problems)
    orders = [s.order for s in stages]
    if len(set(orders)) != len(orders):
        problems.append(Problem(str(base), None, "", "two stage files share a number"))
    ids = [s.id for s in stages]
    if len(set(ids)) != len(ids):
        problems.append(Problem(str(base), None, "", "two stage files share an id"))
    if problems:
        raise StageSpecError(problems)
    return FlowStages(flow, stages, _unknown(stages))


@cache
def load_all() -> dict[str, FlowStages]:
    from ..recipe.model import FLOWS

    return {flow: load_flow(flow) for flow in FLOWS}
