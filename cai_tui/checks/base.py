"""The Check contract: a stable dotted id, the stage after which it means something, and an async run.

A result is pass|warn|fail|skip|unknown with evidence (the exact line or value observed, where it came from,
which target, when) and a fix (an FAQ id and one paragraph). Checks change nothing.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..recipe.model import CaiRecipe, KataRecipe
    from ..recipe.redaction import Redactor
    from ..targets.base import Target

Status = Literal["pass", "warn", "fail", "skip", "unknown"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "skip", "unknown")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Evidence:
    observed: str  # the exact line or value (already redacted)
    source: str  # the command, file or URL it came from
    target: str  # Target.name
    at: str = field(default_factory=now_iso)


@dataclass(frozen=True)
class Fix:
    faq_id: str
    text: str


@dataclass
class Result:
    status: Status
    summary: str  # one line a person reads first
    evidence: list[Evidence] = field(default_factory=list)
    fix: Fix | None = None
    # structured facts (e.g. per-GPU states) for JSON and for other checks
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckContext:
    """What a check may use. Secrets are resolved through ``secret()`` so they join the redaction set."""

    recipe: CaiRecipe | KataRecipe | None
    targets: dict[str, Target]  # role -> target ("workstation", "instance", "client", "host", "guest", "local")
    redactor: Redactor
    timeout: float = 10.0
    sysroot: str | None = None
    results: dict[str, Result] = field(default_factory=dict)  # finished checks, for dependents
    prompt: Callable[[str], str] | None = None

    def target(self, role: str) -> Target | None:
        return self.targets.get(role) or (self.targets.get("local") if role in ("workstation", "local") else None)

    def secret(self, ref: Any, field_name: str, **limits: Any) -> str:
        from ..recipe.secrets import resolve_secret

        return resolve_secret(ref, field=field_name, prompt=self.prompt, redactor=self.redactor, **limits)


CheckFn = Callable[[CheckContext], Awaitable[Result]]


@dataclass(frozen=True)
class CheckSpec:
    id: str  # dotted, stable: "trustee.auth_nonce"
    title: str
    stage: str  # the stage id (screens/) after which the check is meaningful
    run: CheckFn
    flows: tuple[str, ...] = ("cai",)
    required: bool = True
    runs_on: str = "workstation"  # target role the check needs; skipped with the reason when that target is absent
    depends: tuple[str, ...] = ()  # ids that must pass (or warn) first; otherwise this check is skipped, naming them
    timeout: float | None = None  # overrides the run's default
