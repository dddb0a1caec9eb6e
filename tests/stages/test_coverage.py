"""Every procedure-map ID is covered by a stage step with guidance, input, a doer and a verification."""

from pathlib import Path

import pytest

from cai_tui.stages import load_all
from cai_tui.stages.coverage import load_procedure_map, parse_procedure_map, uncovered
from cai_tui.stages.spec import Manual
from tests.helpers import REPO, SHARED

MAP = SHARED / "reference" / "procedure-map.md"
PENDING = Path(__file__).with_name("unimplemented.txt")


@pytest.fixture(scope="module")
def flows():
    return load_all()


@pytest.fixture(scope="module")
def map_steps():
    assert MAP.is_file(), f"{MAP} is missing: the shared reference must sit beside the checkout"
    steps = load_procedure_map(MAP)
    assert len(steps) > 50
    return steps


def test_map_parser():
    steps = parse_procedure_map(
        "| ID | Step | x |\n|---|---|---|\n| CAI-1.5 | Encrypt | y |\n| KATA-0 | Pre | z |\n| nope | a | b |"
    )
    assert [(s.id, s.title) for s in steps] == [("CAI-1.5", "Encrypt"), ("KATA-0", "Pre")]


def test_every_map_id_is_covered(flows, map_steps):
    stages = [s for f in flows.values() for s in f.stages]
    assert uncovered(map_steps, stages) == []


def test_ids_are_covered_by_their_own_flow(flows, map_steps):
    for step in map_steps:
        flow = "cai" if step.id.startswith("CAI") else "kata-virtcca"
        assert any(step.id in s.covers for s in flows[flow].stages), step.id


def test_no_stage_covers_an_id_missing_from_the_map(flows, map_steps):
    known = {m.id for m in map_steps}
    extra = {c for f in flows.values() for s in f.stages for c in s.covers} - known
    assert extra == set()


def test_each_step_has_guidance_input_doer_and_verification(flows):
    for f in flows.values():
        for stage in f.stages:
            for step in stage.steps:
                where = f"{stage.file} {step.covers}"
                assert len(step.guidance.en) > 30 and len(step.guidance.zh) > 10, where
                assert step.input == "none" or step.input, where
                assert step.do, where
                if isinstance(step.verify, Manual):
                    assert len(step.verify.manual.en) > 10, where
                else:
                    assert step.verify, where


def test_both_flows_have_ordered_stages_with_titles_in_both_languages(flows):
    assert set(flows) == {"cai", "kata-virtcca"}
    for f in flows.values():
        orders = [s.order for s in f.stages]
        assert orders == sorted(orders) and len(orders) >= 8
        for s in f.stages:
            assert s.title.en and s.title.zh and s.help.en and s.help.zh
            assert Path(s.file).parent.name == f.flow


def test_unimplemented_ids_are_listed(flows):
    """Actions/checks/artifacts named by stages but not implemented yet: the list must match the file.

    When an implementation lands, its id leaves this file; a new reference to a missing id must be added.
    """
    current = sorted(f"{kind} {i}" for f in flows.values() for kind, ids in f.unknown.items() for i in ids)
    current = sorted(set(current))
    recorded = [line for line in PENDING.read_text().splitlines() if line and not line.startswith("#")]
    assert current == recorded, "update tests/stages/unimplemented.txt:\n" + "\n".join(current)


def test_loader_rejects_bad_specs(tmp_path):
    from cai_tui.stages.loader import StageSpecError, load_flow

    d = tmp_path / "cai"
    d.mkdir()
    good = (REPO / "screens/cai/01-model-source.yaml").read_text()
    (d / "01-model-source.yaml").write_text(good.replace("model.model_id", "model.modle_id"))
    (d / "02-other.yaml").write_text("id: wrong-id\ntitle: {en: a}\n")
    with pytest.raises(StageSpecError) as e:
        load_flow("cai", root=tmp_path)
    text = str(e.value)
    assert "'model.modle_id' is not a cai answer" in text
    assert "02-other.yaml" in text and "title.zh" in text
