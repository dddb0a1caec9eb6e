"""The lab's recipe offers only the steps that apply to it, and carries every value the lab's own steps need
(issue 15, point 8): a step whose ``when:`` the recipe does not meet is planned as not applicable (so never run),
and the CAI-4.1 bucket policy plans and renders with the lab OSS's own account UID."""

from __future__ import annotations

import json

import pytest

from cai_tui.engine.plan import plan_flow, plan_stage
from cai_tui.lab.oss.credentials import DEFAULT_UID
from cai_tui.recipe import load_recipe
from cai_tui.recipe.draft import Draft
from cai_tui.render import registry as renderers
from cai_tui.stages import load_all
from tests.helpers import REPO

LAB_RECIPE = REPO / "recipes" / "lab-demo.yaml"


@pytest.fixture(scope="module")
def lab_recipe():
    return load_recipe(LAB_RECIPE)


def test_no_item_is_offered_whose_step_does_not_apply_to_the_lab_recipe(lab_recipe) -> None:
    draft = Draft(lab_recipe)
    stages = {s.id: s for s in load_all()["cai"].stages}
    offered: list[str] = []
    for stage, items in plan_flow(lab_recipe):
        for step in stage.steps:
            # the precondition read from the recipe itself, not through the planner
            holds = all(str(draft.get(path).text or "") in wanted for path, wanted in step.when.items())
            mine = [it for it in items if it.covers == step.covers and it.kind != "check"]
            if not holds:
                assert mine, f"{step.covers}: its items are kept (shown as not applicable)"
                offered += [f"{step.covers} {it.name}" for it in mine if it.applies]
                assert all(it.not_applicable.startswith("not for this recipe") for it in mine)
    assert offered == [], f"offered although their step does not apply: {offered}"
    first = {it.name: it for it in plan_stage(stages["model-source"], lab_recipe)}
    assert draft.get("model.source").text == "local"
    use_public = first["model.use_public"]
    assert not use_public.applies and "public-encrypted" in use_public.not_applicable
    assert first["model.download"].applies  # the step for local sources still is


def test_the_lab_recipe_plans_and_renders_the_bucket_policy_with_the_lab_account(lab_recipe) -> None:
    assert lab_recipe.recipe.answers.oss.account_uid == DEFAULT_UID  # the owner the lab OSS checks policies for
    access = {s.id: s for s in load_all()["cai"].stages}["access"]
    items = [it for it in plan_stage(access, lab_recipe) if it.covers == "CAI-4.1" and it.kind != "check"]
    assert items and all(it.applies for it in items)
    assert [p for it in items for p in it.problems] == []
    applying = next(it for it in items if it.kind == "action" and "--apply" in it.argv)
    assert applying.argv[:3] == ("cai-tui", "model", "bucket-policy")
    policy = json.loads(
        renderers.get("bucket-policy").render(lab_recipe.recipe).text
    )  # raises on "the account UID is needed"
    resources = {r for st in policy["Statement"] for r in st["Resource"]}
    assert f"acs:oss:*:{DEFAULT_UID}:lab-models" in resources
