"""Reading the CAI stack's containers from a Docker engine: one place for the support bundle, the troubleshooter and
the cai.containers check. Compose labels say which project and service a container belongs to; ``docker inspect``
says its state, health log, exit code and restart count; ``docker logs --timestamps`` the last lines. The local
engine (DOCKER_HOST or the socket) is read with the docker SDK (:func:`read_stack`, blocking: call it in a worker
thread); an instance reached over SSH with the docker CLI through our SSH target (:func:`read_stack_via`), because
the SDK's ssh:// transport would check host keys only against ~/.ssh/known_hosts and ignore the recipe's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
DEPENDS_LABEL = "com.docker.compose.depends_on"  # "cachefs:service_healthy:true,oss:service_started:false"
NEVER = "0001-01-01T00:00:00Z"  # docker's StartedAt/FinishedAt of a container that never ran


@dataclass(frozen=True)
class HealthProbe:
    start: str | None
    exit_code: int | None
    output: str


@dataclass
class StackContainer:
    """One compose-labelled container as ``docker inspect`` and ``docker logs`` show it."""

    name: str
    id: str
    image: str | None
    project: str
    service: str
    status: str  # created, running, restarting, exited, paused, dead
    health: str | None  # healthy, unhealthy, starting; None without a healthcheck
    health_log: list[HealthProbe] = field(default_factory=list)
    exit_code: int | None = None
    oom_killed: bool | None = None
    error: str | None = None  # State.Error: why the engine could not start it
    restart_count: int = 0
    created: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    depends_on: dict[str, str] = field(default_factory=dict)  # service -> condition (compose's label)
    command: str = ""
    logs: bytes = b""  # docker logs --timestamps --tail N (stdout and stderr)

    @property
    def never_started(self) -> bool:
        return not self.started_at or self.started_at.startswith("0001-")

    def state_doc(self) -> dict[str, Any]:
        """What the support bundle writes as ``containers/NAME/state.json``."""
        return {
            "name": self.name,
            "id": self.id,
            "image": self.image,
            "project": self.project,
            "service": self.service,
            "status": self.status,
            "health": self.health,
            "health_log": [{"start": h.start, "exit_code": h.exit_code, "output": h.output} for h in self.health_log],
            "exit_code": self.exit_code,
            "oom_killed": self.oom_killed,
            "error": self.error,
            "restart_count": self.restart_count,
            "created": self.created,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


@dataclass
class StackRead:
    projects: dict[str, set[str]]  # every compose project on the engine -> its services
    containers: list[StackContainer]  # those of the selected projects, sorted by project and name


def parse_depends(label: str | None) -> dict[str, str]:
    """Compose's ``depends_on`` label → {service: condition}."""
    out: dict[str, str] = {}
    for part in (label or "").split(","):
        bits = part.strip().split(":")
        if bits and bits[0]:
            out[bits[0]] = bits[1] if len(bits) > 1 else "service_started"
    return out


def container_of(cont: Any, logs: bytes) -> StackContainer:
    """A docker SDK container (full attrs) → :class:`StackContainer`."""
    attrs = cont.attrs or {}
    labels = cont.labels or {}
    state = attrs.get("State") or {}
    health = state.get("Health") or {}
    config = attrs.get("Config") or {}
    cmd = config.get("Cmd") or []
    return StackContainer(
        name=cont.name,
        id=str(cont.id)[:12],
        image=config.get("Image"),
        project=labels.get(PROJECT_LABEL, ""),
        service=labels.get(SERVICE_LABEL, ""),
        status=str(state.get("Status") or cont.status),
        health=health.get("Status") or None,
        health_log=[
            HealthProbe(h.get("Start"), h.get("ExitCode"), str(h.get("Output") or "")) for h in health.get("Log") or []
        ],
        exit_code=state.get("ExitCode"),
        oom_killed=state.get("OOMKilled"),
        error=state.get("Error") or None,
        restart_count=int(attrs.get("RestartCount") or 0),
        created=attrs.get("Created"),
        started_at=state.get("StartedAt"),
        finished_at=state.get("FinishedAt"),
        depends_on=parse_depends(labels.get(DEPENDS_LABEL)),
        command=" ".join(str(c) for c in cmd) if isinstance(cmd, list) else str(cmd),
        logs=logs,
    )


def docker_client(url: str | None, timeout: float) -> Any:
    import docker

    t = int(max(1, timeout))
    return docker.DockerClient(base_url=url, timeout=t) if url else docker.from_env(timeout=t)


def _selected(
    labelled: Sequence[Any], select: Callable[[dict[str, set[str]]], Iterable[str]]
) -> tuple[dict[str, set[str]], list[Any]]:
    """The projects (→ services) of compose-labelled containers (anything with ``.labels``), and those containers
    whose project ``select(projects)`` names."""
    projects: dict[str, set[str]] = {}
    for c in labelled:
        labels = c.labels or {}
        projects.setdefault(labels.get(PROJECT_LABEL, ""), set()).add(labels.get(SERVICE_LABEL, ""))
    wanted = set(select(projects))
    return projects, [c for c in labelled if (c.labels or {}).get(PROJECT_LABEL, "") in wanted]


def read_stack(
    url: str | None,
    timeout: float,
    *,
    tail: int,
    select: Callable[[dict[str, set[str]]], Iterable[str]],
) -> StackRead:
    """Every compose-labelled container's project and service; ``select(projects)`` names the projects to read
    fully (state and logs). ``select`` may raise to stop (the exception propagates). Containers that vanish while
    being read are left out."""
    import docker.errors

    client = docker_client(url, timeout)
    try:
        labelled = client.containers.list(all=True, filters={"label": SERVICE_LABEL})
        projects, chosen = _selected(labelled, select)
        out: list[StackContainer] = []
        for cont in chosen:
            try:
                logs = cont.logs(tail=tail, stdout=True, stderr=True, timestamps=True) if tail > 0 else b""
            except docker.errors.NotFound:
                continue
            out.append(container_of(cont, logs))
        out.sort(key=lambda c: (c.project, c.name))
        return StackRead(projects, out)
    finally:
        client.close()


async def inspect_via(target: Any, ids: Sequence[str], timeout: float) -> list[dict[str, Any]]:
    """``docker inspect`` documents of ``ids`` through a target's docker CLI. A container that vanished meanwhile
    makes docker exit 1 but the others are still printed; RuntimeError only when nothing parseable came back."""
    import json

    if not ids:
        return []
    r = await target.run(["docker", "inspect", "--type", "container", *ids], timeout=timeout)
    try:
        return [d for d in json.loads(r.stdout or "[]") if isinstance(d, dict)]
    except ValueError:
        raise RuntimeError(f"`docker inspect` on {target.name} failed: {r.stderr.strip()}") from None


async def read_stack_via(
    target: Any,
    timeout: float,
    *,
    tail: int,
    select: Callable[[dict[str, set[str]]], Iterable[str]],
) -> StackRead:
    """:func:`read_stack` through a :mod:`cai_tui.targets` target running the ``docker`` CLI (an SSH target: its
    host key was verified with the recipe's known_hosts when it connected, which the docker SDK's ssh:// transport
    would not use). Raises RuntimeError with docker's own message when the CLI fails."""
    import shlex
    from types import SimpleNamespace

    async def docker(*args: str) -> str:
        r = await target.run(["docker", *args], timeout=timeout)
        if r.rc != 0:
            why = (r.stderr.strip() or r.stdout.strip() or f"exit code {r.rc}").splitlines()[-1]
            raise RuntimeError(f"`docker {args[0]}` on {target.name} failed: {why}")
        return str(r.stdout)

    ids = (await docker("ps", "-a", "-q", "--no-trunc", "--filter", f"label={SERVICE_LABEL}")).split()
    docs = await inspect_via(target, ids, timeout)
    conts = []
    for d in docs:
        state = d.get("State") or {}
        conts.append(
            SimpleNamespace(
                attrs=d,
                labels=(d.get("Config") or {}).get("Labels") or {},
                name=str(d.get("Name") or "").lstrip("/"),
                id=str(d.get("Id") or ""),
                status=str(state.get("Status") or ""),
            )
        )
    projects, chosen = _selected(conts, select)
    out: list[StackContainer] = []
    for c in chosen:
        logs = b""
        if tail > 0:  # one stream, in the order the container wrote it (as the SDK's logs())
            cmd = f"docker logs --timestamps --tail {int(tail)} {shlex.quote(c.id)} 2>&1"
            r = await target.run(["sh", "-c", cmd], timeout=timeout)
            logs = str(r.stdout).encode("utf-8")
        out.append(container_of(c, logs))
    out.sort(key=lambda c: (c.project, c.name))
    return StackRead(projects, out)


def over_ssh(target: Any) -> Any:
    """``target`` when it is an SSH target (its engine is then read with the docker CLI through it), else None."""
    return target if target is not None and str(getattr(target, "name", "")).startswith("ssh://") else None


def engine_name(url: str | None, via: Any = None) -> str:
    """How messages name the engine that :func:`read_stack_on` asks."""
    if via is not None:
        return f"the Docker engine of {via.name} (docker CLI over SSH)"
    return url or "the local Docker engine (DOCKER_HOST or /var/run/docker.sock)"


async def read_stack_on(
    url: str | None,
    via: Any,
    timeout: float,
    *,
    tail: int,
    select: Callable[[dict[str, set[str]]], Iterable[str]],
) -> StackRead:
    """:func:`read_stack_via` through ``via`` (an SSH target, see :func:`over_ssh`) when given, else
    :func:`read_stack` on ``url`` (None: this machine's engine) in a worker thread."""
    import asyncio

    if via is not None:
        return await read_stack_via(via, timeout, tail=tail, select=select)
    return await asyncio.to_thread(read_stack, url, timeout, tail=tail, select=select)


__all__ = [
    "DEPENDS_LABEL",
    "PROJECT_LABEL",
    "SERVICE_LABEL",
    "HealthProbe",
    "StackContainer",
    "StackRead",
    "container_of",
    "docker_client",
    "engine_name",
    "over_ssh",
    "parse_depends",
    "read_stack",
    "read_stack_on",
    "read_stack_via",
]
