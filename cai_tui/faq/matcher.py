"""Match what a failing service shows (state, exit code, log lines, check results) to FAQ entries.

Scoring, per entry (all pure arithmetic, no I/O; the regexes were compiled when the knowledge base loaded):

* log: 10 × the weight of the best-matching log pattern (the latest line wins among equal weights), plus 0.5 for
  each further distinct log pattern that matched (at most 2 of them);
* exit code: 5; health/state: 3 — both only for the services the entry or the pattern names;
* check: 2.5 per matching check result (at most 2);
* the log and check part is multiplied by 1.3 when the entry applies to the observed service.

Confidence: ``high`` needs a log line matched by a pattern of weight ≥ 0.8 and no other finding with the same
score; a weaker log hit or a check result gives ``medium``; a state or exit code alone is ``low``. When no
finding rests on a log line or a check result, an ``unknown`` finding follows with the most telling lines, so
the user sees the evidence instead of a guess.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .kb import KnowledgeBase, default_kb
from .model import Bilingual, FaqEntry, Pattern

Confidence = Literal["high", "medium", "low"]

LOG_SCORE = 10.0
EXTRA_LOG_SCORE = 0.5
EXTRA_LOG_MAX = 2
EXIT_SCORE = 5.0
HEALTH_SCORE = 3.0
CHECK_SCORE = 2.5
CHECK_MAX = 2
SERVICE_BOOST = 1.3
STRONG_WEIGHT = 0.8
CRASH_LOOP_RESTARTS = 3  # a crash-looping container is often caught "running" between restarts

MAX_LINES = 2000  # the newest lines are matched (~0.1 ms each); a long log's head rarely says why it failed now
MAX_LINE_CHARS = 4000
TELLING_MAX = 8
TAIL_LINES = 3
UNKNOWN_ID = "unknown"

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
TIMESTAMP_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))\s(.*)$")
TELLING_RE = re.compile(
    r"\b(error|fatal|fail(ed|ure|s)?|denied|refused|panic|exception|traceback|timed?[ _-]?out|unable|cannot|can't|"
    r"not found|no such|invalid|forbidden|unauthori[sz]ed|killed|abort(ed)?|mismatch|unhealthy)\b",
    re.IGNORECASE,
)
CONTAINER_RE = re.compile(r"^(?:cai-docker|root|[a-z0-9][a-z0-9_.-]*?)[-_](?P<service>[a-z][a-z0-9-]*?)[-_]\d+$")
KNOWN_CONTAINER_SERVICES = ("oss", "attestation-agent", "tng", "confidential-data-hub", "cachefs", "inference")

UNKNOWN_TITLE = Bilingual(en="No known cause matched", zh="未匹配到已知原因")
UNKNOWN_CAUSE = Bilingual(
    en="None of the known failure patterns matched the evidence. The lines below are the most telling ones found.",
    zh="已知的故障特征均未与现有信息匹配。下面列出的是找到的最能说明问题的日志行。",
)
UNKNOWN_FIX = Bilingual(
    en=(
        "Read the lines below and run `cai-tui doctor` for the stage that failed; its checks narrow the cause. "
        "For the CAI stack, if the FAQ does not solve it, run cai-bug-reporter.sh on the instance (CAI-F5) and "
        "attach ./cai-diagnostic.tar.gz to a support ticket."
    ),
    zh=(
        "请查看下面的日志行，并针对失败的阶段运行 `cai-tui doctor`，由检查项进一步缩小原因范围。对于 CAI 服务，"
        "如果按常见问题仍无法解决，请在实例上运行 cai-bug-reporter.sh（CAI-F5），并在提交工单时上传生成的 "
        "./cai-diagnostic.tar.gz。"
    ),
)


@dataclass(frozen=True)
class Observation:
    """What is known about one failing service. Times are strings as the source gave them (or None)."""

    service: str | None = None  # compose service (oss, cachefs, …); derived from ``container`` when None
    container: str | None = None
    state: str | None = None  # running | exited | restarting | dead | created | paused
    health: str | None = None  # healthy | unhealthy | starting | None (no healthcheck)
    exit_code: int | None = None
    restart_count: int = 0
    log_lines: Sequence[tuple[str | None, str]] = ()
    check_results: Mapping[str, str] = field(default_factory=dict)  # check id -> pass|warn|fail|skip|unknown
    health_log: Sequence[tuple[str | None, str]] = ()  # docker inspect's State.Health.Log outputs
    log_source: str | None = None  # what the log lines are, when not "docker logs <container>"

    @property
    def resolved_service(self) -> str | None:
        return self.service or service_of(self.container)

    @property
    def source_name(self) -> str:
        if self.log_source:
            return self.log_source
        return f"docker logs {self.container}" if self.container else "log"


@dataclass(frozen=True)
class Evidence:
    line: str
    source: str  # "docker logs <container>", "health log", "check <id>", "docker inspect <container>"
    time: str | None = None


@dataclass(frozen=True)
class Finding:
    faq_id: str
    title: Bilingual
    cause: Bilingual
    fix: Bilingual
    evidence: tuple[Evidence, ...]  # strongest first
    confidence: Confidence
    score: float
    related_checks: tuple[str, ...] = ()
    source_ref: str = ""

    @property
    def primary(self) -> Evidence | None:
        return self.evidence[0] if self.evidence else None

    @property
    def has_direct_evidence(self) -> bool:
        """A log line or a check result backs it (not only a container state)."""
        return any(not e.source.startswith("docker inspect") for e in self.evidence) and self.faq_id != UNKNOWN_ID


def service_of(container: str | None) -> str | None:
    """``cai-docker-cachefs-1`` / ``root-confidential-data-hub-1`` → the compose service name."""
    if not container:
        return None
    name = container.lstrip("/")
    for svc in sorted(KNOWN_CONTAINER_SERVICES, key=len, reverse=True):
        if re.search(rf"(^|[-_]){re.escape(svc)}[-_]\d+$", name) or name == svc:
            return svc
    m = CONTAINER_RE.match(name)
    return m.group("service") if m else None


def lines_from_text(text: str) -> list[tuple[str | None, str]]:
    """Split ``docker logs --timestamps`` output (or plain text) into (time, line) pairs."""
    out: list[tuple[str | None, str]] = []
    for raw in text.splitlines():
        m = TIMESTAMP_RE.match(raw)
        out.append((m.group(1), m.group(2)) if m else (None, raw))
    return out


def _clean(line: str) -> str:
    """Without colour codes and trailing space; an overlong line keeps its head and its tail (where errors end up)."""
    line = ANSI_RE.sub("", line).rstrip()
    if len(line) <= MAX_LINE_CHARS:
        return line
    half = MAX_LINE_CHARS // 2
    return f"{line[:half]} … {line[-half:]}"


@dataclass
class _Hit:
    score: float = 0.0
    best_log_weight: float = 0.0
    evidence: list[tuple[float, Evidence]] = field(default_factory=list)  # (rank, evidence)
    log: bool = False
    check: bool = False


def _state_applies(p: Pattern, entry: FaqEntry, service: str | None) -> bool:
    if service is None:
        return False
    if p.service is not None:
        return p.service == service
    return service in entry.applies_to.services


def _state_of(obs: Observation) -> set[str]:
    """The health-pattern values the observation shows."""
    out: set[str] = set()
    if obs.health == "unhealthy":
        out.add("unhealthy")
    if obs.state in ("exited", "dead"):
        out.add("exited")
    if obs.state == "restarting" or obs.restart_count >= CRASH_LOOP_RESTARTS:
        out.add("restarting")
    return out


def _failed_exit(obs: Observation) -> int | None:
    if obs.exit_code is None or obs.state not in ("exited", "dead", "restarting"):
        return None
    return obs.exit_code if obs.exit_code != 0 else None


@dataclass(frozen=True)
class _LogHit:
    """What an entry's log patterns found in the lines: the best line (weight, index, evidence) and every weight."""

    best: tuple[float, int, Evidence] | None
    weights: tuple[float, ...]


def _log_hit(entry: FaqEntry, lines: list[tuple[str | None, str, str]]) -> _LogHit:
    log_weights: list[float] = []
    best: tuple[float, int, Evidence] | None = None
    for p in entry.log_patterns:
        rx = p.regex
        for idx in range(len(lines) - 1, -1, -1):  # newest first
            time, line, source = lines[idx]
            if rx.search(line):
                w = p.log_weight
                log_weights.append(w)
                if best is None or (w, idx) > (best[0], best[1]):
                    best = (w, idx, Evidence(line, source, time))
                break
    return _LogHit(best, tuple(log_weights))


def _score_entry(
    entry: FaqEntry,
    obs: Observation,
    log: _LogHit,
    states: set[str],
    exit_code: int | None,
    service: str | None,
) -> _Hit | None:
    hit = _Hit()
    log_weights = list(log.weights)
    best = log.best
    log_part = 0.0
    if best is not None:
        log_weights.sort(reverse=True)
        extra = min(len(log_weights) - 1, EXTRA_LOG_MAX)
        log_part = LOG_SCORE * best[0] + EXTRA_LOG_SCORE * extra
        hit.best_log_weight = best[0]
        hit.evidence.append((log_part, best[2]))
        hit.log = True
    check_hits = 0
    state_part = 0.0
    exit_done = health_done = False
    where = f"docker inspect {obs.container}" if obs.container else "docker inspect"
    for p in entry.patterns:
        if p.check is not None:
            got = obs.check_results.get(p.check)
            if got == p.check_status and check_hits < CHECK_MAX:
                check_hits += 1
                hit.evidence.append((CHECK_SCORE, Evidence(f"{p.check}: {got}", f"check {p.check}")))
        elif p.exit_code is not None:
            hits = exit_code is not None and p.exit_code in ("nonzero", exit_code)
            if hits and not exit_done and _state_applies(p, entry, service):
                exit_done = True
                state_part += EXIT_SCORE
                hit.evidence.append((EXIT_SCORE, Evidence(f"state: {obs.state}, exit code {exit_code}", where)))
        elif p.health in states and not health_done and _state_applies(p, entry, service):
            health_done = True
            state_part += HEALTH_SCORE
            shown = f"health: {obs.health}" if p.health == "unhealthy" else f"state: {obs.state}"
            hit.evidence.append((HEALTH_SCORE, Evidence(shown, where)))
    hit.check = check_hits > 0
    direct = log_part + CHECK_SCORE * check_hits
    if direct == 0 and state_part == 0:
        return None
    if direct and service is not None and service in entry.applies_to.services:
        direct *= SERVICE_BOOST
    hit.score = round(direct + state_part, 6)
    hit.evidence.sort(key=lambda r: -r[0])  # stable: log, then checks in pattern order, then state
    return hit


def _confidence(hit: _Hit) -> Confidence:
    if hit.log and hit.best_log_weight >= STRONG_WEIGHT:
        return "high"
    if hit.log or hit.check:
        return "medium"
    return "low"


def telling_lines(obs: Observation) -> list[Evidence]:
    """Error-looking lines (the last few) and the last lines, oldest first, without repeats."""
    source = obs.source_name
    lines = [(t, _clean(raw)) for t, raw in obs.log_lines[-MAX_LINES:]]
    lines = [(t, s) for t, s in lines if s.strip()]
    picked = [i for i, (_, s) in enumerate(lines) if TELLING_RE.search(s)][-TELLING_MAX:]
    tail = list(range(max(0, len(lines) - TAIL_LINES), len(lines)))
    out = [Evidence(lines[i][1], source, lines[i][0]) for i in sorted(set(picked) | set(tail))]
    out.extend(Evidence(_clean(s), "health log", t) for t, s in obs.health_log[-TAIL_LINES:] if s.strip())
    return out


def _unknown(obs: Observation) -> Finding:
    evidence = telling_lines(obs)
    if not evidence:
        state = ", ".join(
            x
            for x in (
                f"state: {obs.state}" if obs.state else "",
                f"health: {obs.health}" if obs.health else "",
                f"exit code {obs.exit_code}" if obs.exit_code is not None else "",
            )
            if x
        )
        where = f"docker inspect {obs.container}" if obs.container else "docker inspect"
        evidence = [Evidence(state or "(no log lines and no state)", where)]
    return Finding(UNKNOWN_ID, UNKNOWN_TITLE, UNKNOWN_CAUSE, UNKNOWN_FIX, tuple(evidence), "low", 0.0)


@dataclass(frozen=True)
class Scan:
    """One observation's log lines read against every entry's log patterns — the costly part of matching, done once.
    :meth:`findings` scores the entries from it, with the observation's check results or with ones found later (the
    troubleshooter runs the related checks after a first look), without reading the lines again."""

    observation: Observation
    kb: KnowledgeBase
    logs: tuple[tuple[FaqEntry, _LogHit], ...]  # every entry of the knowledge base, in order

    def findings(self, check_results: Mapping[str, str] | None = None, *, limit: int = 5) -> list[Finding]:
        """Ranked findings: best first, ties by id; an ``unknown`` one when nothing direct matched.
        ``check_results`` replace the observation's own when given."""
        obs = self.observation
        if check_results is not None:
            obs = dataclasses.replace(obs, check_results=check_results)
        service = obs.resolved_service
        states = _state_of(obs)
        exit_code = _failed_exit(obs)
        scored: list[tuple[FaqEntry, _Hit]] = []
        for entry, log in self.logs:
            hit = _score_entry(entry, obs, log, states, exit_code, service)
            if hit is not None:
                scored.append((entry, hit))
        scored.sort(key=lambda eh: (-eh[1].score, eh[0].id))
        findings: list[Finding] = []
        for entry, hit in scored[:limit]:
            conf = _confidence(hit)
            tied = sum(1 for _, other in scored if other.score == hit.score) > 1
            if conf == "high" and tied:
                conf = "medium"
            findings.append(
                Finding(
                    entry.id,
                    entry.title,
                    entry.cause,
                    entry.fix,
                    tuple(e for _, e in hit.evidence),
                    conf,
                    hit.score,
                    tuple(entry.related_checks),
                    entry.source.ref,
                )
            )
        if not any(h.log or h.check for _, h in scored):
            findings.append(_unknown(obs))
        return findings


def scan(observation: Observation, kb: KnowledgeBase | None = None) -> Scan:
    """Read the observation's log lines (and health log) against every entry of ``kb`` once; see :class:`Scan`."""
    kb = kb if kb is not None else default_kb()
    source = observation.source_name
    lines: list[tuple[str | None, str, str]] = [(t, _clean(s), source) for t, s in observation.log_lines[-MAX_LINES:]]
    lines.extend((t, _clean(s), "health log") for t, s in observation.health_log[-MAX_LINES:])
    return Scan(observation, kb, tuple((entry, _log_hit(entry, lines)) for entry in kb.entries))


def match(observation: Observation, kb: KnowledgeBase | None = None, *, limit: int = 5) -> list[Finding]:
    """Ranked findings for one observation: best first, ties by id; an ``unknown`` one when nothing direct matched."""
    return scan(observation, kb).findings(limit=limit)
