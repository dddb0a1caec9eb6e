"""The recipe Draft: get/set by dotted path with the model's validation; failed sets change nothing; saves keep comments."""

from __future__ import annotations

import re
import shutil
import stat
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cai_tui.recipe import Draft, FieldValue, Problem, RecipeError, load_recipe
from cai_tui.recipe.draft import UnknownField, _unwrap, leaf_paths
from cai_tui.recipe.secrets import SecretRef
from cai_tui.recipe.yaml_io import dumps_recipe
from cai_tui.stages import load_all
from cai_tui.stages.loader import StageSpecError, answers_model, load_stage_file
from tests.helpers import REPO

EXAMPLES = sorted((REPO / "recipes").glob("*.yaml"))
LAB = REPO / "recipes/lab-demo.yaml"
CAI = REPO / "recipes/cai-qwen2.5-3b-beijing.yaml"
KATA = REPO / "recipes/kata-virtcca-qwen1.5-1.8b.yaml"


def _stage_paths(flow: str) -> list[str]:
    return sorted({p for s in load_all()[flow].stages for p in s.field_paths})


def _example_paths() -> list[tuple[Path, str]]:
    return [(path, p) for path in EXAMPLES for p in _stage_paths(load_recipe(path).recipe.flow)]


def _secret_paths(flow: str) -> list[str]:
    model = answers_model(flow)
    out = []
    for p in leaf_paths(model):
        info = _field(model, p)
        if _unwrap(info.annotation) is SecretRef:
            out.append(p)
    return out


def _field(model, path: str):
    *parents, last = path.split(".")
    for part in parents:
        model = _unwrap(model.model_fields[part].annotation)
    return model.model_fields[last]


def _snapshot(draft: Draft) -> str:
    return dumps_recipe(draft.loaded)


def test_every_example_has_stage_fields_to_check():
    pairs = _example_paths()
    assert len(EXAMPLES) >= 3
    assert {path for path, _ in pairs} == set(EXAMPLES)  # both flows' stage specs name fields
    assert len(pairs) > 100


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_get_set_round_trip_for_every_stage_field(path: Path):
    draft = Draft.open(path)
    flow_paths = _stage_paths(draft.flow)
    before = {p: draft.get(p) for p in flow_paths}
    set_count = 0
    for p, value in before.items():
        if value.text is None:
            assert draft.set(p, "") is None, p  # clearing an unset optional field is fine and changes nothing
            assert draft.get(p) == value, p
            continue
        problem = draft.set(p, value.text)
        assert problem is None, f"{p}: {problem}"
        again = draft.get(p)
        assert again.text == value.text, p
        assert again.is_secret == value.is_secret, p
        assert not again.is_default, p  # written explicitly now
        set_count += 1
    assert set_count > 10
    # setting every value to what it was leaves every other reading alone
    for p, value in before.items():
        assert draft.get(p).text == value.text


def test_round_trip_of_explicit_values_is_not_a_change():
    draft = Draft.open(LAB)
    for p in _stage_paths("cai"):
        value = draft.get(p)
        if value.text is not None and not value.is_default:
            assert draft.set(p, value.text) is None
    assert not draft.dirty
    assert draft.changed  # they were set, to the same values
    assert _snapshot(draft) == LAB.read_text()


def test_get_reads_defaults_secrets_and_unset():
    draft = Draft.open(LAB)
    assert draft.get("oss.bucket_path") == FieldValue("lab-models:/demo-gocryptfs/")
    assert draft.get("answers.oss.bucket_path") == FieldValue("lab-models:/demo-gocryptfs/")
    assert draft.get("model.password") == FieldValue("file:~/.local/state/cai-tui/lab/model-password", False, True)
    assert draft.get("tng.max_tokens") == FieldValue("132", is_default=True)
    assert draft.get("service.sharing_peers") == FieldValue("[]", is_default=True)
    assert draft.get("trustee.verify_tls") == FieldValue("true", is_default=True)
    assert draft.get("model.sam.key") == FieldValue(None, is_default=True)
    assert draft.get("targets.workstation") == FieldValue("local")
    assert draft.get("targets.instance") == FieldValue(None, is_default=True)
    assert draft.value("service.port") == 8080 and draft.value("tng.max_tokens") == 132
    assert draft.value("model.password") == SecretRef("file", "~/.local/state/cai-tui/lab/model-password")
    assert draft.value("model.sam.key") is None and draft.value("targets.workstation") == "local"
    with pytest.raises(UnknownField):
        draft.value("service.prot")
    with pytest.raises(UnknownField) as e:
        draft.get("oss.bucket_pth")
    assert "did you mean 'oss.bucket_path'" in str(e.value)


# --- bad values ------------------------------------------------------------------------------------

BAD = [
    (LAB, "service.port", "abc", "whole number"),
    (LAB, "service.port", "70000", "1–65535"),
    (LAB, "service.port", "", "cannot be empty"),
    (LAB, "tng.max_tokens", "1.5", "whole number"),
    (LAB, "trustee.verify_tls", "maybe", "true or false"),
    (LAB, "model.source", "ftp", "'modelscope', 'local' or 'public-encrypted'"),
    (LAB, "model.source", "", "one of: modelscope, local, public-encrypted"),
    (LAB, "oss.bucket_path", "no-colon", "<bucket>:/<path>"),
    (LAB, "trustee.url", "alb.example.com/trustee", "scheme"),
    (LAB, "instance.public_ip", "300.1.1.1", "IP address"),
    (LAB, "service.sharing_peers", "10.0.0.1, nope", "IP address"),
    (LAB, "model.model_id", "", "at least 3"),
    (LAB, "targets.instance", "ftp://host", "ssh://user@host"),
    (LAB, "model", "x", "is a section"),
    (KATA, "serve.gpu_memory_utilization", "1.5", "at most 1"),
    (KATA, "serve.gpu_memory_utilization", "lots", "a number"),
    (KATA, "cni.subnet", "8.8.8.0/24", "private range"),
    (KATA, "gpu.bdf", "81:00", "DDDD:BB:SS.F"),
    (KATA, "gpu.iommu_group", "-1", "greater than or equal to 0"),
]


@pytest.mark.parametrize(("recipe", "path", "text", "says"), BAD, ids=[f"{b[1]}={b[2]!r}" for b in BAD])
def test_bad_value_keeps_the_old_one_and_names_the_path(recipe: Path, path: str, text: str, says: str):
    draft = Draft.open(recipe)
    old, before = draft.get(path) if path != "model" else None, _snapshot(draft)
    problem = draft.set(path, text)
    assert isinstance(problem, Problem)
    shown = path if path.startswith("targets.") else f"answers.{path}"
    assert problem.field == shown
    assert problem.file == str(recipe)
    assert problem.line is not None and problem.line > 0
    assert says in problem.message
    assert str(problem).startswith(f"{recipe}:{problem.line}: {shown}: ")
    if old is not None:
        assert draft.get(path) == old
    assert _snapshot(draft) == before
    assert not draft.dirty and draft.changed == []


def test_unknown_path_says_did_you_mean():
    draft = Draft.open(LAB)
    for path, hint in [
        ("oss.bucket_pth", "did you mean 'oss.bucket_path'?"),
        ("os.bucket_path", "did you mean 'oss.bucket_path'?"),
        ("targets.instanse", "did you mean 'instance'?"),
        ("answers.trustee.helm.regoin", "did you mean 'trustee.helm.region'?"),
    ]:
        problem = draft.set(path, "x")
        assert problem is not None, path
        assert hint in problem.message, problem
        assert problem.field.endswith(path.removeprefix("answers.")), problem
    problem = draft.set("zzz", "x")
    assert problem is not None and "known keys here: model, oss" in problem.message
    problem = draft.set("oss.bucket_path.deeper", "x")
    assert problem is not None and "is a value, not a section" in problem.message
    problem = draft.set("waivers", "x")
    assert problem is not None and problem.field == "waivers"
    assert not draft.dirty


@pytest.mark.parametrize("recipe", [LAB, CAI], ids=lambda p: p.name)
def test_inline_secret_is_refused_without_echo(recipe: Path):
    draft = Draft.open(recipe)
    paths = _secret_paths("cai")
    assert {"model.password", "oss.access_key_id", "oss.access_key_secret", "model.sam.key"} <= set(paths)
    secret = "Tr0ub4dor&3-inline-value"
    for p in paths:
        old = draft.get(p)
        problem = draft.set(p, secret)
        assert problem is not None, p
        assert problem.field == f"answers.{p}"
        assert "inline secret" in problem.message and "env:VARNAME" in problem.message
        assert secret not in str(problem)
        assert draft.get(p) == old
        malformed = draft.set(p, "env:has space")
        assert malformed is not None and "malformed secret reference" in malformed.message
        assert "has space" not in str(malformed)
    assert not draft.dirty


def test_secret_reference_and_clearing():
    draft = Draft.open(CAI)
    assert draft.set("model.sam.key", "env:SAM_KEY") is None
    assert draft.get("model.sam.key") == FieldValue("env:SAM_KEY", False, True)
    assert draft.set("model.sam.key", "") is None
    assert draft.get("model.sam.key").text is None
    assert draft.set("kms.access_key_id", "keyring:cai/kms-ak") is None
    assert draft.get("kms.access_key_id").is_secret


# --- model validators ------------------------------------------------------------------------------


def test_section_validator_method_inputs_runs():
    draft = Draft.open(LAB)  # source: local with a local_dir
    problem = draft.set("model.local_dir", "")
    assert problem is not None
    assert problem.field == "answers.model.local_dir"
    assert "source is local, so local_dir must name" in problem.message
    assert draft.get("model.local_dir").text == "~/.local/state/cai-tui/lab/demo-model"
    cai = Draft.open(CAI)  # source: modelscope
    assert cai.set("model.local_dir", "") is None  # not needed for modelscope
    problem = cai.set("model.source", "local")
    assert problem is not None and "local_dir must name" in problem.message
    assert cai.get("model.source").text != "local"
    assert cai.set("model.local_dir", "/models/qwen") is None
    assert cai.set("model.source", "local") is None


def test_answers_validator_cross_checks_runs():
    draft = Draft.open(LAB)  # both OSS keys set
    problem = draft.set("oss.access_key_id", "")
    assert problem is not None
    assert problem.field == "answers.oss.access_key_id"
    assert "give both or neither" in problem.message
    assert draft.get("oss.access_key_id").text is not None
    assert draft.set("oss.access_key_secret", "") is None
    assert draft.set("oss.access_key_id", "") is None  # neither: fine


def test_kata_validator_hook_under_guest_path_runs():
    draft = Draft.open(KATA)
    old = draft.get("driver.hook_path")
    problem = draft.set("driver.hook_path", "/opt/hooks/prestart/nvidia.sh")
    assert problem is not None and "must lie under kata.guest_hook_path" in problem.message
    assert draft.get("driver.hook_path") == old
    assert draft.set("kata.guest_hook_path", "/opt/hooks") is not None  # the existing hook is not under it
    assert draft.validate() == []


def test_validate_whole_recipe_and_per_stage():
    stages = {s.id: s for s in load_all()["cai"].stages}
    with_port = next(s for s in stages.values() if "service.port" in s.field_paths)
    without_port = next(s for s in stages.values() if not any(p.startswith("service.") for p in s.field_paths))
    for path in EXAMPLES:
        assert Draft.open(path).validate() == []
    draft = Draft.open(LAB)
    object.__setattr__(draft.recipe.answers.service, "port", 0)  # changed behind the Draft's back
    problems = draft.validate()
    assert [p.field for p in problems] == ["answers.service.port"]
    port_line = LAB.read_text().splitlines().index("    port: 8080") + 1
    assert problems[0].line == port_line and problems[0].file == str(LAB)
    assert draft.validate(with_port) == problems
    assert draft.validate(without_port) == []


# --- values by type --------------------------------------------------------------------------------


def test_types_are_parsed_for_their_field():
    draft = Draft.open(LAB)
    assert draft.set("service.port", " 9090 ") is None
    assert draft.recipe.answers.service.port == 9090
    assert draft.set("trustee.verify_tls", "no") is None
    assert draft.recipe.answers.trustee.verify_tls is False
    assert draft.get("trustee.verify_tls").text == "false"
    assert draft.set("service.sharing_peers", "10.0.0.2,  10.0.0.3 ,") is None
    assert draft.recipe.answers.service.sharing_peers == ["10.0.0.2", "10.0.0.3"]
    assert draft.get("service.sharing_peers").text == "10.0.0.2, 10.0.0.3"
    assert draft.set("service.sharing_peers", "") is None
    assert draft.recipe.answers.service.sharing_peers == []
    assert draft.set("service.deploy_with", "docker") is None
    assert draft.set("targets.instance", "ssh://root@203.0.113.7") is None
    assert draft.recipe.targets.instance == "ssh://root@203.0.113.7"
    assert draft.changed == [
        "service.port",
        "trustee.verify_tls",
        "service.sharing_peers",
        "service.deploy_with",
        "targets.instance",
    ]
    kata = Draft.open(KATA)
    assert kata.set("serve.gpu_memory_utilization", "0.9") is None
    assert kata.recipe.answers.serve.gpu_memory_utilization == 0.9
    assert kata.set("rootfs.packages", "tar, gcc") is None
    assert kata.recipe.answers.rootfs.packages == ["tar", "gcc"]
    assert kata.set("gpu.bdf", "0000:81:00.0") is None
    assert kata.set("gpu.bdf", "") is None
    assert kata.get("gpu.bdf") == FieldValue(None, is_default=True)


STAGE_PATHS = {flow: _stage_paths(flow) for flow in ("cai", "kata-virtcca")}


@pytest.mark.slow  # 300 examples through the whole recipe model: ~6 s
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    recipe=st.sampled_from(EXAMPLES),
    pick=st.integers(min_value=0),
    text=st.one_of(
        st.text(max_size=40),
        st.sampled_from(["", "[]", "0", "-1", "1", "true", "no", "1.5", "env:X", "file:/x", "prompt", "10.0.0.1"]),
    ),
)
def test_any_text_applies_fully_or_not_at_all(recipe: Path, pick: int, text: str):
    draft = Draft.open(recipe)
    paths = STAGE_PATHS[draft.flow]
    path = paths[pick % len(paths)]
    before = _snapshot(draft)
    problem = draft.set(path, text)
    if problem is None:
        assert draft.validate() == []
        value = draft.get(path)
        if value.text is not None:
            assert draft.set(path, value.text) is None  # what get shows, set takes back
            assert draft.get(path) == value
    else:
        assert problem.field == f"answers.{path}"
        assert problem.message
        assert _snapshot(draft) == before
        assert not draft.dirty


# --- saving ----------------------------------------------------------------------------------------


def _changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    import difflib

    removed, added = [], []
    for line in difflib.ndiff(old.splitlines(), new.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


@pytest.mark.parametrize("source", EXAMPLES, ids=lambda p: p.name)
def test_save_changes_only_the_keys_set_and_keeps_comments(tmp_path: Path, source: Path):
    path = tmp_path / source.name
    shutil.copyfile(source, path)
    original = path.read_text()
    draft = Draft.open(path)
    if draft.flow == "cai":
        changes = {"oss.bucket_path": "other-bucket:/m/", "tng.max_tokens": "64"}
    else:
        changes = {"serve.port": "8001", "gpu.iommu_group": "7"}
    written_before = sum(not draft.get(p).is_default for p in changes)
    for p, text in changes.items():
        assert draft.set(p, text) is None
    assert draft.dirty
    draft.save()
    assert not draft.dirty and draft.changed == []
    new = path.read_text()
    removed, added = _changed_lines(original, new)
    headers = [line for line in added if line.rstrip().endswith(":")]  # a section the file did not have yet
    assert {h.strip() for h in headers} <= {f"{part}:" for p in changes for part in p.split(".")[:-1]}, headers
    assert len(added) - len(headers) == 2 and len(removed) == written_before, (removed, added)
    assert new.count("#") == original.count("#")  # inline comments too (on the changed lines as well)
    for p, text in changes.items():
        key = p.rsplit(".", 1)[1]
        assert any(line.split("#")[0].strip() == f"{key}: {text}" for line in added), (p, added)
    original_comments = [line for line in original.splitlines() if line.lstrip().startswith("#")]
    assert original_comments and all(c in new.splitlines() for c in original_comments)
    assert (tmp_path / (source.name + ".bak")).read_text() == original
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reread = Draft.open(path)
    for p, text in changes.items():
        assert reread.get(p) == FieldValue(text)


def test_clearing_removes_the_key_and_save_to_another_path(tmp_path: Path):
    path = tmp_path / "lab.yaml"
    shutil.copyfile(LAB, path)
    draft = Draft.open(path)
    assert draft.set("model.cipher_dir", "") is None
    assert draft.get("model.cipher_dir") == FieldValue(None, is_default=True)
    other = tmp_path / "copy.yaml"
    assert draft.save(other) == other
    removed, added = _changed_lines(LAB.read_text(), other.read_text())
    assert removed == ["    cipher_dir: ~/.local/state/cai-tui/lab/demo-cipher"] and added == []
    assert path.read_text() == LAB.read_text()  # the original stays as it was
    assert not (tmp_path / "copy.yaml.bak").exists()
    assert draft.loaded.path == other


def test_save_without_a_path_says_so():
    from cai_tui.recipe import loads_recipe

    draft = Draft(loads_recipe(LAB.read_text(), "<text>"))
    assert draft.set("service.port", "9000") is None
    with pytest.raises(RecipeError, match="give the path to save it to"):
        draft.save()


def test_open_bad_file_is_a_recipe_error(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nflow: cai\nname: x\nanswers:\n  oss: {bucket_path: nope}\n")
    with pytest.raises(RecipeError, match=re.escape("bad.yaml:5: answers.oss.bucket_path")):
        Draft.open(bad)


# --- stage specs use the same resolution -----------------------------------------------------------


def test_stage_loader_rejects_a_field_path_with_did_you_mean(tmp_path: Path):
    source = REPO / "screens/cai/01-model-source.yaml"
    broken = tmp_path / source.name
    broken.write_text(source.read_text().replace("oss.bucket_path", "oss.bucket_pth"))  # the field and its uses
    with pytest.raises(StageSpecError) as e:
        load_stage_file(broken, "cai")
    assert "'oss.bucket_pth' is not a cai answer" in str(e.value)
    assert "did you mean 'oss.bucket_path'?" in str(e.value)
    assert load_stage_file(source, "cai").id == "model-source"


def test_tui_reads_values_through_the_core():
    from cai_tui.tui import values

    answers = load_recipe(LAB).recipe.answers
    assert values.FieldValue is FieldValue
    assert values.answer_value(answers, "oss.bucket_path") == FieldValue("lab-models:/demo-gocryptfs/")
    assert values.answer_value(answers, "no.such") == FieldValue(None)
    assert typing.get_type_hints(values.answer_value)["return"] is FieldValue
