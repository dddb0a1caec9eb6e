"""Confirming findings with the doctor's checks, and the rule that turns check results into confidence.

Which checks: for each failing container, the related checks of its medium and high findings (the first three);
when it has none, those of its low findings and the checks that the FAQ entries of its service name in
``check:`` patterns, so a check-only pattern can still find the cause. Only checks that exist in the registry, belong
to the recipe's flow and whose target role is given run; each runs once (with what it depends on), within
``timeout`` seconds, and the whole run within 3 × ``timeout``.

The rule (:func:`adjust`), per finding, over the related checks that ran:

* one of them (or a dependency that made it skip) **failed** → the finding is *confirmed*: its score gains
  ``CHECK_SCORE`` and a ``low`` confidence becomes ``medium`` — never ``high``: a check alone does not prove the
  cause, only a log line does;
* none failed and at least one **passed** → the finding is *contradicted*: its score is halved and its confidence
  drops one step (high → medium → low);
* otherwise (skipped, unknown, warn, nothing ran) it stays as it was.

A failing check also names the fix it found (:class:`~cai_tui.checks.base.Fix`): that is a diagnosis made by
probing the deployed configuration, so (:func:`diagnosed`) the finding with that FAQ id gains ``DIAGNOSIS_SCORE``
(three quarters of a strong log line), and when the matcher had no such finding for a service the entry applies
to, one is added with the check's summary as its evidence — at ``medium`` confidence at most, like every
check-based finding.

The check results also go into the container's :class:`~cai_tui.faq.matcher.Observation` (``check_results``), so
the matcher scores entries whose patterns name a failing check, and the findings are ranked again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..faq.kb import KnowledgeBase
from ..faq.matcher import CHECK_SCORE, UNKNOWN_ID, Confidence, Evidence, Finding

if TYPE_CHECKING:
    from ..checks.base import CheckSpec
    from ..checks.runner import CheckOutcome
    from ..recipe.model import CaiRecipe, KataRecipe
    from ..targets.base import Target

CONFIRM_TOP = 3  # findings per container whose related checks run
DIAGNOSIS_SCORE = 7.5  # a failing related check whose fix is this entry
MAX_PER_CONTAINER = 8
STEP_DOWN: dict[Confidence, Confidence] = {"high": "medium", "medium": "low", "low": "low"}
CONTRADICTED_FACTOR = 0.5


def candidate_checks(findings: Sequence[Finding], service: str, kb: KnowledgeBase) -> list[str]:
    """The check ids worth running for one container's findings (see the module docstring), in order."""
    strong = [f for f in findings if f.faq_id != UNKNOWN_ID and f.confidence in ("high", "medium")][:CONFIRM_TOP]
    ids: list[str] = [cid for f in strong for cid in f.related_checks]
    if not strong:
        ids += [cid for f in findings if f.faq_id != UNKNOWN_ID for cid in f.related_checks]
        ids += [p.check for e in kb.for_service(service) for p in e.patterns if p.check is not None]
    return list(dict.fromkeys(ids))[:MAX_PER_CONTAINER]


def runnable(ids: Iterable[str], recipe: CaiRecipe | KataRecipe, targets: dict[str, Target]) -> list[CheckSpec]:
    """The registered checks among ``ids`` that the recipe's flow has and whose target role is given."""
    from ..checks.base import CheckContext
    from ..checks.registry import all_checks
    from ..recipe import REDACTOR

    specs = all_checks()
    probe = CheckContext(recipe=recipe, targets=targets, redactor=REDACTOR)
    out = []
    for cid in dict.fromkeys(ids):
        spec = specs.get(cid)
        if spec is not None and recipe.flow in spec.flows and probe.target(spec.runs_on) is not None:
            out.append(spec)
    return out


async def run_related(
    wanted: Sequence[CheckSpec], recipe: CaiRecipe | KataRecipe, targets: dict[str, Target], timeout: float
) -> tuple[dict[str, CheckOutcome], list[str]]:
    """Run ``wanted`` (and what they depend on) once each; the outcomes by id and the ids left unfinished."""
    from ..checks.base import CheckContext
    from ..checks.registry import all_checks
    from ..checks.runner import run_checks
    from ..recipe import REDACTOR

    if not wanted:
        return {}, []
    specs = [
        dataclasses.replace(s, timeout=min(s.timeout or timeout, timeout))
        for s in all_checks().values()
        if recipe.flow in s.flows
    ]
    ctx = CheckContext(recipe=recipe, targets=dict(targets), redactor=REDACTOR, timeout=timeout, prompt=None)
    done: list[CheckOutcome] = []
    only = [s.id for s in wanted]
    try:
        await asyncio.wait_for(run_checks(specs, ctx, only=only, timeout=timeout, on_result=done.append), timeout * 3)
    except asyncio.TimeoutError:
        pass
    got = {o.id: o for o in done}
    return got, [cid for cid in only if cid not in got]


def attached_for(finding: Finding, outcomes: dict[str, CheckOutcome]) -> list[CheckOutcome]:
    """The finding's related checks that ran, each followed by the failed dependency that made it skip."""
    out: list[CheckOutcome] = []
    for cid in finding.related_checks:
        o = outcomes.get(cid)
        if o is None:
            continue
        out.append(o)
        if o.result.status == "skip":
            for dep in o.spec.depends:
                d = outcomes.get(dep)
                if d is not None and d.result.status == "fail" and d not in out:
                    out.append(d)
    return out


def verdict(attached: Sequence[CheckOutcome], related: Sequence[str]) -> str:
    """``confirmed``, ``contradicted`` or ``open`` (see the module docstring)."""
    if any(o.result.status == "fail" for o in attached):
        return "confirmed"
    if any(o.result.status == "pass" and o.id in related for o in attached):
        return "contradicted"
    return "open"


def adjust(finding: Finding, attached: Sequence[CheckOutcome]) -> Finding:
    """The finding with the confidence and score the rule gives (unknown findings are left alone)."""
    if finding.faq_id == UNKNOWN_ID:
        return finding
    v = verdict(attached, finding.related_checks)
    if v == "confirmed":
        conf: Confidence = "medium" if finding.confidence == "low" else finding.confidence
        return dataclasses.replace(finding, confidence=conf, score=round(finding.score + CHECK_SCORE, 6))
    if v == "contradicted":
        return dataclasses.replace(
            finding,
            confidence=STEP_DOWN[finding.confidence],
            score=round(finding.score * CONTRADICTED_FACTOR, 6),
        )
    return finding


def diagnosed(
    findings: Sequence[Finding], outcomes: Sequence[CheckOutcome], kb: KnowledgeBase, service: str
) -> list[Finding]:
    """``findings`` with the fixes that failing checks name folded in (see the module docstring)."""
    named: dict[str, CheckOutcome] = {}
    for o in outcomes:
        fix = o.result.fix
        if o.result.status == "fail" and fix is not None and fix.faq_id in kb and fix.faq_id not in named:
            named[fix.faq_id] = o
    out: list[Finding] = []
    for f in findings:
        hit = named.pop(f.faq_id) if f.faq_id in named else None
        if hit is None:
            out.append(f)
            continue
        ev = Evidence(f"{hit.id}: {hit.result.summary}", f"check {hit.id}")
        out.append(
            dataclasses.replace(
                f, score=round(f.score + DIAGNOSIS_SCORE, 6), evidence=(*f.evidence, ev) if f.evidence else (ev,)
            )
        )
    for faq_id, o in named.items():
        entry = kb.get(faq_id)
        if service not in entry.applies_to.services:
            continue
        out.append(
            Finding(
                entry.id,
                entry.title,
                entry.cause,
                entry.fix,
                (Evidence(f"{o.id}: {o.result.summary}", f"check {o.id}"),),
                "medium",
                DIAGNOSIS_SCORE,
                tuple(entry.related_checks),
                entry.source.ref,
            )
        )
    return out
