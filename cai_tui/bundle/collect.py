"""What goes into a support bundle, and writing it (``cai-tui bundle``, the tool's ``cai-bug-reporter.sh``, CAI-F5).

Members (under ``cai-tui-bundle/``): ``README.txt``, ``errors.txt``, ``versions.json``, ``doctor.json``,
``containers/NAME/{state.json,logs.txt}``, ``files/`` (the recipe, cai.env and the compose files read from the
instance), ``facts/NAME.txt`` (the capture script's commands, see :mod:`.facts`). Every member passes through the
:class:`~.scrub.Scrubber` (and the :class:`~.pseudonymize.Pseudonymizer` when asked) before it is written. A failing
collector is recorded in ``errors.txt`` and the bundle is still written.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import platform
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .facts import EXTRA_FACTS, FACTS
from .pseudonymize import Pseudonymizer, hosts_of_recipe
from .scrub import Scrubber

if TYPE_CHECKING:
    from ..checks.runner import CheckOutcome
    from ..recipe.yaml_io import LoadedRecipe
    from ..targets.base import Target

TOP = "cai-tui-bundle"
LOG_TAIL = 500
MAPPING_SUFFIX = ".mapping.json"
MAX_FILE = 4 * 1024 * 1024


@dataclass
class BundleOptions:
    output: Path
    loaded: LoadedRecipe | None = None
    targets: dict[str, Target] = field(default_factory=dict)
    role: str = "instance"  # the role whose machine is described (instance; kata host)
    pseudonymize: bool = False
    doctor_timeout: float = 8.0  # per check, and the whole doctor run gets at most 3× this
    command_timeout: float = 15.0
    log_tail: int = LOG_TAIL


@dataclass
class BundleReport:
    path: Path
    size: int
    counts: dict[str, int]  # removals per category
    pseudonyms: int
    mapping_path: Path | None
    errors: list[str]
    members: list[str]
    unresolved: list[str]


@dataclass
class _Collected:
    members: dict[str, bytes] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def put(self, name: str, data: bytes | str) -> None:
        self.members[name] = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data

    def fail(self, what: str, why: object) -> None:
        text = str(why).strip() or type(why).__name__
        self.errors.append(f"{what}: {text}")


# --- the redaction set ---------------------------------------------------------------------------------------------


def prepare_scrubber(loaded: LoadedRecipe | None) -> tuple[Scrubber, list[str]]:
    """A scrubber knowing every secret the recipe references (resolved now: env and file references; keyring when
    available; ``prompt`` is never asked) and the process's redaction set. Returns it and the references that
    could not be resolved (described, never their values)."""
    from ..recipe import REDACTOR, SecretUnavailable, resolve_secret
    from ..recipe.checks_here import iter_secret_refs

    scrubber = Scrubber()
    unresolved: list[str] = []
    if loaded is not None:
        for path, ref in iter_secret_refs(loaded.recipe):
            if ref.scheme == "prompt":
                unresolved.append(f"{path} — `prompt` (not asked: a bundle is made without questions)")
                continue
            try:
                scrubber.add(resolve_secret(ref, field=path))
            except SecretUnavailable as e:  # "FIELD: why" → "FIELD — why" (a "key: value" line would be scrubbed)
                unresolved.append(str(e).replace(f"{path}: ", f"{path} — ", 1))
            except Exception as e:  # a keyring back end's own error
                unresolved.append(f"{path} — {type(e).__name__}")
            if ref.scheme == "file":  # a multi-line secret (a PEM key): every line of it
                _add_file(scrubber, Path(os.path.expanduser(ref.target)))
        answers = getattr(loaded.recipe, "answers", None)
        kms = getattr(answers, "kms", None)
        for name in ("password_file", "client_key_file"):  # the KMS ClientKey password and key file
            p = getattr(kms, name, None)
            if p:
                _add_file(scrubber, Path(os.path.expanduser(str(p))), whole_lines=name == "password_file")
    add_redactor_values(scrubber, REDACTOR)
    return scrubber, unresolved


def add_redactor_values(scrubber: Scrubber, redactor: Any) -> None:
    """The values in a :class:`~cai_tui.recipe.Redactor` (it keeps them privately: no public accessor)."""
    for v in list(getattr(redactor, "_values", ())):
        scrubber.add(v)


def _add_file(scrubber: Scrubber, path: Path, whole_lines: bool = True) -> None:
    try:
        if not path.is_file() or path.stat().st_size > 64 * 1024:
            return
        text = path.read_text("utf-8", "replace")
    except OSError:
        return
    if whole_lines:
        for line in text.splitlines():
            if line.strip() and not line.startswith("-----"):
                scrubber.add(line.strip())


# --- collectors ----------------------------------------------------------------------------------------------------


async def _first_line(
    target: Target, argv: list[str], timeout: float, c: _Collected, what: str, optional: bool = False
) -> str | None:
    """The first line a version command prints; None when the tool is absent (or fails and is ``optional``)."""
    try:
        res = await target.run(argv, timeout=timeout)
    except Exception as e:
        c.fail(f"versions: {what}", e)
        return None
    if res.rc == 127:
        return None
    if res.rc != 0:
        why = f"`{res.command}` exit {res.rc}: {(res.stderr or res.stdout).strip().splitlines()[:1]}"
        if optional:
            c.notes.append(f"versions: {what} not available ({why})")
        else:
            c.fail(f"versions: {what}", why)
        return None
    lines = res.stdout.strip().splitlines()
    return lines[0].strip() if lines else ""


async def collect_versions(opts: BundleOptions, c: _Collected, pseudo: Pseudonymizer | None) -> None:
    from .. import __version__
    from ..targets.local import LocalTarget

    t = opts.command_timeout
    local = opts.targets.get("workstation") or LocalTarget()
    target = opts.targets.get(opts.role) or local
    doc: dict[str, Any] = {
        "cai_tui": __version__,
        "workstation": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "gocryptfs": await _first_line(local, ["gocryptfs", "-version"], t, c, "gocryptfs (workstation)"),
        },
        "target": {"name": target.name, "role": opts.role},
    }
    facts = doc["target"]
    hostname = await _first_line(target, ["uname", "-n"], t, c, "uname -n")
    if pseudo is not None and hostname:
        pseudo.add_host(hostname)
    facts["hostname"] = hostname
    facts["kernel"] = await _first_line(target, ["uname", "-r"], t, c, "uname -r")
    facts["docker_client"] = await _first_line(
        target, ["docker", "version", "--format", "{{.Client.Version}}"], t, c, "docker client"
    )
    facts["docker_server"] = await _first_line(
        target, ["docker", "version", "--format", "{{.Server.Version}}"], t, c, "docker server"
    )
    facts["docker_compose"] = await _first_line(
        target, ["docker", "compose", "version", "--short"], t, c, "docker compose", optional=True
    )
    facts["gocryptfs"] = await _first_line(target, ["gocryptfs", "-version"], t, c, "gocryptfs")
    facts["nvidia_driver"] = await _first_line(
        target, ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], t, c, "nvidia driver", True
    )
    c.put("versions.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


async def collect_doctor(opts: BundleOptions, c: _Collected) -> None:
    from ..checks.base import CheckContext
    from ..checks.registry import all_checks
    from ..checks.runner import run_checks
    from ..recipe import REDACTOR

    rec = opts.loaded.recipe if opts.loaded is not None else None
    flow = rec.flow if rec is not None else None
    short = opts.doctor_timeout
    specs = [
        dataclasses.replace(s, timeout=min(s.timeout or short, short))
        for s in all_checks().values()
        if flow is None or flow in s.flows
    ]
    ctx = CheckContext(recipe=rec, targets=dict(opts.targets), redactor=REDACTOR, timeout=short, prompt=None)
    done: list[CheckOutcome] = []
    try:
        outcomes = await asyncio.wait_for(run_checks(specs, ctx, timeout=short, on_result=done.append), short * 3)
    except asyncio.TimeoutError:
        finished = {o.id for o in done}
        left = sorted(s.id for s in specs if s.id not in finished)
        c.fail("doctor", f"stopped after {short * 3:g} s; unfinished: {', '.join(left)}")
        outcomes = done
    from ..engine.session import doctor_document, waived_failures

    waivers = list(rec.waivers) if rec is not None else []
    source = opts.loaded.source if opts.loaded is not None else None
    doc = doctor_document(outcomes, waived_failures(outcomes, waivers), source)  # cai-tui/doctor/v1, as doctor --json
    c.put("doctor.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def _stack_projects(projects: dict[str, set[str]]) -> set[str]:
    from ..checks.instance.containers import CAI_PROJECT, CAI_SERVICES

    return {p for p, services in projects.items() if services & set(CAI_SERVICES)} | {CAI_PROJECT}


async def collect_containers(opts: BundleOptions, c: _Collected) -> None:
    from ..checks.instance.containers import docker_url_for
    from ..stackinfo import engine_name, over_ssh, read_stack_on
    from ..targets.local import LocalTarget

    target = opts.targets.get(opts.role) or LocalTarget()
    url, why_not = docker_url_for(target)
    if why_not is not None:
        c.fail("containers", f"not collected: {why_not}")
        return
    via = over_ssh(target)  # over SSH the docker CLI runs through the target: its host key checked with known_hosts
    engine = engine_name(url, via)
    try:
        reading = read_stack_on(url, via, opts.command_timeout, tail=opts.log_tail, select=_stack_projects)
        found = (await asyncio.wait_for(reading, opts.command_timeout * 4)).containers
    except Exception as e:  # docker.errors.DockerException, paramiko's, requests', a timeout: all say why
        c.fail("containers", f"cannot ask {engine}: {str(e).strip() or type(e).__name__}")
        return
    if not found:
        c.notes.append(f"containers: no CAI container (compose labels) on {engine}")
    for cont in found:
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in cont.name)
        c.put(f"containers/{safe}/state.json", json.dumps(cont.state_doc(), indent=2, ensure_ascii=False) + "\n")
        c.put(f"containers/{safe}/logs.txt", cont.logs)


async def collect_files(opts: BundleOptions, c: _Collected) -> None:
    from ..targets.home import home_of
    from ..targets.local import LocalTarget

    if opts.loaded is not None:
        try:
            c.put("files/recipe.yaml", Path(opts.loaded.source).read_bytes())
        except OSError as e:
            c.fail("files: recipe", e)
    rec = opts.loaded.recipe if opts.loaded is not None else None
    wanted: list[tuple[str, str]]
    if rec is not None and rec.flow == "kata-virtcca":
        wanted = [("configuration.toml", "/etc/kata-containers/configuration.toml")]
    else:
        from ..recipe.cai import ServiceAnswers

        svc = getattr(getattr(rec, "answers", None), "service", None) or ServiceAnswers()
        wanted = [
            ("cai.env", str(svc.env_file)),
            ("docker-compose.yml", str(svc.compose_file)),
            ("cai-docker-compose.yml", str(svc.cai_compose_file)),
        ]
    target = opts.targets.get(opts.role) or LocalTarget()
    home: str | None = None
    for name, path in wanted:
        if path.startswith("~"):
            home = home or await home_of(target, opts.command_timeout)
            if home is None:
                c.fail(f"files: {name}", f"cannot tell the home directory on {target.name} for {path}")
                continue
            path = home + path[1:]
        try:
            data = await target.read_file(path, max_bytes=MAX_FILE)
        except FileNotFoundError:
            c.notes.append(f"files: {path} does not exist on {target.name}")
            continue
        except Exception as e:
            c.fail(f"files: {name} ({path})", e)
            continue
        c.put(f"files/{name}", data)


async def collect_facts(opts: BundleOptions, c: _Collected) -> None:
    from ..targets.local import LocalTarget

    target = opts.targets.get(opts.role) or LocalTarget()
    sem = asyncio.Semaphore(4)

    async def one(name: str, argv: tuple[str, ...]) -> None:
        import shlex

        async with sem:
            try:
                res = await target.run(list(argv), timeout=opts.command_timeout)
            except Exception as e:
                c.fail(f"facts: {name}", e)
                return
        if res.rc == 127:
            absent.setdefault(argv[0], []).append(name)
            return
        body = res.stdout + (res.stderr if res.stderr else "")
        if body and not body.endswith("\n"):
            body += "\n"
        c.put(f"facts/{name}.txt", f"# $ {shlex.join(argv)}\n{body}# rc={res.rc}\n")

    absent: dict[str, list[str]] = {}
    await asyncio.gather(*(one(n, a) for n, a in (*FACTS, *EXTRA_FACTS)))
    for cmd, names in sorted(absent.items()):
        c.notes.append(f"facts: {cmd} is not installed on {target.name} (skipped: {', '.join(names)})")


# --- writing -------------------------------------------------------------------------------------------------------


def _readme(
    c: _Collected, counts: dict[str, int], pseudo: Pseudonymizer | None, unresolved: list[str], target: str
) -> str:
    lines = [
        "cai-tui support bundle (the tool's answer to cai-bug-reporter.sh, CAI-F5)",
        f"made {time.strftime('%Y-%m-%d %H:%M:%S %z')} about {target}",
        "",
        "Contents:",
        "  versions.json     cai-tui, Python, platform, Docker/Compose, gocryptfs, NVIDIA driver",
        "  doctor.json       `cai-tui doctor --json` (schema cai-tui/doctor/v1), with a short timeout per check",
        "  containers/       per CAI container (compose labels): state.json (state, health log, exit code,",
        f"                    restart count) and logs.txt (`docker logs --timestamps --tail {LOG_TAIL}`)",
        "  files/            the recipe (it holds secret references only), cai.env and the compose files",
        "  facts/            the commands of scripts/capture-machine.sh, in its format (# $ command … # rc=N)",
        "  errors.txt        what could not be collected, and why",
        "",
        "Members:",
        *(f"  {n}" for n in sorted(c.members)),
        "",
        "Removed (every file passed through the scrubber; each removal reads <redacted:CATEGORY>):",
    ]
    lines += [f"  {k}: {v}" for k, v in sorted(counts.items())] or ["  nothing"]
    if unresolved:
        lines += ["", "Secret references that could not be resolved (their values could not be searched for):"]
        lines += [f"  {u}" for u in unresolved]
    lines.append("")
    if pseudo is not None:
        lines += [
            "Pseudonymized: IPv4 → 10.0.0.N, IPv6 → fd00::N, host names → host-N (loopback kept); "
            f"{len(pseudo.ipv4)} IPv4, {len(pseudo.ipv6)} IPv6, {len(pseudo.hosts)} host name(s). "
            "The mapping is kept outside this bundle.",
        ]
    else:
        lines.append("Host names and addresses are as collected (make the bundle with --pseudonymize to replace them).")
    if c.notes:
        lines += ["", "Notes:", *(f"  {n}" for n in c.notes)]
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    now = time.time()

    def write(f: Any) -> None:
        with tarfile.open(fileobj=f, mode="w:gz") as tar:
            for name, data in members:
                info = tarfile.TarInfo(f"{TOP}/{name}")
                info.size, info.mode, info.mtime = len(data), 0o600, now
                tar.addfile(info, io.BytesIO(data))

    _atomic_write(path, write)


async def build_bundle(opts: BundleOptions) -> BundleReport:
    from ..recipe import REDACTOR

    scrubber, unresolved = prepare_scrubber(opts.loaded)
    pseudo: Pseudonymizer | None = None
    if opts.pseudonymize:
        pseudo = Pseudonymizer(hosts_of_recipe(opts.loaded.recipe) if opts.loaded is not None else ())
        for t in opts.targets.values():
            if "://" in t.name:
                from urllib.parse import urlsplit

                try:
                    host = urlsplit(t.name).hostname
                except ValueError:
                    host = None
                if host:
                    pseudo.add_host(host)
    # import the checks here, on this thread: the containers collector runs in a worker thread, and two threads
    # importing the same package at once can see it half-initialised
    from ..checks.instance import containers  # noqa: F401
    from ..checks.registry import all_checks

    all_checks()
    c = _Collected()
    steps = [
        ("versions", collect_versions(opts, c, pseudo)),
        ("doctor", collect_doctor(opts, c)),
        ("containers", collect_containers(opts, c)),
        ("files", collect_files(opts, c)),
        ("facts", collect_facts(opts, c)),
    ]

    async def guarded(what: str, coro: Any) -> None:
        try:
            await coro
        except Exception as e:  # a collector's own bug must not stop the bundle either
            c.fail(what, f"{type(e).__name__}: {e}")

    await asyncio.gather(*(guarded(what, coro) for what, coro in steps))
    add_redactor_values(scrubber, REDACTOR)  # what the doctor's checks resolved too

    def clean(data: bytes) -> bytes:
        data = scrubber.scrub_bytes(data)
        return pseudo.apply_bytes(data) if pseudo is not None else data

    body = [(name, clean(data)) for name, data in sorted(c.members.items())]
    counts = dict(scrubber.counts)
    target = opts.targets.get(opts.role)
    errors_text = "\n".join(c.errors) + "\n" if c.errors else "no collector failed\n"
    errors_clean = clean(errors_text.encode())
    readme = clean(_readme(c, counts, pseudo, unresolved, target.name if target else "this machine").encode())
    members = [("README.txt", readme), ("errors.txt", errors_clean), *body]
    _write_tar(opts.output, members)
    mapping_path: Path | None = None
    if pseudo is not None:
        mapping_path = Path(str(opts.output) + MAPPING_SUFFIX)
        doc = json.dumps({"bundle": opts.output.name, **pseudo.mapping()}, indent=2, ensure_ascii=False) + "\n"
        _atomic_write(mapping_path, lambda f: f.write(doc.encode()))
    return BundleReport(
        path=opts.output,
        size=opts.output.stat().st_size,
        counts=counts,
        pseudonyms=pseudo.count if pseudo is not None else 0,
        mapping_path=mapping_path,
        errors=errors_clean.decode("utf-8", "replace").splitlines() if c.errors else [],
        members=[f"{TOP}/{n}" for n, _ in members],
        unresolved=unresolved,
    )
