"""Running Docker Compose on the target: the version probe (missing plugin / v1 / too old), ``up -d --wait`` with
every output line handed to the caller as it arrives, and the project's services and containers as compose sees
them."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..events import EventSink, line_sink
from ..parsers.docker_version import parse_compose_version, version_at_least
from ..parsers.errors import ParseError
from ..targets.base import CommandResult, Target
from .plan import COMPOSE_FOR_INCLUDE, COMPOSE_FOR_WAIT, DEFAULT_COMPOSE

PROBE_TIMEOUT = 30.0
FAQ_COMPOSE = "compose-too-old"
FAQ_DOCKER = "docker-too-old"
_MISSING = (
    "is not a docker command",  # docker CLI ≥ 23 without the plugin
    "unknown command: docker compose",  # docker 20.10 without the plugin
    "unknown shorthand flag: 'f' in -f",  # older CLIs parse `compose -f` as their own flags
    "unknown flag: --wait",  # compose v2 before 2.1.1
    "no such command: up",
)


class ComposeUnavailable(Exception):
    """No usable Compose on the target (exit 3); ``faq_id`` names the knowledge-base entry."""

    def __init__(self, message: str, faq_id: str) -> None:
        super().__init__(message)
        self.faq_id = faq_id


@dataclass(frozen=True)
class ComposeInfo:
    version: str
    line: str


def _hint(compose_cmd: Sequence[str]) -> str:
    if tuple(compose_cmd) == DEFAULT_COMPOSE:
        return (
            "install the Compose v2 plugin (dnf/apt-get install docker-compose-plugin), or, where only the standalone "
            "v2 binary is installed, run with --compose-cmd docker-compose"
        )
    return "install Compose v2 (docker-compose-plugin) or point --compose-cmd at a Compose v2 binary"


def missing_compose(result: CommandResult, compose_cmd: Sequence[str], target: str) -> ComposeUnavailable | None:
    """The failure of a compose command that says Compose itself is missing or too old, else None."""
    cmd = shlex.join(compose_cmd)
    if result.rc in (126, 127):
        if compose_cmd[0] == "docker":
            return ComposeUnavailable(
                f"`docker` is not installed on {target}: install Docker (the Confidential AI image ships it)",
                FAQ_DOCKER,
            )
        return ComposeUnavailable(f"`{cmd}` is not installed on {target}: {_hint(compose_cmd)}", FAQ_COMPOSE)
    text = (result.stdout + "\n" + result.stderr).lower()
    for pattern in _MISSING:
        if pattern.lower() in text:
            return ComposeUnavailable(
                f"`{cmd}` on {target} is not Docker Compose v2 ({pattern}): {_hint(compose_cmd)}", FAQ_COMPOSE
            )
    return None


async def probe_compose(target: Target, compose_cmd: Sequence[str], *, need_include: bool) -> ComposeInfo:
    """``<compose> version``: v2 and new enough for ``up --wait`` (and ``include:`` for the compose flow)."""
    r = await target.run([*compose_cmd, "version"], timeout=PROBE_TIMEOUT)
    missing = missing_compose(r, compose_cmd, target.name)
    if missing is not None:
        raise missing
    cmd = shlex.join(compose_cmd)
    text = r.stdout.strip()
    if r.rc != 0 or not text:
        last = (r.stderr.strip() or r.stdout.strip() or f"rc {r.rc}").splitlines()[-1]
        raise ComposeUnavailable(f"`{cmd} version` failed on {target.name}: {last}; {_hint(compose_cmd)}", FAQ_COMPOSE)
    try:
        info = parse_compose_version(text)
    except ParseError as e:
        raise ComposeUnavailable(f"`{cmd} version` on {target.name}: {e}; {_hint(compose_cmd)}", FAQ_COMPOSE) from None
    line = text.splitlines()[0]
    if info.v1:
        raise ComposeUnavailable(
            f"`{cmd}` on {target.name} is the retired Compose v1 ({line}): it has no `up --wait` and no `include:`; "
            f"{_hint(compose_cmd)}",
            FAQ_COMPOSE,
        )
    need = COMPOSE_FOR_INCLUDE if need_include else COMPOSE_FOR_WAIT
    if not version_at_least(info.version, need):
        why = "top-level include: (CAI-5.4)" if need_include else "up --wait (CAI-5.2)"
        raise ComposeUnavailable(
            f"Compose {info.version} on {target.name} is too old for {why}, which needs {need} or newer; "
            f"{_hint(compose_cmd)}",
            FAQ_COMPOSE,
        )
    return ComposeInfo(version=info.version, line=line)


async def run_streaming(
    target: Target, argv: Sequence[str], *, on_event: EventSink | None, timeout: float, step: str = ""
) -> CommandResult:
    """Run ``argv`` on the target; each stdout/stderr line reaches ``on_event`` as a ``line`` event (``source`` the
    target's name) in order, as soon as it is read."""
    return await target.run(list(argv), on_line=line_sink(on_event, source=target.name, step=step), timeout=timeout)


async def project_services(target: Target, base: Sequence[str]) -> list[str]:
    """The services compose would start (``config --services``); [] when it cannot say."""
    r = await target.run([*base, "config", "--services"], timeout=PROBE_TIMEOUT)
    return [s.strip() for s in r.stdout.splitlines() if s.strip()] if r.rc == 0 else []


async def project_container_ids(target: Target, base: Sequence[str]) -> list[str]:
    """The ids of the project's containers as compose knows them (``ps -a -q``); [] when it cannot say."""
    r = await target.run([*base, "ps", "-a", "-q"], timeout=PROBE_TIMEOUT)
    return [s.strip() for s in r.stdout.splitlines() if s.strip()] if r.rc == 0 else []
