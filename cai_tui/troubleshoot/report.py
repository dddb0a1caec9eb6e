"""The troubleshooter's report: the ``cai-tui/troubleshoot/v1`` JSON document and the text a person reads.

Every string that came from Docker or from a check was scrubbed before it got here (see :func:`troubleshoot`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "cai-tui/troubleshoot/v1"
EXIT_OK, EXIT_FAILED = 0, 1
ALTERNATIVES = 2  # shown after the top finding in the text report
SYMBOLS = {"ok": "✓", "starting": "…", "failing": "✗", "waiting": "⏸"}
CHECK_SYMBOLS = {"pass": "✓", "fail": "✗", "warn": "!", "skip": "–", "unknown": "?"}

LABELS = {
    "en": {
        "head": "cai-tui troubleshoot: project {project} on {engine}",
        "none": "no CAI container found on {engine}",
        "containers": "containers:",
        "waiting": "waiting on {deps} (not started: its dependency failed)",
        "evidence": "evidence",
        "cause": "cause",
        "fix": "fix",
        "checks": "checks",
        "telling": "most telling lines",
        "also": "also possible",
        "confidence": "confidence",
        "summary_bad": "{n} failing container(s)",
        "summary_ok": "no failing container",
        "waiting_n": "{n} waiting on a dependency",
    },
    "zh": {
        "head": "cai-tui troubleshoot：项目 {project}，Docker 引擎 {engine}",
        "none": "在 {engine} 上未找到 CAI 容器",
        "containers": "容器：",
        "waiting": "等待 {deps}（未启动：其依赖的服务失败）",
        "evidence": "证据",
        "cause": "原因",
        "fix": "解决方法",
        "checks": "检查",
        "telling": "最能说明问题的日志行",
        "also": "其他可能",
        "confidence": "置信度",
        "summary_bad": "{n} 个容器失败",
        "summary_ok": "没有失败的容器",
        "waiting_n": "{n} 个容器在等待依赖",
    },
}


@dataclass(frozen=True)
class EvidenceLine:
    line: str
    source: str
    time: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "source": self.source, "time": self.time}


@dataclass(frozen=True)
class CheckRef:
    id: str
    status: str
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "summary": self.summary}


@dataclass
class ContainerReport:
    service: str
    container: str
    state: str
    health: str | None
    exit_code: int | None
    restart_count: int
    condition: str  # ok | starting | failing | waiting
    project: str = ""
    kind: str = ""  # the FAQ service it is matched as (inference for a vLLM container)
    waiting_on: list[str] = field(default_factory=list)
    oom_killed: bool | None = None
    error: str | None = None

    @property
    def state_text(self) -> str:
        if self.state in ("exited", "dead"):
            text = f"{self.state} ({self.exit_code})"
        elif self.health:
            text = f"{self.state}, {self.health}"
        else:
            text = self.state
        if self.restart_count:
            text += f", {self.restart_count} restarts"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "container": self.container,
            "state": self.state,
            "health": self.health,
            "exit_code": self.exit_code,
            "restart_count": self.restart_count,
            "condition": self.condition,
            "waiting_on": self.waiting_on,
            "oom_killed": self.oom_killed,
            "error": self.error,
        }


@dataclass
class ReportFinding:
    service: str
    container: str
    state: str
    faq_id: str
    title: str
    cause: str
    fix: str
    evidence: EvidenceLine  # the line that proves it (for unknown: the last telling line)
    confidence: str
    rank: int
    score: float
    lines: list[EvidenceLine] = field(default_factory=list)  # every piece of evidence; for unknown the telling lines
    related_checks: list[CheckRef] = field(default_factory=list)
    confirmation: str = "not-run"  # confirmed | contradicted | open | not-run

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "container": self.container,
            "state": self.state,
            "faq_id": self.faq_id,
            "title": self.title,
            "cause": self.cause,
            "fix": self.fix,
            "evidence": self.evidence.to_dict(),
            "confidence": self.confidence,
            "rank": self.rank,
            "score": self.score,
            "lines": [e.to_dict() for e in self.lines],
            "related_checks": [c.to_dict() for c in self.related_checks],
            "confirmation": self.confirmation,
        }


@dataclass
class TroubleshootReport:
    project: str | None
    engine: str
    containers: list[ContainerReport]
    findings: list[ReportFinding]  # per failing container, rank 1..n
    projects: dict[str, list[str]] = field(default_factory=dict)  # every compose project seen -> its services
    lang: str = "en"
    confirm: str = "skipped"  # ran | skipped: why
    notes: list[str] = field(default_factory=list)
    deployed_env: dict[str, Any] | None = None  # {path, target, drift: [{var, field, kind, message}]}; None: not read

    @property
    def failing(self) -> list[ContainerReport]:
        return [c for c in self.containers if c.condition == "failing"]

    @property
    def exit_code(self) -> int:
        """0 nothing failing, 1 a failing container (or no CAI container at all)."""
        return EXIT_FAILED if self.failing or not self.containers else EXIT_OK

    def findings_for(self, service: str) -> list[ReportFinding]:
        """A service's (or container's) findings, rank order."""
        return sorted((f for f in self.findings if service in (f.service, f.container)), key=lambda f: f.rank)

    def top(self, service: str) -> ReportFinding | None:
        found = self.findings_for(service)
        return found[0] if found else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "project": self.project,
            "engine": self.engine,
            "projects": self.projects,
            "lang": self.lang,
            "confirm": self.confirm,
            "containers": [c.to_dict() for c in self.containers],
            "findings": [f.to_dict() for f in self.findings],
            "deployed_env": self.deployed_env,
            "notes": self.notes,
            "exit_code": self.exit_code,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_text(self) -> str:
        """The report for a person: every container's state, then per failing one its top finding with the proving
        line, the fix, the checks that were run and up to two alternatives."""
        t = LABELS.get(self.lang, LABELS["en"])
        out: list[str] = []
        if self.project is None or not self.containers:
            out.append(t["none"].format(engine=self.engine))
        else:
            out.append(t["head"].format(project=self.project, engine=self.engine))
            out.append(t["containers"])
            wide = max(len(c.service) for c in self.containers)
            wide_c = max(len(c.container) for c in self.containers)
            for c in self.containers:
                state = c.state_text
                if c.condition == "waiting":
                    state += " — " + t["waiting"].format(deps=", ".join(c.waiting_on))
                sym = SYMBOLS.get(c.condition, "?")
                out.append(f"  {sym} {c.service:<{wide}}  {c.container:<{wide_c}}  {state}")
        for c in self.failing:
            found = self.findings_for(c.container)
            out.append("")
            out.append(f"✗ {c.service} ({c.container}): {c.state_text}")
            if not found:
                continue
            top = found[0]
            out.append(f"  [{top.faq_id}] {top.title}  ({t['confidence']}: {top.confidence})")
            if top.faq_id == "unknown":
                out.append(f"  {t['telling']}:")
                for e in top.lines:
                    out.append(f"    {e.line}")
                    out.append(f"      — {_where(e)}")
            else:
                out.append(f"  {t['evidence']}: {top.evidence.line}")
                out.append(f"      — {_where(top.evidence)}")
            out.append(f"  {t['cause']}: {top.cause}")
            out.append(f"  {t['fix']}: {top.fix}")
            if top.related_checks:
                out.append(f"  {t['checks']}:")
                for r in top.related_checks:
                    out.append(f"    {CHECK_SYMBOLS.get(r.status, '?')} {r.id}: {r.summary}")
            alts = found[1 : 1 + ALTERNATIVES]
            if alts:
                out.append(f"  {t['also']}:")
                for a in alts:
                    out.append(f"    {a.rank}. [{a.faq_id}] {a.title} ({a.confidence}) — {a.evidence.line}")
        out.append("")
        waiting = [c for c in self.containers if c.condition == "waiting"]
        summary = t["summary_bad"].format(n=len(self.failing)) if self.failing else t["summary_ok"]
        if waiting:
            summary += "; " + t["waiting_n"].format(n=len(waiting))
        for n in self.notes:
            out.append(f"note: {n}")
        out.append(summary)
        return "\n".join(out) + "\n"


def _where(e: EvidenceLine) -> str:
    return f"{e.source} @ {e.time}" if e.time else e.source
