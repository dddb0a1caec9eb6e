"""What the troubleshooting screen shows, read without any widget: the troubleshooter's report (the very core
``cai-tui troubleshoot`` runs), each container's log tail scrubbed the same way, the kata container's task state,
and the support bundle (the core of ``cai-tui bundle``).

Everything here is awaited on the app's event loop by a screen worker: Docker is asked in a thread by the core,
SSH and ``ctr`` through the session's targets, so nothing blocks the interface.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..bundle.collect import BundleReport
    from ..recipe.yaml_io import LoadedRecipe
    from ..targets.base import Target
    from ..troubleshoot import ReportFinding, TroubleshootReport

LOG_TAIL = 300  # lines read per container (as `cai-tui troubleshoot`)
TIMEOUT = 10.0  # per Docker call and per related check
KATA_NAMESPACE = "default"  # `ctr run` without -n, as KATA-5.1 starts the container


@dataclass(frozen=True)
class LogLine:
    time: str | None
    text: str


@dataclass
class StackReading:
    """The report, and per container its last log lines (scrubbed as the report's evidence is)."""

    report: TroubleshootReport
    project: str | None  # the compose project asked for (None: the troubleshooter picked one)
    logs: dict[str, list[LogLine]] = field(default_factory=dict)


@dataclass
class KataTask:
    """The kata confidential container as ``ctr task ls`` on the kata host shows it."""

    task: str
    namespace: str
    where: str  # the target ctr ran on
    status: str | None = None  # RUNNING, STOPPED, PAUSED…; None when no such task
    pid: str | None = None
    error: str | None = None  # why ctr could not be asked


def recipe_project(loaded: LoadedRecipe | None) -> str | None:
    """The compose project the recipe's stack runs as: compose names it after the including file's directory (the
    lab's ``cai-lab-…``); None when that directory is ``~`` (learnt on the instance: the troubleshooter picks)."""
    from ..recipe.model import CaiRecipe

    if loaded is None or not isinstance(loaded.recipe, CaiRecipe):
        return None
    compose_file = str(loaded.recipe.answers.service.compose_file)
    if compose_file.startswith("~"):
        return None
    from ..deploy.execute import default_project_name

    return default_project_name(compose_file)


def engine_of(targets: dict[str, Target]) -> tuple[str | None, Target | None]:
    """(docker URL, SSH target) of the instance's engine, as the troubleshooter asks it (no target: this machine)."""
    from ..checks.instance.containers import docker_url_for
    from ..stackinfo import over_ssh

    target = targets.get("instance")
    if target is None:
        return None, None
    via = over_ssh(target)
    if via is not None:
        return None, via
    url, _why = docker_url_for(target)
    return url, None


async def read_stack(
    loaded: LoadedRecipe | None,
    targets: dict[str, Target],
    *,
    lang: str,
    tail: int = LOG_TAIL,
    timeout: float = TIMEOUT,
) -> StackReading:
    """The troubleshooter's report for the recipe's instance, then the log tails. Raises the core's
    :class:`~cai_tui.troubleshoot.TroubleshootError` (an unknown project, an engine that does not answer)."""
    from ..bundle.collect import add_redactor_values, prepare_scrubber
    from ..faq.matcher import ANSI_RE, lines_from_text
    from ..recipe import REDACTOR
    from ..troubleshoot import TroubleshootOptions, troubleshoot
    from ..troubleshoot.collect import read_view

    project = recipe_project(loaded)
    opts = TroubleshootOptions(loaded=loaded, targets=targets, project=project, lang=lang, tail=tail, timeout=timeout)
    report = await troubleshoot(opts)
    reading = StackReading(report=report, project=project)
    if report.project is None:
        return reading
    url, via = engine_of(targets)
    view = await read_view(url, project=report.project, tail=tail, timeout=timeout, target=via)
    scrubber, _ = prepare_scrubber(loaded)
    add_redactor_values(scrubber, REDACTOR)
    for i in view.containers:
        lines = lines_from_text(i.c.logs.decode("utf-8", "replace"))
        reading.logs[i.c.name] = [
            LogLine(when, REDACTOR.redact(scrubber.scrub(ANSI_RE.sub("", text).rstrip()))) for when, text in lines
        ]
    return reading


def evidence_index(lines: list[LogLine], finding: ReportFinding | None) -> int | None:
    """Where the finding's proving line is in the log tail (the newest such line), or None when it came from
    elsewhere (docker inspect, a health probe, a check) or scrolled out of the tail."""
    if finding is None or not finding.evidence.line or not finding.evidence.source.startswith("docker logs"):
        return None
    want = finding.evidence.line.strip()
    when = finding.evidence.time
    exact = [n for n, ln in enumerate(lines) if ln.text.strip() == want]
    timed = [n for n in exact if when is None or lines[n].time == when]
    if timed or exact:
        return (timed or exact)[-1]
    inside = [n for n, ln in enumerate(lines) if want in ln.text or (ln.text.strip() and ln.text.strip() in want)]
    return inside[-1] if inside else None


async def read_kata_task(loaded: LoadedRecipe, targets: dict[str, Target], *, timeout: float = TIMEOUT) -> KataTask:
    """The kata container's task on the host: the recipe's ``ctr://`` guest target (its namespace and host), else
    ``container.name`` in the ``default`` namespace on the host target (this machine when there is none)."""
    from ..targets.container import CtrTarget
    from ..targets.local import LocalTarget

    guest = targets.get("guest")
    if isinstance(guest, CtrTarget):
        task, namespace, host = guest.task, guest.namespace, guest.parent
        argv = guest.ctr_argv("task", "ls")
    else:
        answers = getattr(loaded.recipe, "answers", None)
        task = str(getattr(getattr(answers, "container", None), "name", "arch"))
        namespace, host = KATA_NAMESPACE, targets.get("host") or LocalTarget()
        argv = ["ctr", "-n", namespace, "task", "ls"]
    found = KataTask(task=task, namespace=namespace, where=host.name)
    try:
        r = await host.run(argv, timeout=timeout)
    except Exception as e:  # an unreachable host: say why
        found.error = str(e).strip() or type(e).__name__
        return found
    if r.rc == 127:
        found.error = f"ctr (containerd) is not installed on {host.name}"
        return found
    if r.rc != 0:
        found.error = (r.stderr.strip() or r.stdout.strip() or f"exit code {r.rc}").splitlines()[-1]
        return found
    for line in r.stdout.splitlines()[1:]:
        cols = line.split()
        if cols and cols[0] == task:
            found.pid = cols[1] if len(cols) > 1 else None
            found.status = cols[2] if len(cols) > 2 else None
    return found


def bundle_path(folder: Path) -> Path:
    """A new file name in ``folder`` (made when missing): ``cai-diagnostic-YYYYmmdd-HHMMSS.tar.gz``."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"cai-diagnostic-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = folder / f"{stem}.tar.gz", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.tar.gz"
    return path


async def write_bundle(
    loaded: LoadedRecipe | None, targets: dict[str, Target], folder: Path, *, timeout: float = 8.0
) -> BundleReport:
    """The support bundle of the recipe's instance (the kata host for kata-virtcca), secrets removed."""
    from ..bundle import BundleOptions, build_bundle

    flow = loaded.recipe.flow if loaded is not None else None
    role = "host" if flow == "kata-virtcca" else "instance"
    opts = BundleOptions(output=bundle_path(folder), loaded=loaded, targets=targets, role=role, doctor_timeout=timeout)
    return await build_bundle(opts)
