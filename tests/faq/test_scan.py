"""One scan of an observation's lines, scored again with check results found later, gives exactly what a fresh
match of the observation with those results gives — without reading the lines a second time."""

from __future__ import annotations

import dataclasses

from cai_tui.faq import Observation, default_kb, match, matcher
from tests.faq.cases import EXAMPLES

CHECKS = ({}, {"kms.secret_matches": "fail"}, {"kms.secret_exists": "fail", "oss.credentials": "fail"})


def _observations() -> list[Observation]:
    out = [
        Observation(
            container="cai-docker-cachefs-1", state="exited", exit_code=12, log_lines=[(None, "Password incorrect.")]
        ),
        Observation(container="cai-docker-cachefs-1", health="unhealthy"),
        Observation(
            container="cai-docker-tng-1", state="restarting", restart_count=4, log_lines=[(None, "frobnicated")]
        ),
    ]
    for faq_id, lines in list(EXAMPLES.items())[:20]:
        out.append(Observation(container=f"cai-docker-{faq_id[:3]}-1", log_lines=[(None, line) for line in lines]))
    return out


def test_scan_then_findings_equals_match_with_the_results() -> None:
    kb = default_kb()
    seen = 0
    for obs in _observations():
        once = matcher.scan(obs, kb)
        assert once.findings() == match(obs, kb)
        for results in CHECKS:
            fresh = match(dataclasses.replace(obs, check_results=results), kb)
            assert once.findings(results) == fresh, (obs, results)
            seen += len(fresh)
    assert seen > 20


def test_findings_do_not_read_the_lines_again(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    kb = default_kb()
    obs = Observation(
        container="cai-docker-cachefs-1", state="exited", exit_code=12, log_lines=[(None, "Password incorrect.")]
    )
    once = matcher.scan(obs, kb)
    calls = []
    real = matcher._log_hit
    monkeypatch.setattr(matcher, "_log_hit", lambda *a: calls.append(a) or real(*a))
    with_check = once.findings({"kms.secret_exists": "fail"})
    assert calls == []  # the lines were read by scan(), not again
    assert "kms-secret-missing" in {f.faq_id for f in with_check}  # and the check result still counts
    assert "kms-secret-missing" not in {f.faq_id for f in once.findings()}
