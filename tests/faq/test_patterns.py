"""Every log regex matches a realistic line, and every example line picks its own entry, unambiguously."""

from __future__ import annotations

from collections import defaultdict

import pytest

from cai_tui.faq import Observation, load_kb, match
from tests.faq.cases import EXAMPLES, NO_LOG_PATTERNS

KB = load_kb()
CASES = [(faq_id, line) for faq_id, lines in EXAMPLES.items() for line in lines]


def test_table_covers_every_entry_with_log_patterns():
    with_logs = {e.id for e in KB if e.log_patterns}
    assert set(EXAMPLES) == with_logs
    assert {e.id for e in KB} - with_logs == NO_LOG_PATTERNS


@pytest.mark.parametrize("faq_id", sorted(EXAMPLES))
def test_every_regex_matches_an_example(faq_id):
    lines = EXAMPLES[faq_id]
    unmatched = [p.log for p in KB.get(faq_id).log_patterns if not any(p.regex.search(ln) for ln in lines)]
    assert unmatched == []


@pytest.mark.parametrize(
    ("faq_id", "line"), CASES, ids=[f"{i}:{n}" for i, ls in EXAMPLES.items() for n in range(len(ls))]
)
def test_example_line_ranks_its_entry_first_without_a_tie(faq_id, line):
    entry = KB.get(faq_id)
    for service in {None, *entry.applies_to.services}:
        findings = match(Observation(service=service, log_lines=[("2025-03-01T08:00:00Z", line)]), KB)
        top = findings[0]
        assert top.faq_id == faq_id, (service, [(f.faq_id, f.score) for f in findings])
        assert len(findings) == 1 or findings[1].score < top.score
        assert top.evidence[0].line == line and top.evidence[0].time == "2025-03-01T08:00:00Z"
        weight = max(p.log_weight for p in entry.log_patterns if p.regex.search(line))
        assert top.confidence == ("high" if weight >= 0.8 else "medium")


def test_no_check_result_is_claimed_by_two_entries():
    claims: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in KB:
        for p in e.patterns:
            if p.check:
                claims[(p.check, p.check_status)].append(e.id)
    assert {k: v for k, v in claims.items() if len(v) > 1} == {}
    assert len(claims) >= 25


@pytest.mark.parametrize(
    ("check", "status", "faq_id"),
    [(p.check, p.check_status, e.id) for e in KB for p in e.patterns if p.check is not None],
)
def test_a_failing_check_alone_gives_a_medium_finding(check, status, faq_id):
    findings = match(Observation(check_results={check: status}), KB)
    assert findings[0].faq_id == faq_id
    assert findings[0].confidence == "medium"
    assert findings[0].evidence[0].source == f"check {check}"
    assert findings[0].evidence[0].line == f"{check}: {status}"
    assert all(f.faq_id != "unknown" for f in findings)  # a check result is evidence


def test_passing_checks_match_nothing():
    results = {p.check: "pass" for e in KB for p in e.patterns if p.check}
    (only,) = match(Observation(check_results=results), KB)
    assert only.faq_id == "unknown"
