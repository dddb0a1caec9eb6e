"""What every front end shares when it works on a recipe: the targets per role (and closing them), the recipe's
waivers, running checks, and the doctor document.

``cai-tui doctor``, ``bundle``, ``troubleshoot`` and ``replay`` (and the wizard) build their targets here, so a
recipe's ``targets:`` mean the same thing everywhere. Light imports only: the CLI imports this module.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..checks.base import Result
    from ..checks.runner import CheckOutcome
    from ..recipe.model import CaiRecipe, KataRecipe
    from ..recipe.yaml_io import LoadedRecipe
    from ..targets.base import Target

SCHEMA = "cai-tui/doctor/v1"


def role_for(flow: str | None, uri: str) -> str:
    """The role ``--target`` stands for: the CAI instance; the kata host (or its guest for a container URI)."""
    if flow == "kata-virtcca":
        return "guest" if uri.startswith(("docker://", "ctr://")) else "host"
    return "instance"


def _recipe_targets(recipe: CaiRecipe | KataRecipe | None) -> dict[str, str]:
    if recipe is None:
        return {}
    out: dict[str, str] = {}
    for role, uri in recipe.targets.model_dump().items():
        if uri and role != "workstation":
            out[role] = str(uri)
    return out


def _waiver_for(check_id: str, waivers: list[Any]) -> str | None:

    for w in waivers:
        if fnmatch.fnmatchcase(check_id, w.check):
            return str(w.reason)
    return None


def build_targets(
    rec: CaiRecipe | KataRecipe | None, flow: str | None, target: str | None, sysroot: Path | None
) -> dict[str, Target]:
    """The role → Target map doctor (and bundle) use: the recipe's targets, ``--target`` standing for the flow's
    main role (see :func:`role_for`), ``--sysroot`` re-rooting that role's file reads. ValueError for a bad URI."""
    from ..targets.local import LocalTarget
    from ..targets.parse import target_from_uri

    local = LocalTarget()
    targets: dict[str, Target] = {"workstation": local, "local": local}
    for role, uri in _recipe_targets(rec).items():
        targets[role] = local if uri == "local" else target_from_uri(uri)
    role = role_for(flow, target or "")
    if target is not None:
        targets[role] = local if target.strip() == "local" else target_from_uri(target)
    if sysroot is not None:
        from ..targets.capture import is_capture_stream, target_for_sysroot

        if not sysroot.is_dir() and not (sysroot.is_file() and is_capture_stream(sysroot)):
            raise ValueError(f"--sysroot {sysroot}: not a directory (nor a capture stream file)")
        inner = targets.get(role) if target is not None else None
        targets[role] = target_for_sysroot(sysroot, inner=inner)
    return targets


def _outcome_doc(o: CheckOutcome, waived: dict[str, str]) -> dict[str, Any]:
    r = o.result
    doc: dict[str, Any] = {
        "id": o.id,
        "title": o.spec.title,
        "stage": o.spec.stage,
        "status": r.status,
        "required": o.spec.required,
        "summary": r.summary,
        "evidence": [{"observed": e.observed, "source": e.source, "target": e.target, "at": e.at} for e in r.evidence],
        "fix": {"faq_id": r.fix.faq_id, "text": r.fix.text} if r.fix is not None else None,
        "duration_ms": o.duration_ms,
        "target": o.target_name,
    }
    if o.id in waived:
        doc["waived"] = waived[o.id]
    return doc


def doctor_document(outcomes: list[CheckOutcome], waived: dict[str, str], source: str | None) -> dict[str, Any]:
    """The ``cai-tui/doctor/v1`` document of a run (what ``doctor --json`` prints), with the run's verdict."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.result.status] = counts.get(o.result.status, 0) + 1
    verdict = doctor_verdict(outcomes, waived)
    return {
        "schema": SCHEMA,
        "recipe": source,
        "counts": counts,
        "verdict": verdict.to_json(),
        "checks": [_outcome_doc(o, waived) for o in outcomes],
    }


BLOCKING = ("fail", "unknown")  # what a required check must not end as (unless waived); what a waiver covers


def waived_failures(outcomes: list[CheckOutcome], waivers: list[Any]) -> dict[str, str]:
    """check id → waiver reason, for the failed or unknown checks a recipe waiver covers."""
    return {o.id: w for o in outcomes if o.result.status in BLOCKING and (w := _waiver_for(o.id, waivers))}


def blocking_outcomes(outcomes: list[CheckOutcome], waived: dict[str, str]) -> list[CheckOutcome]:
    """The required checks that failed or could not be judged (``unknown``), not waived: each fails the run."""
    return [o for o in outcomes if o.result.status in BLOCKING and o.spec.required and o.id not in waived]


@dataclass(frozen=True)
class DoctorVerdict:
    """Did a run of checks pass: 0 when every required check passed (or was waived), 1 when a required one failed
    or is unknown, 2 when nothing was checked (every check skipped: no recipe, no target)."""

    state: str  # pass | fail | nothing-checked
    exit_code: int
    failed: list[str] = field(default_factory=list)  # required, not waived, status fail
    unknown: list[str] = field(default_factory=list)  # required, not waived, status unknown

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "exit_code": self.exit_code, "failed": self.failed, "unknown": self.unknown}


def doctor_verdict(outcomes: list[CheckOutcome], waived: dict[str, str]) -> DoctorVerdict:
    """The verdict ``doctor`` (and its ``--json``, ``--hosts`` per host, the bundle) gives a run of checks."""
    blocking = blocking_outcomes(outcomes, waived)
    failed = [o.id for o in blocking if o.result.status == "fail"]
    unknown = [o.id for o in blocking if o.result.status == "unknown"]
    if blocking:
        return DoctorVerdict("fail", 1, failed, unknown)
    if all(o.result.status == "skip" for o in outcomes):
        return DoctorVerdict("nothing-checked", 2)
    return DoctorVerdict("pass", 0)


def with_overrides(targets: dict[str, Target], overrides: Iterable[tuple[str, str]]) -> dict[str, Target]:
    """``targets`` with each (role, uri) of ``overrides`` (``--target``) in place of the recipe's."""
    from ..targets.local import LocalTarget
    from ..targets.parse import target_from_uri

    for role, uri in overrides:
        targets[role] = LocalTarget() if uri.strip() == "local" else target_from_uri(uri)
    return targets


def waiver_for(check_id: str, waivers: Iterable[Any]) -> str | None:
    """The reason of the first waiver whose glob covers ``check_id``."""
    return _waiver_for(check_id, list(waivers))


class Session:
    """One recipe being worked on: its targets per role (built once, closed once), its waivers, its checks.

    ``overrides``: (role, uri) pairs that replace the recipe's targets (``--target``)."""

    def __init__(
        self,
        loaded: LoadedRecipe,
        *,
        overrides: Iterable[tuple[str, str]] = (),
        prompt: Callable[[str], str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.loaded = loaded
        self.recipe = loaded.recipe
        self.prompt = prompt
        self.timeout = timeout
        self.targets = with_overrides(build_targets(self.recipe, self.recipe.flow, None, None), overrides)

    @property
    def waivers(self) -> list[Any]:
        return list(self.recipe.waivers)

    def waived(self, check_id: str) -> str | None:
        return _waiver_for(check_id, self.waivers)

    def target(self, role: str) -> Target | None:
        if role in ("workstation", "local"):
            return self.targets["workstation"]
        return self.targets.get(role)

    async def run_checks(
        self, ids: list[str], *, on_result: Callable[[CheckOutcome], None] | None = None
    ) -> dict[str, Result]:
        """Run the checks ``ids`` (what they depend on runs too, as doctor does); id → result."""
        from ..checks.base import CheckContext
        from ..checks.registry import all_checks
        from ..checks.runner import run_checks
        from ..recipe import REDACTOR

        specs = [s for s in all_checks().values() if self.recipe.flow in s.flows]
        known = {s.id for s in specs}
        wanted = [i for i in ids if i in known]
        if not wanted:
            return {}
        ctx = CheckContext(
            recipe=self.recipe, targets=self.targets, redactor=REDACTOR, timeout=self.timeout, prompt=self.prompt
        )
        outcomes = await run_checks(specs, ctx, only=wanted, timeout=self.timeout, on_result=on_result)
        return {o.id: o.result for o in outcomes if o.id in wanted}

    async def aclose(self) -> None:
        """Close each distinct target once; a failing close is ignored (it must not hide results)."""
        for t in {id(t): t for t in self.targets.values()}.values():
            try:
                await t.close()
            except Exception:
                pass


__all__ = [
    "BLOCKING",
    "SCHEMA",
    "DoctorVerdict",
    "Session",
    "blocking_outcomes",
    "build_targets",
    "doctor_document",
    "doctor_verdict",
    "role_for",
    "waived_failures",
    "waiver_for",
    "with_overrides",
]
