"""cai.containers: the CAI stack's containers, asked of the instance's Docker engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...stackinfo import PROJECT_LABEL as PROJECT_LABEL  # re-exported: the label names live in stackinfo
from ...stackinfo import SERVICE_LABEL
from ..base import CheckContext, Evidence, Result
from ..common import ev, make
from ..registry import check
from ._common import CMD_SHARE, FIX_DOCKER, GPU_TIMEOUT, ROLE, STAGE_STACK

if TYPE_CHECKING:
    from ...stackinfo import StackRead
    from ...targets.base import Target

FIX_STACK = "cai-container-unhealthy"


# --- cai.containers ----------------------------------------------------------------------------------------------------

CAI_PROJECT = "cai-docker"
CAI_SERVICES = ("oss", "attestation-agent", "tng", "confidential-data-hub", "cachefs")
LOG_TAIL = 5
SERVICE_HINTS = {  # the seed's FAQ (CAI-F1..F4) and failure-catalog.md
    "oss": "oss fails when the instance cannot reach the bucket: check the bucket policy for the instance's IP "
    "(CAI-4.1), MODEL_OSS_ENDPOINT and the AccessKey (CAI-F1).",
    "confidential-data-hub": "confidential-data-hub fails when the model key cannot be fetched: check MODEL_KEY_ID, "
    "TRUSTEE_URL and the Trustee ACL (CAI-F2).",
    "tng": "tng fails when the instance cannot reach Trustee: check TRUSTEE_URL and the Trustee ACL (CAI-F3).",
    "cachefs": "cachefs fails when the model cannot be decrypted: check the secret stored in KMS/Trustee and that "
    "MODEL_ENCRYPTION_METHOD matches how the model was encrypted (CAI-F4).",
    "attestation-agent": "attestation-agent needs /dev/tdx_guest: run on a gn8v-tee instance with the Confidential AI "
    "image (see host.tdx_guest).",
}


@dataclass
class ContainerFacts:
    name: str
    project: str
    service: str
    status: str  # running, exited, restarting, created, paused, dead
    health: str | None  # healthy, unhealthy, starting; None without a healthcheck
    exit_code: int | None
    health_output: str | None = None
    logs: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.status == "exited":
            return f"exited ({self.exit_code})"
        return f"{self.status}, {self.health}" if self.health else self.status

    @property
    def bad(self) -> bool:
        return self.status != "running" or self.health == "unhealthy"


def docker_url_for(target: Target) -> tuple[str | None, str | None]:
    """The Docker engine URL of the machine ``target`` stands for: ``(url, None)``, ``(None, None)`` for this
    machine's default engine (DOCKER_HOST or the local socket), ``(None, why)`` when there is none to ask."""
    from ...targets.local import LocalTarget

    if isinstance(target, LocalTarget):
        return None, None
    if target.name.startswith("ssh://"):
        return target.name, None
    url = getattr(target, "docker_url", None)
    if target.name.startswith("docker://"):
        return (url if isinstance(url, str) else None), None
    return None, f"{target.name} has no Docker engine to ask (a capture or a mounted rootfs)"


def _facts(read: StackRead) -> list[ContainerFacts]:
    """The CAI services' containers of a stack read; the last log lines (without docker's timestamps) of bad ones."""
    found = []
    for c in read.containers:
        if c.service not in CAI_SERVICES:
            continue
        facts = ContainerFacts(
            name=c.name,
            project=c.project,
            service=c.service,
            status=c.status,
            health=c.health,
            exit_code=c.exit_code,
            health_output=c.health_log[-1].output.strip() if c.health_log else None,
        )
        if facts.bad:
            lines = [ln.split(" ", 1)[-1] for ln in c.logs.decode("utf-8", "replace").splitlines()]
            facts.logs = [ln for ln in lines if ln.strip()]
        found.append(facts)
    return found


def _pick_project(found: list[ContainerFacts]) -> str:
    projects: dict[str, set[str]] = {}
    for f in found:
        projects.setdefault(f.project, set()).add(f.service)
    if CAI_PROJECT in projects:
        return CAI_PROJECT
    return sorted(projects, key=lambda p: (-len(projects[p]), p))[0]


@check(
    "cai.containers",
    "The CAI stack's containers (oss, attestation-agent, tng, confidential-data-hub, cachefs) are up and healthy",
    stage=STAGE_STACK,
    runs_on=ROLE,
    timeout=GPU_TIMEOUT,
)
async def cai_containers(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    url, why_not = docker_url_for(target)
    if why_not is not None:
        return make(ctx, "skip", f"needs a live Docker engine: {why_not}")
    from ...stackinfo import engine_name, over_ssh, read_stack_on

    via = over_ssh(target)  # over SSH the docker CLI runs through the target: its host key checked with known_hosts
    engine = engine_name(url, via)
    try:
        found = _facts(await read_stack_on(url, via, GPU_TIMEOUT * CMD_SHARE, tail=LOG_TAIL, select=set))
    except Exception as e:  # docker.errors.DockerException, paramiko's and requests' errors: all say why
        text = str(e).strip() or type(e).__name__
        return make(
            ctx,
            "unknown",
            f"cannot ask {engine}: {text}",
            [ev(ctx, text, f"docker ps ({engine})", target.name)],
            (
                FIX_DOCKER,
                "Check that the Docker daemon runs on the instance (docker.version) and that this user may use it.",
            ),
        )
    source = f"docker ps -a --filter label={SERVICE_LABEL} ({engine})"
    if not found:
        return make(
            ctx,
            "fail",
            f"no CAI container on {engine}: none is labelled {SERVICE_LABEL} = {', '.join(CAI_SERVICES)}",
            [ev(ctx, "no matching container", source, target.name)],
            (
                FIX_STACK,
                "Start the stack (CAI-5.2): `docker compose -f /opt/alibaba/cai-docker/docker-compose.yml --env-file "
                "~/cai.env up -d --wait`.",
            ),
            services={},
        )
    project = _pick_project(found)
    mine = sorted((f for f in found if f.project == project), key=lambda f: (CAI_SERVICES.index(f.service), f.name))
    evidence: list[Evidence] = []
    services: dict[str, list[dict[str, Any]]] = {}
    for f in mine:
        services.setdefault(f.service, []).append(
            {"name": f.name, "status": f.status, "health": f.health, "exit_code": f.exit_code}
        )
        evidence.append(ev(ctx, f"{f.name}: {f.state}", f"docker inspect {f.name}", target.name))
        if f.bad and f.health_output:
            evidence.append(ev(ctx, f.health_output, f"docker inspect {f.name} (last healthcheck)", target.name))
        if f.bad and f.logs:
            evidence.append(ev(ctx, "\n".join(f.logs), f"docker logs --tail {LOG_TAIL} {f.name}", target.name))
    others = sorted({f.project for f in found} - {project})
    if others:
        evidence.append(ev(ctx, f"CAI containers also in project(s) {', '.join(others)}", source, target.name))
    missing = [s for s in CAI_SERVICES if s not in services]
    bad = [f for f in mine if f.bad]
    starting = [f for f in mine if not f.bad and f.health == "starting"]
    data: dict[str, Any] = {"project": project, "services": services, "missing": missing}
    if bad or missing:
        parts = [f"{f.service} {f.state}" for f in bad] + [f"{s} not created" for s in missing]
        hints = " ".join(SERVICE_HINTS[s] for s in dict.fromkeys([f.service for f in bad] + missing))
        first = bad[0].name if bad else f"{project}-{missing[0]}-1"
        return make(
            ctx,
            "fail",
            f"project {project}: {', '.join(parts)}",
            evidence,
            (
                FIX_STACK,
                f"Read the failing container's log (`docker logs {first}`) and run `cai-tui troubleshoot`, which "
                f"matches it against the known failures. {hints} After fixing, `docker compose -f "
                "/opt/alibaba/cai-docker/docker-compose.yml --env-file ~/cai.env up -d --wait`.",
            ),
            **data,
        )
    if starting:
        return make(
            ctx,
            "warn",
            f"project {project}: {', '.join(f.service for f in starting)} still starting (health: starting)",
            evidence,
            (FIX_STACK, "Wait for the healthchecks (`docker compose ... up -d --wait` waits), then check again."),
            **data,
        )
    return make(
        ctx,
        "pass",
        f"project {project}: all {len(CAI_SERVICES)} services up ("
        + ", ".join(f"{s} {services[s][0]['health'] or services[s][0]['status']}" for s in CAI_SERVICES)
        + ")",
        evidence,
        **data,
    )
