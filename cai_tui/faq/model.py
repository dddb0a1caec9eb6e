"""The FAQ entry format (``assets/faq/*.yaml``): what a failure looks like, why it happens, how to fix it.

Each entry names the services and checks it applies to, the evidence that points at it (log regexes, exit codes,
container states, failing checks), the cause and the fix in English and Chinese, and where the knowledge comes
from (the seed document's FAQ or an upstream project's source). Regexes are compiled here, once, so a bad one is
a load error and the matcher never compiles anything.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

ID_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
CHECK_ID_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
STEP_ID_RE = re.compile(r"^(CAI|KATA)-(\d+(\.\d+)?|F\d+)$")
CJK_RE = re.compile(r"[\u4e00-\u9fff]")
# YAML's folded scalars join lines with a space; the seed's Chinese has none next to its characters and
# punctuation, also not before or after Latin words ("cai.env中配置的MODEL_KEY_ID"); list numbers keep theirs.
_CJK = "\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"
FOLD_SPACE_RE = re.compile(rf"(?<=[{_CJK}])[ \t\n]+|(?<!\d\.)[ \t\n]+(?=[{_CJK}])")  # keeps "1. 检查"

# Where a log or a state comes from: the CAI stack's compose services, the vLLM service, the client-side TNG,
# the Trustee pods (server logs), docker compose's own output, and the kata-virtcca host / guest / CNI.
Service = Literal[
    "oss",
    "attestation-agent",
    "tng",
    "confidential-data-hub",
    "cachefs",
    "inference",
    "tng-client",
    "trustee",
    "compose",
    "host",
    "kata",
    "guest",
    "cni",
]
SERVICES: tuple[str, ...] = get_args(Service)
HealthState = Literal["unhealthy", "exited", "restarting"]
CheckStatus = Literal["fail", "warn", "unknown"]
PatternKind = Literal["log", "exit_code", "health", "check"]

MAX_WEIGHT = 2.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bilingual(_Strict):
    """English and Chinese: the seeds and most users are Chinese-speaking."""

    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)

    @field_validator("en", "zh")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()

    @field_validator("zh")
    @classmethod
    def _zh_is_chinese(cls, v: str) -> str:
        if not CJK_RE.search(v):
            raise ValueError("must be Chinese text (it has no Chinese characters; was the English copied?)")
        return FOLD_SPACE_RE.sub("", v)

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


class Pattern(_Strict):
    """Exactly one kind of evidence: ``log`` (a regex, case-insensitive), ``exit_code``, ``health`` or ``check``.

    ``weight`` (log only) ranks a specific message above a generic one; ``service`` (exit_code/health only)
    narrows the state to one service; ``status`` (check only) is the check result that counts (default fail).
    """

    log: str | None = None
    weight: float | None = Field(None, gt=0, le=MAX_WEIGHT)
    exit_code: int | Literal["nonzero"] | None = None
    health: HealthState | None = None
    check: str | None = None
    status: CheckStatus | None = None
    service: Service | None = None

    _rx: re.Pattern[str] | None = PrivateAttr(None)

    @field_validator("log")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.strip():
            raise ValueError("an empty regex would match every line")
        try:
            rx = re.compile(v, re.IGNORECASE)
        except re.error as e:
            raise ValueError(f"invalid regex {v!r}: {e}") from None
        if rx.search("") is not None:
            raise ValueError(f"regex {v!r} matches the empty string, so it would match every line")
        return v

    @field_validator("exit_code")
    @classmethod
    def _code(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, int) and not 0 < v < 256:
            raise ValueError("exit codes that mean failure are 1..255")
        return v

    @field_validator("check")
    @classmethod
    def _check(cls, v: str | None) -> str | None:
        if v is not None and not CHECK_ID_RE.match(v):
            raise ValueError(f"check ids are dotted lower-case names like kms.secret_matches, not {v!r}")
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> Pattern:
        kinds = [k for k in ("log", "exit_code", "health", "check") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a pattern is exactly one of log:, exit_code:, health:, check:")
        kind = kinds[0]
        if self.weight is not None and kind != "log":
            raise ValueError("weight: goes with log: only")
        if self.status is not None and kind != "check":
            raise ValueError("status: goes with check: only")
        if self.service is not None and kind not in ("exit_code", "health"):
            raise ValueError("service: goes with exit_code: or health: only (log lines match whatever their source)")
        if self.log is not None:
            self._rx = re.compile(self.log, re.IGNORECASE)
        return self

    @property
    def kind(self) -> PatternKind:
        if self.log is not None:
            return "log"
        if self.exit_code is not None:
            return "exit_code"
        if self.health is not None:
            return "health"
        return "check"

    @property
    def regex(self) -> re.Pattern[str]:
        assert self._rx is not None, "not a log pattern"
        return self._rx

    @property
    def log_weight(self) -> float:
        return 1.0 if self.weight is None else self.weight

    @property
    def check_status(self) -> str:
        return self.status or "fail"


class AppliesTo(_Strict):
    services: list[Service] = Field(default_factory=list)
    checks: list[str] = Field(default_factory=list)

    @field_validator("checks")
    @classmethod
    def _checks(cls, v: list[str]) -> list[str]:
        for cid in v:
            if not CHECK_ID_RE.match(cid):
                raise ValueError(f"check ids are dotted lower-case names like kms.secret_matches, not {cid!r}")
        return v


class Source(_Strict):
    kind: Literal["seed", "upstream", "cai-tui"]  # cai-tui: about the tool's own inputs (recipes, references)
    ref: str = Field(min_length=3, description='"seed 000 FAQ", or a repository path / issue URL')


class FaqEntry(_Strict):
    id: str
    title: Bilingual
    applies_to: AppliesTo = Field(default_factory=AppliesTo)
    patterns: list[Pattern] = Field(default_factory=list)
    cause: Bilingual
    fix: Bilingual
    related_checks: list[str] = Field(default_factory=list)
    procedure: list[str] = Field(default_factory=list, description="procedure-map step IDs, e.g. CAI-F4, CAI-2.6")
    source: Source

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not ID_RE.match(v):
            raise ValueError(f"FAQ ids are lower-case words joined by -, like oss-access-denied, not {v!r}")
        return v

    @field_validator("related_checks")
    @classmethod
    def _related(cls, v: list[str]) -> list[str]:
        for cid in v:
            if not CHECK_ID_RE.match(cid):
                raise ValueError(f"check ids are dotted lower-case names like kms.secret_matches, not {cid!r}")
        return v

    @field_validator("procedure")
    @classmethod
    def _steps(cls, v: list[str]) -> list[str]:
        for sid in v:
            if not STEP_ID_RE.match(sid):
                raise ValueError(f"procedure IDs look like CAI-2.6, KATA-3.1 or CAI-F4, not {sid!r}")
        return v

    @model_validator(mode="after")
    def _state_patterns_name_a_service(self) -> FaqEntry:
        for i, p in enumerate(self.patterns):
            if p.kind in ("exit_code", "health") and p.service is None and not self.applies_to.services:
                raise ValueError(
                    f"patterns[{i}]: an exit code or a state means nothing without the service it belongs to; "
                    "set the pattern's service: or applies_to.services"
                )
        return self

    @property
    def log_patterns(self) -> list[Pattern]:
        return [p for p in self.patterns if p.kind == "log"]

    def check_ids(self) -> set[str]:
        """Every check id this entry names (applies_to, related, and check patterns)."""
        ids = set(self.applies_to.checks) | set(self.related_checks)
        ids.update(p.check for p in self.patterns if p.check is not None)
        return ids


class FaqFile(_Strict):
    entries: list[FaqEntry] = Field(min_length=1)
