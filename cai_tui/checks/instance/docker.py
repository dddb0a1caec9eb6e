"""docker.version and docker.compose: a recent Docker Engine with the Compose v2 plugin."""

from __future__ import annotations

from typing import Any

from ...parsers.docker_version import DockerVersion, parse_compose_version, parse_docker_version
from ...parsers.errors import ParseError
from ...targets.base import CommandResult
from ...targets.capture import is_not_captured
from ..base import CheckContext, Result
from ..common import ev, make
from ..registry import check
from ._common import (
    CMD_SHARE,
    FIX_DOCKER,
    GPU_TIMEOUT,
    ROLE,
    STAGE_INSTANCE,
    _cmd,
    _last_line,
    _output,
    _run,
    run_first,
)
from .commands import COMPOSE, COMPOSE_V1, DOCKER_CAPTURE, DOCKER_JSON, DOCKER_PLAIN

FIX_COMPOSE = "compose-too-old"
DOCKER_MIN = "19.03"  # the seeds ask for Docker newer than 19.03
COMPOSE_INCLUDE = "2.20"  # top-level `include:` (CAI-5.4)


# --- docker.version ----------------------------------------------------------------------------------------------------


def _docker_part(text: str) -> str:
    """The ``docker version`` part of :data:`DOCKER_CAPTURE`'s output (the compose line(s) cut off)."""
    out = []
    for line in text.splitlines():
        if line.strip().lower().startswith(("docker compose version", "docker-compose version")):
            break
        out.append(line)
    lines = out
    # the compose command's own failure follows a docker version that worked ("'compose' is not a docker command")
    while lines and (
        "compose" in lines[-1].lower() and ("not a docker command" in lines[-1] or "unknown" in lines[-1])
    ):
        lines.pop()
    return "\n".join(lines)


def _parse_docker(text: str, res: CommandResult) -> DockerVersion:
    """stdout and stderr together (the daemon error is on stderr); stdout alone when stderr holds other chatter."""
    try:
        return parse_docker_version(text)
    except ParseError:
        if res.stderr.strip() and res.stdout.strip() and text != res.stdout:
            return parse_docker_version(res.stdout)
        raise


@check(
    "docker.version",
    f"Docker Engine is newer than {DOCKER_MIN} and its daemon answers",
    stage=STAGE_INSTANCE,
    runs_on=ROLE,
    timeout=GPU_TIMEOUT,
)
async def docker_version(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    res = await run_first(target, (DOCKER_JSON, DOCKER_PLAIN, DOCKER_CAPTURE), GPU_TIMEOUT * CMD_SHARE)
    source = _cmd(res.argv)
    text = _output(res)
    if tuple(res.argv) == DOCKER_CAPTURE:
        text = _docker_part(text)
    if is_not_captured(res):
        return make(
            ctx, "unknown", f"Docker was not captured: {res.stderr.strip()}", [ev(ctx, res.stderr, source, target.name)]
        )
    try:
        version: DockerVersion = _parse_docker(text, res)
    except ParseError as e:
        observed = e.line.strip() if e.line else _last_line(text)
        evidence = [ev(ctx, observed, source, target.name)]
        if "not installed" in e.message or res.rc == 127:
            return make(
                ctx,
                "fail",
                f"Docker is not installed: `{observed}`",
                evidence,
                (
                    FIX_DOCKER,
                    "Install Docker Engine (newer than 19.03) with the Compose v2 plugin; the Confidential AI image "
                    "ships both. On Alibaba Cloud Linux: `dnf install docker-ce docker-compose-plugin`, then "
                    "`systemctl enable --now docker`.",
                ),
            )
        return make(ctx, "unknown", f"unexpected `{source}` output: {e}", evidence)
    evidence = []
    if version.client_version:
        evidence.append(ev(ctx, f"Client Version: {version.client_version}", source, target.name))
    data: dict[str, Any] = {
        "client_version": version.client_version,
        "server_version": version.server_version,
        "server_api_version": version.server_api_version,
    }
    if version.server_version is None:
        why = version.server_error or "no Server part in the output"
        evidence.append(ev(ctx, why, source, target.name))
        return make(
            ctx,
            "fail",
            f"the Docker daemon does not answer: {why}",
            evidence,
            (
                FIX_DOCKER,
                "Start the daemon (`systemctl enable --now docker`) and run as root or a member of the docker group; "
                "`journalctl -u docker` says why it does not start.",
            ),
            **data,
        )
    evidence.append(ev(ctx, f"Server Version: {version.server_version}", source, target.name))
    if not version.newer_than(DOCKER_MIN):
        return make(
            ctx,
            "fail",
            f"Docker Engine {version.server_version} is not newer than {DOCKER_MIN}",
            evidence,
            (
                FIX_DOCKER,
                f"Upgrade Docker Engine to a version newer than {DOCKER_MIN} (GPU containers with `--gpus` and the "
                "CAI compose stack need it): `dnf upgrade docker-ce` / `apt-get install docker-ce`.",
            ),
            **data,
        )
    api = f" (API {version.server_api_version})" if version.server_api_version else ""
    return make(ctx, "pass", f"Docker Engine {version.server_version}{api}", evidence, **data)


# --- docker.compose ----------------------------------------------------------------------------------------------------


def _compose_line(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip().lower().startswith(("docker compose version", "docker-compose version")):
            return line.strip()
    return None


@check(
    "docker.compose",
    f"Docker Compose v2 (≥ {COMPOSE_INCLUDE}, with `include:`) is installed as `docker compose`",
    stage=STAGE_INSTANCE,
    runs_on=ROLE,
    timeout=GPU_TIMEOUT,
)
async def docker_compose(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    budget = GPU_TIMEOUT * CMD_SHARE
    res = await run_first(target, (COMPOSE, DOCKER_CAPTURE), budget)
    text = _output(res)
    line = _compose_line(text) if tuple(res.argv) == DOCKER_CAPTURE else (text.strip() if res.ok else None)
    source = _cmd(res.argv)
    evidence = [ev(ctx, line or _last_line(text), source, target.name)]
    if line:
        try:
            compose = parse_compose_version(line)
        except ParseError as e:
            return make(ctx, "unknown", f"unexpected `{source}` output: {e}", evidence)
        data: dict[str, Any] = {"version": compose.version, "v1": compose.v1, "plugin": True}
        if compose.supports_include:
            return make(ctx, "pass", f"Docker Compose {compose.version} (`include:` supported)", evidence, **data)
        return make(
            ctx,
            "fail",
            f"Docker Compose {compose.version} predates top-level `include:` (Compose {COMPOSE_INCLUDE}), which the "
            "seed's ~/docker-compose.yml uses (CAI-5.4)",
            evidence,
            (
                FIX_COMPOSE,
                f"Upgrade the Compose plugin to {COMPOSE_INCLUDE} or newer (`dnf install docker-compose-plugin` / "
                "`apt-get install docker-compose-plugin`, or put a current docker-compose binary in "
                "/usr/local/lib/docker/cli-plugins/).",
            ),
            **data,
        )
    v1 = await _run(target, COMPOSE_V1, budget)
    v1_text = _output(v1)
    if v1.ok and _compose_line(v1_text):
        v1_line = _compose_line(v1_text) or ""
        evidence.append(ev(ctx, v1_line, _cmd(COMPOSE_V1), target.name))
        try:
            compose = parse_compose_version(v1_text)
        except ParseError as e:
            return make(ctx, "unknown", f"unexpected `{_cmd(COMPOSE_V1)}` output: {e}", evidence)
        data = {"version": compose.version, "v1": compose.v1, "plugin": False}
        if compose.v1:
            return make(
                ctx,
                "fail",
                f"only the retired Compose v1 is installed (`{v1_line}`): it has no top-level `include:` (CAI-5.4) "
                "and no `up --wait` (CAI-5.2), and the seed runs `docker compose`, the v2 plugin",
                evidence,
                (
                    FIX_COMPOSE,
                    "Install the Compose v2 plugin (`dnf install docker-compose-plugin` / `apt-get install "
                    "docker-compose-plugin`); Compose v1 (Python docker-compose 1.x) is end-of-life and names "
                    "containers differently (cai-docker_oss_1).",
                ),
                **data,
            )
        return make(
            ctx,
            "warn",
            f"Compose {compose.version} is installed only as the standalone `docker-compose`; the seed runs "
            "`docker compose`",
            evidence,
            (
                FIX_COMPOSE,
                "Make it a CLI plugin: `mkdir -p /usr/local/lib/docker/cli-plugins && ln -s $(command -v "
                "docker-compose) /usr/local/lib/docker/cli-plugins/docker-compose`, or install docker-compose-plugin.",
            ),
            **data,
        )
    if not is_not_captured(v1):
        evidence.append(ev(ctx, _last_line(v1_text), _cmd(COMPOSE_V1), target.name))
    return make(
        ctx,
        "fail",
        f"Docker Compose is not installed: `{_last_line(text)}`",
        evidence,
        (
            FIX_COMPOSE,
            f"Install the Compose v2 plugin ({COMPOSE_INCLUDE} or newer): `dnf install docker-compose-plugin` / "
            "`apt-get install docker-compose-plugin`; the Confidential AI image ships it.",
        ),
    )
