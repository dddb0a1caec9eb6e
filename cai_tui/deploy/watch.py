"""Watching a compose project's containers until all are healthy, one fails, or time runs out.

Two ways to ask the engine, both reading the same ``docker inspect`` documents:
* this machine: the docker SDK on the local socket (``DOCKER_HOST`` honoured);
* an SSH target: ``docker ps`` / ``docker inspect`` run through our own :class:`~cai_tui.targets.ssh.SshTarget`.
  The SDK's ``ssh://`` transport was not used there on purpose: its paramiko adapter verifies host keys only against
  ``~/.ssh/known_hosts`` (``load_system_host_keys()`` + ``RejectPolicy``) and authenticates with ``~/.ssh/config``'s
  key, ignoring the known_hosts file, identity and ``--accept-host-key`` decision the target was opened with; with
  ``use_ssh_client=True`` it shells out to ``ssh``, whose host key policy is whatever the user's ssh config says.
  Going through the target keeps one connection whose host key was verified the way every other step's was.

A container is *ok* when running and healthy (or running without a healthcheck, or exited 0), *failed* when exited
non-zero, dead, unhealthy, restarting (or running again after restarts without being healthy), or never started
although compose has finished; anything else is still *starting*.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..events import Event, EventSink, note
from ..stackinfo import DEPENDS_LABEL, PROJECT_LABEL, SERVICE_LABEL, inspect_via, parse_depends
from ..targets.base import Target

ENGINE_TIMEOUT = 30.0
LOG_TAIL = 5
POLL_S = 0.5
OK_VERDICTS = ("healthy", "running", "completed")
_ISO = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


class EngineUnavailable(Exception):
    """The Docker engine cannot be asked (exit 3)."""


def parse_time(text: str | None) -> float | None:
    """Docker's RFC 3339 times (nanoseconds, ``Z``) → epoch seconds; None for the zero time or junk."""
    if not text or text.startswith("0001-"):
        return None
    m = _ISO.match(text.strip())
    if not m:
        return None
    frac = (m[2] or "0")[:6].ljust(6, "0")
    tz = m[3] or "Z"
    tz = "+00:00" if tz == "Z" else tz
    try:
        return datetime.fromisoformat(f"{m[1]}.{frac}{tz}").timestamp()
    except ValueError:
        return None


@dataclass
class ContainerState:
    id: str
    name: str
    project: str
    service: str
    status: str  # created, running, restarting, exited, paused, dead, or "missing" (service never created)
    health: str | None
    exit_code: int | None
    restarts: int = 0
    oom_killed: bool = False
    healthy_after_s: float | None = None  # from the engine's start time to the first passing probe it still logs
    health_output: str | None = None
    verdict: str = "starting"  # healthy | running | completed | starting | failed | waiting | timed_out
    logs: list[str] = field(default_factory=list)
    depends_on: tuple[str, ...] = ()  # compose services it waits for (compose's depends_on label)
    waiting_on: tuple[str, ...] = ()  # those of them that failed, when it was never started because of them

    @property
    def state(self) -> str:
        if self.status == "exited":
            return f"exited ({self.exit_code})" + (", OOM-killed" if self.oom_killed else "")
        if self.status == "missing":
            return "not created"
        if self.status == "created":
            if self.waiting_on:
                return f"created, not started: waiting on {', '.join(self.waiting_on)}, which failed"
            return "created (not started)"
        text = f"{self.status}, {self.health}" if self.health else self.status
        return text + (f", {self.restarts} restarts" if self.restarts else "")

    @property
    def ok(self) -> bool:
        return self.verdict in OK_VERDICTS


def classify(state: ContainerState, *, compose_done: bool) -> str:
    s = state
    if s.status == "missing":
        return "failed" if compose_done else "starting"
    if s.status in ("dead", "restarting", "paused", "removing") or s.health == "unhealthy" or s.oom_killed:
        return "failed"
    if s.status == "exited":
        return "completed" if s.exit_code == 0 else "failed"
    if s.status == "running":
        if s.health == "healthy":
            return "healthy"
        if s.restarts > 0:
            return "failed"  # started again by its restart policy and not healthy: a crash loop
        return "running" if s.health is None else "starting"
    if s.status == "created":
        return "failed" if compose_done else "starting"
    return "starting"


def _first_pass(log: Iterable[dict[str, Any]]) -> float | None:
    for entry in log:
        if entry.get("ExitCode") == 0:
            t = parse_time(entry.get("End"))
            if t is not None:
                return t
    return None


def from_inspect(attrs: dict[str, Any]) -> ContainerState:
    """One ``docker inspect`` document → :class:`ContainerState` (verdict not yet set)."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    st = attrs.get("State") or {}
    health = st.get("Health") or {}
    log = health.get("Log") or []
    started = parse_time(st.get("StartedAt"))
    passed = _first_pass(log)
    status = str(st.get("Status") or "")
    return ContainerState(
        id=str(attrs.get("Id") or ""),
        name=str(attrs.get("Name") or "").lstrip("/"),
        project=str(labels.get(PROJECT_LABEL, "")),
        service=str(labels.get(SERVICE_LABEL, "")),
        status=status,
        health=health.get("Status") or None,
        exit_code=st.get("ExitCode") if status in ("exited", "dead") else None,
        restarts=int(attrs.get("RestartCount") or 0),
        oom_killed=bool(st.get("OOMKilled")),
        healthy_after_s=round(max(0.0, passed - started), 1) if passed is not None and started is not None else None,
        health_output=str(log[-1].get("Output", "")).strip() or None if log else None,
        depends_on=tuple(parse_depends(labels.get(DEPENDS_LABEL))),
    )


class Engine(Protocol):
    name: str

    async def ping(self) -> str: ...  # the server version; EngineUnavailable when it cannot be asked

    async def inspect(self, ids: Sequence[str]) -> list[dict[str, Any]]: ...

    async def project_ids(self, project: str) -> list[str]: ...

    async def logs(self, container_id: str, tail: int = LOG_TAIL) -> list[str]: ...

    async def close(self) -> None: ...


class SdkEngine:
    """The docker SDK: this machine's engine (DOCKER_HOST or the local socket), or an explicit ``base_url``."""

    def __init__(self, base_url: str | None = None, *, name: str = "local") -> None:
        self.base_url = base_url
        self.name = name
        self._client: Any = None

    def _get(self) -> Any:
        if self._client is None:
            import docker

            try:
                if self.base_url:
                    self._client = docker.DockerClient(
                        base_url=self.base_url, timeout=int(ENGINE_TIMEOUT), use_ssh_client=False
                    )
                else:
                    self._client = docker.from_env(timeout=int(ENGINE_TIMEOUT))
            except Exception as e:  # docker.errors.DockerException and the transport's own errors
                raise EngineUnavailable(f"cannot reach the Docker engine ({self.name}): {e}") from None
        return self._client

    async def ping(self) -> str:
        def ping() -> str:
            try:
                return str(self._get().version().get("Version", "?"))
            except EngineUnavailable:
                raise
            except Exception as e:
                raise EngineUnavailable(f"cannot reach the Docker engine ({self.name}): {e}") from None

        return await asyncio.to_thread(ping)

    async def inspect(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        def get() -> list[dict[str, Any]]:
            import docker.errors

            api = self._get().api
            out = []
            for i in ids:
                try:
                    out.append(api.inspect_container(i))
                except docker.errors.NotFound:
                    continue
            return out

        return await asyncio.to_thread(get)

    async def project_ids(self, project: str) -> list[str]:
        def ids() -> list[str]:
            found = self._get().api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
            return [str(c["Id"]) for c in found]

        return await asyncio.to_thread(ids)

    async def logs(self, container_id: str, tail: int = LOG_TAIL) -> list[str]:
        def logs() -> list[str]:
            raw = self._get().api.logs(container_id, stdout=True, stderr=True, tail=tail)
            return [ln for ln in raw.decode("utf-8", "replace").splitlines() if ln.strip()]

        return await asyncio.to_thread(logs)

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
            self._client = None


class CliEngine:
    """The ``docker`` CLI run through a target (SSH): its host key was verified when it connected."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.name = target.name

    async def _docker(self, *args: str) -> str:
        r = await self.target.run(["docker", *args], timeout=ENGINE_TIMEOUT)
        if r.rc != 0:
            text = (r.stderr.strip() or r.stdout.strip() or f"rc {r.rc}").splitlines()[-1]
            raise EngineUnavailable(f"`docker {' '.join(args[:2])}` on {self.name} failed: {text}")
        return r.stdout

    async def ping(self) -> str:
        return (await self._docker("version", "--format", "{{.Server.Version}}")).strip()

    async def inspect(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        try:
            return await inspect_via(self.target, ids, ENGINE_TIMEOUT)
        except RuntimeError as e:
            raise EngineUnavailable(str(e)) from None

    async def project_ids(self, project: str) -> list[str]:
        out = await self._docker("ps", "-a", "-q", "--no-trunc", "--filter", f"label={PROJECT_LABEL}={project}")
        return [s.strip() for s in out.splitlines() if s.strip()]

    async def logs(self, container_id: str, tail: int = LOG_TAIL) -> list[str]:
        r = await self.target.run(["docker", "logs", "--tail", str(tail), container_id], timeout=ENGINE_TIMEOUT)
        return [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]

    async def close(self) -> None:
        return None


def engine_for(target: Target) -> Engine:
    """The SDK on the local socket for this machine; the docker CLI through the target otherwise."""
    from ..targets.local import LocalTarget

    if isinstance(target, LocalTarget):
        return SdkEngine(name=f"{target.name} (Docker engine: DOCKER_HOST or /var/run/docker.sock)")
    return CliEngine(target)


@dataclass
class WatchResult:
    outcome: str  # healthy | failed | timed_out
    containers: list[ContainerState]
    waited_s: float


def _mark_waiting(states: list[ContainerState]) -> None:
    """A container compose never started because a dependency failed is waiting, not failing on its own (compose's
    ``depends_on … condition: service_healthy``: inference waits on cachefs, cachefs on oss and the data hub)."""
    verdicts = {(s.project, s.service): s for s in states}
    changed = True
    while changed:  # a chain: inference waits on cachefs, which waits on confidential-data-hub
        changed = False
        for s in states:
            if s.status != "created" or s.verdict != "failed" or not s.depends_on:
                continue
            bad = tuple(
                d
                for d in s.depends_on
                if (dep := verdicts.get((s.project, d))) is not None and dep.verdict in ("failed", "waiting")
            )
            if bad:
                s.verdict, s.waiting_on, changed = "waiting", bad, True


async def snapshot(
    engine: Engine, projects: Sequence[str], ids: Sequence[str], expected: dict[str, list[str]], compose_done: bool
) -> list[ContainerState]:
    """Every container of ``projects`` (plus ``ids``), and a ``missing`` entry per expected service never created."""
    found: dict[str, None] = dict.fromkeys(ids)
    for p in projects:
        found.update(dict.fromkeys(await engine.project_ids(p)))
    states = [from_inspect(d) for d in await engine.inspect(list(found))]
    seen = {(s.project, s.service) for s in states}
    for project, services in expected.items():
        for service in services:
            if (project, service) not in seen:
                states.append(ContainerState("", f"{project}-{service}-1", project, service, "missing", None, None))
    for s in states:
        s.verdict = classify(s, compose_done=compose_done)
    _mark_waiting(states)
    states.sort(key=lambda s: (s.project, s.service, s.name))
    return states


def state_note(s: ContainerState) -> Event:
    data = {"container": s.name, "project": s.project, "service": s.service, "state": s.state, "verdict": s.verdict}
    return note(f"{s.name}: {s.state}", data=data)


async def watch(
    engine: Engine,
    projects: Sequence[str],
    *,
    ids: Sequence[str] = (),
    expected: dict[str, list[str]] | None = None,
    timeout: float,
    compose_done: bool = True,
    poll_s: float = POLL_S,
    on_event: EventSink | None = None,
) -> WatchResult:
    """Poll until every container is ok, any has failed, or ``timeout`` (at least one look is always taken).
    Each container's change of state goes to ``on_event`` as a note ``NAME: STATE`` (``data``: container, project,
    service, state, verdict)."""
    started = time.monotonic()
    deadline = started + max(0.0, timeout)
    last: dict[str, str] = {}
    while True:
        states = await snapshot(engine, projects, ids, expected or {}, compose_done)
        for s in states:
            key = s.id or s.name
            if last.get(key) != s.state and on_event is not None:
                on_event(state_note(s))
            last[key] = s.state
        failed = [s for s in states if s.verdict == "failed"]
        outcome = None
        if failed:
            outcome = "failed"
        elif not states:
            outcome = "failed" if compose_done else None
        elif all(s.ok for s in states):
            outcome = "healthy"
        elif time.monotonic() >= deadline:
            for s in states:
                if not s.ok:
                    s.verdict = "timed_out"
            outcome = "timed_out"
        if outcome is None and time.monotonic() >= deadline:
            outcome = "timed_out"
        if outcome is not None:
            for s in states:
                if not s.ok and s.id:
                    try:
                        s.logs = await engine.logs(s.id)
                    except Exception:  # the logs are a courtesy; the states are the report
                        s.logs = []
            return WatchResult(outcome, states, round(time.monotonic() - started, 1))
        await asyncio.sleep(poll_s)
