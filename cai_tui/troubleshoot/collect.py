"""The CAI stack's containers as the troubleshooter sees them: which project, which state, and the matcher's input.

A container is ``ok`` (running, healthy or without a healthcheck), ``starting`` (health: starting), ``failing``
(exited, dead, restarting, paused, unhealthy, or running after ≥ 3 restarts: a crash loop caught between two
restarts, or created with an engine error) or ``waiting``: created but never started because a service it depends on (compose's ``depends_on`` label,
e.g. inference → cachefs: service_healthy) failed; that one is reported, not the waiting container.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..faq.matcher import CRASH_LOOP_RESTARTS, Observation, lines_from_text
from ..stackinfo import NEVER, StackContainer, engine_name, read_stack_on

CAI_PROJECT = "cai-docker"
STACK_SERVICES = ("oss", "attestation-agent", "tng", "confidential-data-hub", "cachefs", "inference")
HEALTH_PROBES = 3  # the last probes' outputs that are matched (docker keeps 5)

Condition = Literal["ok", "starting", "failing", "waiting"]


class TroubleshootError(Exception):
    """A problem that stops the troubleshooter; ``exit_code`` is what the CLI returns."""

    exit_code = 2


class InputError(TroubleshootError):
    """Bad input: a recipe, target, project or service that does not exist (exit 2)."""

    exit_code = 2


class EngineError(TroubleshootError):
    """The Docker engine cannot be asked (exit 3)."""

    exit_code = 3


@dataclass
class Inspected:
    """A container and what the troubleshooter makes of it."""

    c: StackContainer
    kind: str  # the FAQ's service name: the compose service, "inference" for a vLLM one
    condition: Condition = "ok"
    waiting_on: list[str] = field(default_factory=list)


def service_kind(c: StackContainer) -> str:
    """The FAQ service a container is: its compose service, or ``inference`` for a vLLM container named otherwise."""
    if c.service in STACK_SERVICES:
        return c.service
    text = f"{c.service} {c.image or ''} {c.command}".lower()
    return "inference" if "vllm" in text or "inference" in c.service.lower() else c.service


def stack_projects(projects: dict[str, set[str]]) -> dict[str, set[str]]:
    """The projects that hold at least one CAI service (oss, …, inference)."""
    return {p: s for p, s in projects.items() if s & set(STACK_SERVICES)}


def pick_project(projects: dict[str, set[str]], wanted: str | None) -> str | None:
    """The project to look at: ``wanted`` (InputError naming the projects found when there is none such), else
    ``cai-docker``, else the one with the most CAI services (``root`` when ~/docker-compose.yml includes the
    stack); None when no project holds a CAI service."""
    if wanted is not None:
        if wanted in projects:
            return wanted
        found = ", ".join(sorted(p or "(no name)" for p in projects)) or "none"
        raise InputError(f"--project {wanted}: no compose project of that name on this engine; projects found: {found}")
    cai = stack_projects(projects)
    if not cai:
        return None
    if CAI_PROJECT in cai:
        return CAI_PROJECT
    return sorted(cai, key=lambda p: (-len(cai[p] & set(STACK_SERVICES)), p))[0]


def condition_of(c: StackContainer) -> Condition:
    if c.status in ("exited", "dead", "restarting", "paused"):
        return "failing"
    if c.status == "created":  # never started: waiting on a dependency, unless the engine said why it could not
        return "waiting" if c.never_started and not c.error else "failing"
    if c.health == "unhealthy" or c.restart_count >= CRASH_LOOP_RESTARTS:
        return "failing"
    if c.health == "starting":
        return "starting"
    return "ok"


def classify(containers: Sequence[StackContainer]) -> list[Inspected]:
    """Each container's condition; a never-started one waits on its failed dependencies (from compose's label, or
    every failing container of the project when it has none); with no failed dependency it is failing itself."""
    out = [Inspected(c, service_kind(c), condition_of(c)) for c in containers]
    by_service = {i.c.service: i for i in out}
    for i in out:
        if i.condition != "waiting":
            continue
        if i.c.depends_on:
            deps = [by_service[s] for s in i.c.depends_on if s in by_service]
            i.waiting_on = [d.c.service for d in deps if d.condition in ("failing", "waiting", "starting")]
        else:
            i.waiting_on = [o.c.service for o in out if o.condition == "failing" and o is not i]
        if not i.waiting_on:
            i.condition = "failing"  # created and never started, and nothing it waits for is down
    return out


def engine_lines(c: StackContainer) -> list[tuple[str, str]]:
    """What the engine itself knows about the failure, as (line, where it is shown): its start error (State.Error)
    and the kernel's OOM kill (State.OOMKilled), which no log line of the container records."""
    out = []
    if c.error:
        out.append((c.error.strip(), f"docker inspect {c.name} (State.Error)"))
    if c.oom_killed:
        code = f", exit code {c.exit_code}" if c.exit_code is not None else ""
        out.append((f"State.OOMKilled=true{code}", f"docker inspect {c.name} (State.OOMKilled)"))
    return out


def observation_of(c: StackContainer, kind: str, check_results: Mapping[str, str] | None = None) -> Observation:
    """The matcher's input: state, health, exit code, restart count, the log lines with docker's timestamps, the
    last health probes' outputs, and the engine's own facts (:func:`engine_lines`) as last log lines."""
    lines = lines_from_text(c.logs.decode("utf-8", "replace"))
    when = None if c.finished_at in (None, NEVER) else c.finished_at
    lines.extend((when, line) for line, _ in engine_lines(c))
    health: list[tuple[str | None, str]] = []
    for probe in c.health_log[-HEALTH_PROBES:]:
        for ln in probe.output.splitlines():
            if ln.strip():
                health.append((probe.start, ln))
    return Observation(
        service=kind,
        container=c.name,
        state=c.status,
        health=c.health,
        exit_code=c.exit_code,
        restart_count=c.restart_count,
        log_lines=lines,
        check_results=dict(check_results or {}),
        health_log=health,
    )


@dataclass
class StackView:
    engine: str
    projects: dict[str, set[str]]
    project: str | None
    containers: list[Inspected]


async def read_view(
    url: str | None, *, project: str | None, tail: int, timeout: float, target: Any = None
) -> StackView:
    """The chosen project's containers, classified. InputError for an unknown project, EngineError when the engine
    cannot be asked within ``timeout`` (× 4 for the whole read). With ``target`` (an SSH target) the docker CLI is
    run through it instead of the SDK."""
    engine = engine_name(url, target)
    chosen: list[str | None] = [None]

    def select(projects: dict[str, set[str]]) -> set[str]:
        chosen[0] = pick_project(projects, project)
        return {chosen[0]} if chosen[0] is not None else set()

    try:
        read = await asyncio.wait_for(read_stack_on(url, target, timeout, tail=tail, select=select), timeout * 4)
    except TroubleshootError:
        raise
    except asyncio.TimeoutError:
        raise EngineError(f"cannot ask {engine}: no answer within {timeout * 4:g} s") from None
    except Exception as e:  # docker.errors.DockerException, requests', paramiko's errors: each says why
        raise EngineError(f"cannot ask {engine}: {str(e).strip() or type(e).__name__}") from None
    order = {s: n for n, s in enumerate(STACK_SERVICES)}
    ordered = sorted(read.containers, key=lambda c: (order.get(c.service, len(order)), c.service, c.name))
    return StackView(engine, read.projects, chosen[0], classify(ordered))
