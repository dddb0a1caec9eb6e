"""The troubleshooter reads each failing container's lines against the FAQ once, even when the related checks ran
and their results changed the findings; and its options are checked once, with the option's name, for any caller.

Two real containers fail (cachefs: ``Password incorrect.``; attestation-agent: an unknown error); the embedded lab's
``kms-secret-missing`` fault makes kms.secret_exists fail, which adds the entry whose ``check:`` pattern names it.
:func:`cai_tui.faq.matcher.scan` is wrapped (the real one runs) to count the scans per container.
"""

from __future__ import annotations

import collections
import json
import math
from typing import Any

import pytest

from cai_tui.cli.main import main
from cai_tui.faq import matcher
from cai_tui.troubleshoot import InputError, TroubleshootOptions
from tests.targets.docker_lab import ensure_engine, ensure_image
from tests.troubleshoot import stack


@pytest.mark.slow
def test_each_failing_container_is_matched_once(
    lab: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_engine()
    image = ensure_image(tmp_path)
    project = stack.new_project("ctso")
    cachefs = stack.run(project, "cachefs", image, "echo 'Password incorrect.' >&2; exit 12")
    other = stack.run(project, "attestation-agent", image, "echo 'fatal: widget exploded' >&2; exit 3")
    scans: collections.Counter[str] = collections.Counter()
    matches: list[str] = []
    real_scan, real_match = matcher.scan, matcher.match

    def counting_scan(obs: matcher.Observation, kb: Any = None) -> matcher.Scan:
        scans[obs.container or "?"] += 1
        return real_scan(obs, kb)

    def counting_match(obs: matcher.Observation, kb: Any = None, **kw: Any) -> list[matcher.Finding]:
        matches.append(obs.container or "?")
        return real_match(obs, kb, **kw)

    monkeypatch.setattr(matcher, "scan", counting_scan)
    monkeypatch.setattr(matcher, "match", counting_match)
    try:
        stack.wait_for(cachefs, lambda a: a["State"]["Status"] == "exited", "exited")
        stack.wait_for(other, lambda a: a["State"]["Status"] == "exited", "exited")
        lab.faults.set("kms-secret-missing", True)
        capsys.readouterr()
        rc = main(["troubleshoot", "--recipe", str(lab.recipe_path), "--project", project, "--json", "--timeout", "8"])
        out = capsys.readouterr().out
    finally:
        stack.remove_project(project)
    assert rc == 1
    doc = json.loads(out)
    assert doc["confirm"] == "ran"
    mine = {f["faq_id"] for f in doc["findings"] if f["container"] == cachefs}
    # the check results were folded in: the entry found only through kms.secret_exists's failure is there
    assert {"model-password-wrong", "kms-secret-missing"} <= mine, mine
    assert scans == {cachefs: 1, other: 1}, scans
    assert matches == []  # nothing matched the containers a second time by another road


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"lang": "fr"}, "--lang fr: en or zh"),
        ({"tail": 0}, "--tail 0: a positive number of log lines"),
        ({"timeout": 0.0}, "--timeout 0: a positive number of seconds"),
        ({"timeout": math.nan}, "--timeout nan: a positive number of seconds"),
    ],
)
def test_bad_options_are_refused_when_made(kw: dict[str, Any], message: str) -> None:
    """What the TUI and the engine get (they build the options themselves), as the CLI does."""
    with pytest.raises(InputError) as err:
        TroubleshootOptions(**kw)
    assert str(err.value) == message
    TroubleshootOptions(lang="zh", tail=1, timeout=0.5)  # good ones pass
