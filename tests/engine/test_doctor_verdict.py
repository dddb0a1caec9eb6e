"""The verdict of a run of checks (engine.session.doctor_verdict), the one doctor, its --json, doctor --hosts and the
bundle share: a required check that fails or could not be judged (unknown) fails the run unless waived; a run where
every check was skipped checked nothing."""

from __future__ import annotations

import pytest

from cai_tui.checks.base import Result
from cai_tui.checks.registry import all_checks
from cai_tui.checks.runner import CheckOutcome
from cai_tui.engine.session import doctor_document, doctor_verdict, waived_failures
from cai_tui.fleet.doctor import HostResult
from cai_tui.recipe.model import Waiver

REQUIRED, OPTIONAL = "oss.bucket", "oss.bucket_policy"


def outcome(cid: str, status: str) -> CheckOutcome:
    return CheckOutcome(all_checks()[cid], Result(status, f"{cid}: {status}"), 1, "local")  # type: ignore[arg-type]


def test_the_checks_named_here_are_required_and_optional() -> None:
    assert all_checks()[REQUIRED].required and not all_checks()[OPTIONAL].required


@pytest.mark.parametrize(
    ("statuses", "state", "code"),
    [
        ({REQUIRED: "pass", OPTIONAL: "skip"}, "pass", 0),
        ({REQUIRED: "warn", OPTIONAL: "fail"}, "pass", 0),  # an optional check never fails the run
        ({REQUIRED: "pass", OPTIONAL: "unknown"}, "pass", 0),
        ({REQUIRED: "unknown", OPTIONAL: "pass"}, "fail", 1),  # could not be judged: counts as a failure
        ({REQUIRED: "fail", OPTIONAL: "pass"}, "fail", 1),
        ({REQUIRED: "skip", OPTIONAL: "skip"}, "nothing-checked", 2),
        ({}, "nothing-checked", 2),
    ],
)
def test_verdict(statuses: dict[str, str], state: str, code: int) -> None:
    outcomes = [outcome(c, s) for c, s in statuses.items()]
    v = doctor_verdict(outcomes, {})
    assert (v.state, v.exit_code) == (state, code)
    assert v.unknown == ([REQUIRED] if statuses.get(REQUIRED) == "unknown" else [])
    assert v.failed == ([REQUIRED] if statuses.get(REQUIRED) == "fail" else [])
    assert doctor_document(outcomes, {}, None)["verdict"] == v.to_json()


@pytest.mark.parametrize("status", ["fail", "unknown"])
def test_a_waiver_covers_a_failure_and_an_unknown(status: str) -> None:
    outcomes = [outcome(REQUIRED, status), outcome("oss.endpoint", "pass")]
    waived = waived_failures(outcomes, [Waiver(check="oss.*", reason="granted on the instance only")])
    assert waived == {REQUIRED: "granted on the instance only"}  # a passing check is not "waived"
    assert doctor_verdict(outcomes, waived).exit_code == 0
    assert doctor_document(outcomes, waived, None)["checks"][0]["waived"] == "granted on the instance only"


def test_a_fleet_host_is_judged_by_the_same_rule() -> None:
    host = HostResult("host01", "127.0.0.1", outcomes=[outcome(REQUIRED, "unknown"), outcome(OPTIONAL, "fail")])
    assert [o.id for o in host.failed_checks] == [REQUIRED]
    host.waived = waived_failures(host.outcomes, [Waiver(check=REQUIRED, reason="checked by the platform team")])
    assert host.failed_checks == []
