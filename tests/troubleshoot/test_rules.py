"""The troubleshooter's rules without Docker: project choice, container conditions, the confirmation rule, ranking."""

from __future__ import annotations

import pytest

from cai_tui.checks.base import Result
from cai_tui.checks.registry import get
from cai_tui.checks.runner import CheckOutcome
from cai_tui.cli.troubleshoot_cmd import parse_target_args
from cai_tui.faq import Finding, Observation, default_kb, match
from cai_tui.stackinfo import StackContainer, parse_depends
from cai_tui.troubleshoot.collect import InputError, classify, pick_project, service_kind
from cai_tui.troubleshoot.confirm import adjust, attached_for, candidate_checks, verdict
from cai_tui.troubleshoot.rank import rank


def sc(service: str, status: str = "running", **kw: object) -> StackContainer:
    base: dict[str, object] = {"started_at": "2025-01-01T00:00:00Z", "health": None}
    base.update(kw)
    return StackContainer(f"p-{service}-1", "0" * 12, "img", "p", service, status, **base)  # type: ignore[arg-type]


def outcome(check_id: str, status: str) -> CheckOutcome:
    return CheckOutcome(get(check_id), Result(status, f"{check_id} {status}"), 1, "local")  # type: ignore[arg-type]


def test_project_choice() -> None:
    assert pick_project({"root": {"oss", "cachefs"}, "cai-docker": {"oss"}, "web": {"nginx"}}, None) == "cai-docker"
    assert pick_project({"root": {"oss", "cachefs", "inference"}, "x": {"oss"}, "web": {"nginx"}}, None) == "root"
    assert pick_project({"web": {"nginx"}}, None) is None
    assert pick_project({"web": {"nginx"}}, "web") == "web"
    with pytest.raises(InputError, match=r"--project nope: .*projects found: root, web"):
        pick_project({"web": {"nginx"}, "root": {"oss"}}, "nope")


def test_depends_label() -> None:
    assert parse_depends("cachefs:service_healthy:true,oss:service_started:false") == {
        "cachefs": "service_healthy",
        "oss": "service_started",
    }
    assert parse_depends(None) == {} and parse_depends("") == {}


def test_conditions() -> None:
    never = {"started_at": "0001-01-01T00:00:00Z"}
    got = classify(
        [
            sc("oss"),
            sc("tng", health="unhealthy"),
            sc("cachefs", "exited", exit_code=12),
            sc("confidential-data-hub", restart_count=5),
            sc("attestation-agent", health="starting"),
            sc("inference", "created", depends_on={"cachefs": "service_healthy"}, **never),
        ]
    )
    assert {i.c.service: i.condition for i in got} == {
        "oss": "ok",
        "tng": "failing",
        "cachefs": "failing",
        "confidential-data-hub": "failing",  # a crash loop caught between two restarts
        "attestation-agent": "starting",
        "inference": "waiting",
    }
    assert got[-1].waiting_on == ["cachefs"]
    # created and never started, but what it depends on is fine: that is its own failure
    alone = classify([sc("cachefs"), sc("inference", "created", depends_on={"cachefs": "x"}, **never)])
    assert alone[1].condition == "failing" and alone[1].waiting_on == []
    # no compose label: it waits on whatever failed in its project
    nolabel = classify([sc("cachefs", "exited", exit_code=1), sc("inference", "created", **never)])
    assert nolabel[1].condition == "waiting" and nolabel[1].waiting_on == ["cachefs"]


def test_vllm_container_is_the_inference_service() -> None:
    assert service_kind(sc("vllm")) == "inference"
    assert service_kind(sc("llm", command="python3 -m vllm.entrypoints.openai.api_server")) == "inference"
    assert service_kind(sc("cachefs")) == "cachefs" and service_kind(sc("nginx")) == "nginx"


def password_finding(log: bool = True) -> Finding:
    obs = Observation(
        service="cachefs",
        container="p-cachefs-1",
        state="exited",
        exit_code=12,
        log_lines=[("2025-01-01T00:00:00.1Z", "Password incorrect.")] if log else [],
    )
    found = match(obs, default_kb())
    return next(f for f in found if f.faq_id == "model-password-wrong")


def test_confirmation_rule() -> None:
    strong = password_finding()
    weak = password_finding(log=False)
    assert (strong.confidence, weak.confidence) == ("high", "low")
    # a failing related check: low → medium, never high on a check alone; the score gains
    fail = [outcome("kms.secret_matches", "fail")]
    up = adjust(weak, fail)
    assert up.confidence == "medium" and up.score > weak.score
    assert adjust(strong, fail).confidence == "high"
    # a passing related check contradicts: one step down, score halved
    ok = [outcome("kms.secret_matches", "pass"), outcome("trustee.resource", "pass")]
    down = adjust(strong, ok)
    assert down.confidence == "medium" and down.score == pytest.approx(strong.score / 2)
    assert adjust(weak, ok).confidence == "low"
    # one failing beats any number passing; skipped and unknown change nothing
    assert verdict([*ok, outcome("model.encrypted", "fail")], ["kms.secret_matches"]) == "confirmed"
    assert adjust(strong, [outcome("kms.secret_matches", "unknown")]) == strong


def test_skipped_check_brings_its_failed_dependency() -> None:
    f = password_finding()
    outcomes = {"kms.secret_matches": outcome("kms.secret_matches", "skip")}
    outcomes["kms.secret_exists"] = outcome("kms.secret_exists", "fail")
    att = attached_for(f, outcomes)
    assert [o.id for o in att] == ["kms.secret_matches", "kms.secret_exists"]
    assert verdict(att, f.related_checks) == "confirmed"


def test_ranking_puts_unknown_before_state_only_guesses() -> None:
    obs = Observation(service="cachefs", container="p-cachefs-1", state="exited", exit_code=12)
    found = match(obs, default_kb())
    assert found[-1].faq_id == "unknown" and all(f.confidence == "low" for f in found)
    assert rank(found)[0].faq_id == "unknown"
    # a failing related check backs a state-only finding: it goes first
    assert rank(found, {"model-password-wrong"})[0].faq_id == "model-password-wrong"


def test_candidate_checks() -> None:
    strong = password_finding()
    assert candidate_checks([strong], "cachefs", default_kb()) == list(strong.related_checks)
    # nothing strong: the low findings' checks and the check patterns of the service's entries
    obs = Observation(service="cachefs", container="p-cachefs-1", state="exited", exit_code=1)
    ids = candidate_checks(match(obs, default_kb()), "cachefs", default_kb())
    assert "kms.secret_matches" in ids and "model.mounted" in ids and len(ids) <= 8


def test_target_arguments() -> None:
    assert parse_target_args(["instance=ssh://root@h:22", "ssh://u@x", "client=local"], "cai") == [
        ("instance", "ssh://root@h:22"),
        ("instance", "ssh://u@x"),
        ("client", "local"),
    ]
    with pytest.raises(ValueError, match="unknown role 'moon'"):
        parse_target_args(["moon=local"], "cai")
    with pytest.raises(ValueError, match="no URI"):
        parse_target_args(["instance="], "cai")
