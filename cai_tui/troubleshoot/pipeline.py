"""``cai-tui troubleshoot`` without the CLI: find the CAI stack's failing containers, say which FAQ fix applies and
show the line that proves it.

    report = await troubleshoot(TroubleshootOptions(loaded=load_recipe(path), project="cai-docker"))
    report.top("cachefs").faq_id, report.to_json(), report.exit_code

Steps: read the chosen compose project's containers (:mod:`.collect`), match each failing one against the FAQ
knowledge base (:func:`cai_tui.faq.match`), run the related doctor checks once each and fold their results in
(:mod:`.confirm`), rank (:mod:`.rank`), and scrub every string that came from Docker or a check with the support
bundle's scrubber (the recipe's secrets, resolved, and anything secret-looking).

One pass: each failing container's lines are read against the FAQ once (:func:`cai_tui.faq.matcher.scan`); the
first findings choose the related checks, and their results are folded into the same scan
(:meth:`~cai_tui.faq.matcher.Scan.findings`), not matched again. The options are checked once, when
:class:`TroubleshootOptions` is made, for every caller (the CLI, the TUI, the engine).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .collect import InputError, Inspected, observation_of, read_view
from .report import CheckRef, ContainerReport, EvidenceLine, ReportFinding, TroubleshootReport

if TYPE_CHECKING:
    from ..checks.runner import CheckOutcome
    from ..faq.kb import KnowledgeBase
    from ..faq.matcher import Finding, Scan
    from ..recipe.yaml_io import LoadedRecipe
    from ..targets.base import Target
    from .deployed import Deployed

DEFAULT_TAIL = 300
ENGINE_ROLE = "instance"


@dataclass
class TroubleshootOptions:
    loaded: LoadedRecipe | None = None  # the recipe: its targets, its secrets (to scrub) and the related checks
    targets: dict[str, Target] = field(default_factory=dict)  # role -> target; the instance's engine is asked
    project: str | None = None  # None: cai-docker, else the project with the most CAI services
    services: Sequence[str] = ()  # only these compose services (all when empty)
    lang: str = "en"
    tail: int = DEFAULT_TAIL  # log lines per container
    confirm: bool = True  # run the related checks (needs a recipe)
    timeout: float = 10.0  # per Docker call and per check
    kb: KnowledgeBase | None = None
    docker_url: str | None = None  # ask this engine instead of the instance target's

    def __post_init__(self) -> None:
        """Bad values are refused here, once, with the option's name (:class:`InputError`)."""
        if self.lang not in ("en", "zh"):
            raise InputError(f"--lang {self.lang}: en or zh")
        if self.tail < 1:
            raise InputError(f"--tail {self.tail}: a positive number of log lines")
        if not self.timeout > 0:
            raise InputError(f"--timeout {self.timeout:g}: a positive number of seconds")


def _engine_url(opts: TroubleshootOptions) -> str | None:
    if opts.docker_url:
        return opts.docker_url
    target = opts.targets.get(ENGINE_ROLE)
    if target is None or _cli_target(opts) is not None:
        return None
    from ..checks.instance.containers import docker_url_for

    url, why_not = docker_url_for(target)
    if why_not is not None:
        raise InputError(f"--target {ENGINE_ROLE}: {why_not}; troubleshoot needs a live Docker engine")
    return url


def _state_text(i: Inspected) -> str:
    c = i.c
    return f"{c.status} ({c.exit_code})" if c.status in ("exited", "dead") else c.status


def _source(i: Inspected, line: str, source: str) -> str:
    """The engine's own facts were matched as last log lines; say where they really come from."""
    if source.startswith("docker logs"):
        from .collect import engine_lines

        return next((where for text, where in engine_lines(i.c) if text == line), source)
    return source


def _primary(faq_id: str, evid: list[EvidenceLine]) -> EvidenceLine:
    """The proving line; for ``unknown`` the newest error-looking one of its telling lines (else the newest)."""
    from ..faq.matcher import TELLING_RE

    if not evid:
        return EvidenceLine("", "")
    if faq_id != "unknown":
        return evid[0]
    telling = [e for e in evid if TELLING_RE.search(e.line)]
    return (telling or evid)[-1]


def _cli_target(opts: TroubleshootOptions) -> Target | None:
    """An SSH instance target: its engine is asked with the docker CLI through it (host key already verified)."""
    from ..stackinfo import over_ssh

    return None if opts.docker_url else over_ssh(opts.targets.get(ENGINE_ROLE))


async def _deployed(opts: TroubleshootOptions, secret_dir: str, notes: list[str]) -> Deployed | None:
    """The instance's cai.env compared with the recipe (cai flow, an instance target or the local engine)."""
    from ..recipe.model import CaiRecipe
    from ..targets.local import LocalTarget
    from .deployed import deployed_recipe

    if opts.loaded is None or not isinstance(opts.loaded.recipe, CaiRecipe):
        return None
    target = opts.targets.get(ENGINE_ROLE)
    if target is None and opts.docker_url is None:
        target = LocalTarget()  # the local engine: the stack runs here
    if target is None:
        return None
    try:
        got = await deployed_recipe(opts.loaded.recipe, target, secret_dir)
    except Exception as e:  # a target that cannot be read (ssh, permissions): say so, go on with the recipe
        notes.append(f"the deployed cai.env could not be read on {target.name}: {str(e).strip() or type(e).__name__}")
        return None
    if got is None:
        notes.append(
            f"no cai.env at {opts.loaded.recipe.answers.service.env_file} on {target.name}: the related checks use the "
            "recipe's values"
        )
        return None
    for d in got.drift:
        notes.append(f"deployed {got.path}: {d.message}")
    return got


async def _confirm(
    opts: TroubleshootOptions,
    deployed: Deployed | None,
    failing: list[Inspected],
    matched: dict[str, list[Finding]],
    kb: KnowledgeBase,
    notes: list[str],
    outcomes: dict[str, CheckOutcome],
    wanted_by: dict[str, list[str]],
) -> str:
    """Run the related checks (with the deployed values when cai.env was read); fills ``outcomes``/``wanted_by``."""
    from . import confirm as cf

    if not failing:
        return "skipped: nothing failing"
    if not opts.confirm:
        return "skipped: --no-confirm"
    if opts.loaded is None:
        notes.append("related doctor checks not run: no --recipe given")
        return "skipped: no --recipe (the related checks need its endpoints and credentials)"
    rec = deployed.recipe if deployed is not None and deployed.recipe is not None else opts.loaded.recipe
    cannot: set[str] = set()
    for i in failing:
        ids = cf.candidate_checks(matched[i.c.name], i.kind, kb)
        wanted_by[i.c.name] = [s.id for s in cf.runnable(ids, rec, opts.targets)]
        cannot.update(cid for cid in ids if cid not in wanted_by[i.c.name])
    wanted = cf.runnable([cid for ids in wanted_by.values() for cid in ids], rec, opts.targets)
    got, unfinished = await cf.run_related(wanted, rec, opts.targets, opts.timeout)
    outcomes.update(got)
    if cannot:
        notes.append(
            "related checks not run (not in this flow, or their target is not given): " + ", ".join(sorted(cannot))
        )
    if unfinished:
        notes.append(f"related checks unfinished after {opts.timeout * 3:g} s: {', '.join(unfinished)}")
    if not got:
        return "skipped: no related check can run with this recipe and these targets"
    return "ran with the deployed cai.env" if deployed is not None else "ran"


async def troubleshoot(options: TroubleshootOptions) -> TroubleshootReport:
    """The report for the options' engine and project. Raises :class:`InputError` (unknown project or service,
    a target without an engine) and :class:`EngineError` (Docker cannot be asked)."""
    from ..bundle.collect import add_redactor_values, prepare_scrubber
    from ..faq import matcher
    from ..faq.kb import default_kb
    from ..recipe import REDACTOR
    from . import confirm as cf
    from .rank import rank

    opts = options  # checked when made (TroubleshootOptions.__post_init__)
    kb = opts.kb if opts.kb is not None else default_kb()
    scrubber, _ = prepare_scrubber(opts.loaded)
    view = await read_view(
        _engine_url(opts), project=opts.project, tail=opts.tail, timeout=opts.timeout, target=_cli_target(opts)
    )
    shown = view.containers
    if opts.services and view.project is not None:
        have = sorted({i.c.service for i in view.containers})
        for s in opts.services:
            if s not in have:
                raise InputError(f"--service {s}: project {view.project} has no such service; it has {', '.join(have)}")
        shown = [i for i in view.containers if i.c.service in opts.services]
    failing = [i for i in shown if i.condition == "failing"]
    scans: dict[str, Scan] = {i.c.name: matcher.scan(observation_of(i.c, i.kind), kb) for i in failing}  # once each
    matched: dict[str, list[Finding]] = {name: sc.findings() for name, sc in scans.items()}

    notes: list[str] = []
    outcomes: dict[str, CheckOutcome] = {}
    wanted_by: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="cai-tui-deployed-") as secret_dir:
        deployed = await _deployed(opts, secret_dir, notes)
        for value in deployed.secrets if deployed is not None else []:
            scrubber.add(value)
        confirm_state = await _confirm(opts, deployed, failing, matched, kb, notes, outcomes, wanted_by)
    add_redactor_values(scrubber, REDACTOR)  # what the checks resolved

    clean: Callable[[str], str] = lambda s: REDACTOR.redact(scrubber.scrub(s))  # noqa: E731

    def opt_clean(s: str | None) -> str | None:
        return clean(s) if s is not None else None

    findings: list[ReportFinding] = []
    for i in failing:
        name = i.c.name
        found = matched[name]
        attached: dict[str, list[CheckOutcome]] = {}
        confirmed: set[str] = set()
        if outcomes and wanted_by.get(name):
            mine = set(wanted_by[name])
            for cid in list(mine):  # the dependencies that ran for them count too
                o = outcomes.get(cid)
                if o is not None:
                    mine.update(d for d in o.spec.depends if d in outcomes)
            results = {cid: outcomes[cid].result.status for cid in mine if cid in outcomes}
            found = scans[name].findings(results)  # the check results folded into the one scan
            found = cf.diagnosed(found, [outcomes[cid] for cid in sorted(mine) if cid in outcomes], kb, i.kind)
            adjusted = []
            for f in found:
                att = cf.attached_for(f, {k: v for k, v in outcomes.items() if k in mine})
                attached[f.faq_id] = att
                if cf.verdict(att, f.related_checks) == "confirmed":
                    confirmed.add(f.faq_id)
                adjusted.append(cf.adjust(f, att))
            found = adjusted
        for n, f in enumerate(rank(found, confirmed), start=1):
            evid = [EvidenceLine(clean(e.line), clean(_source(i, e.line, e.source)), e.time) for e in f.evidence]
            primary = _primary(f.faq_id, evid)
            att = attached.get(f.faq_id, [])
            findings.append(
                ReportFinding(
                    service=i.c.service,
                    container=name,
                    state=_state_text(i),
                    faq_id=f.faq_id,
                    title=f.title.get(opts.lang),
                    cause=f.cause.get(opts.lang),
                    fix=f.fix.get(opts.lang),
                    evidence=primary,
                    confidence=f.confidence,
                    rank=n,
                    score=f.score,
                    lines=evid,
                    related_checks=[CheckRef(o.id, o.result.status, clean(o.result.summary)) for o in att],
                    confirmation=(cf.verdict(att, f.related_checks) if att else "not-run")
                    if f.faq_id != "unknown"
                    else "not-run",
                )
            )
    containers = [
        ContainerReport(
            service=i.c.service,
            container=i.c.name,
            state=i.c.status,
            health=i.c.health,
            exit_code=i.c.exit_code if i.c.status in ("exited", "dead", "restarting") or i.c.restart_count else None,
            restart_count=i.c.restart_count,
            condition=i.condition,
            project=i.c.project,
            kind=i.kind,
            waiting_on=list(i.waiting_on),
            oom_killed=i.c.oom_killed,
            error=opt_clean(i.c.error),
        )
        for i in shown
    ]
    if view.project is None:
        others = ", ".join(sorted(p or "(no name)" for p in view.projects)) or "none"
        notes.append(
            "no compose project holds a CAI service (oss, attestation-agent, tng, confidential-data-hub, cachefs, "
            f"inference); projects found: {others}. Start the stack (CAI-5.2) or name one with --project."
        )
    return TroubleshootReport(
        project=view.project,
        engine=clean(view.engine),
        containers=containers,
        findings=findings,
        projects={p: sorted(s) for p, s in sorted(view.projects.items())},
        lang=opts.lang,
        confirm=confirm_state,
        notes=[clean(n) for n in notes],
        deployed_env=(
            {**deployed.to_dict(), "drift": [{**d.to_dict(), "message": clean(d.message)} for d in deployed.drift]}
            if deployed is not None
            else None
        ),
    )
