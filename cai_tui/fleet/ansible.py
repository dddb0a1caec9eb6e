"""Where cai-tui meets Ansible: the import guard with the install hint, and one playbook run through ansible-runner.

ansible-runner keeps what it runs in a private data dir: we make it private (0700, removed afterwards), pass
``suppress_env_files=True`` (so neither the environment nor extravars are written there) and never put a secret into
envvars or extravars. The ``ansible-playbook`` it spawns is looked up next to this Python first.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INSTALL_HINT = "pip install 'cai-tui[fleet]' (ansible-core and ansible-runner)"


class FleetUnavailable(RuntimeError):
    """Ansible or ansible-runner is not installed here."""


class FleetInputError(ValueError):
    """Bad input of a fleet run (the inventory, --limit, a host var): the message names it and the fix."""


def require_ansible() -> None:
    """Raise FleetUnavailable with the install command when ansible-core or ansible-runner is missing."""
    missing = []
    for module, package in (("ansible", "ansible-core"), ("ansible_runner", "ansible-runner")):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise FleetUnavailable(f"--hosts runs on Ansible, and {' and '.join(missing)} is not installed: {INSTALL_HINT}")
    if _playbook_bin() is None:
        raise FleetUnavailable(f"ansible-playbook is not on PATH nor next to {sys.executable}: {INSTALL_HINT}")


def _playbook_bin() -> str | None:
    here = Path(sys.executable).parent / "ansible-playbook"
    return str(here) if here.exists() else shutil.which("ansible-playbook")


@contextmanager
def private_dir(prefix: str = "cai-tui-fleet-") -> Iterator[Path]:
    """A 0700 temporary directory, removed with everything in it afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


KEEP_ENV = frozenset(
    (
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR", "TEMP", "TMP",
        "SSH_AUTH_SOCK", "SSH_AGENT_PID", "VIRTUAL_ENV", "NO_COLOR", "KRB5CCNAME", "KRB5_CONFIG",
    )
)  # fmt: skip
KEEP_ENV_PREFIXES = ("LC_", "ANSIBLE_", "XDG_", "PYTHON")


def runner_env(env: dict[str, str], *, drop: frozenset[str] = frozenset()) -> dict[str, str]:
    """The environment ansible-playbook gets: what ansible-runner set for its callback, and of this process's
    environment the variables Ansible and ssh use (locale, home, the ssh agent, the user's ANSIBLE_* settings); without those named in ``drop`` (the recipe's ``env:`` secrets) and without any
    value that holds a secret already resolved in this process."""
    from ..recipe import REDACTOR

    inherited = os.environ
    out = {}
    for k, v in env.items():
        ours = inherited.get(k) == v  # what ansible-runner set itself (its callback's settings) is kept
        if k in drop or (ours and not (k in KEEP_ENV or k.startswith(KEEP_ENV_PREFIXES))):
            continue
        if len(REDACTOR) and v and v in REDACTOR:
            continue
        out[k] = v
    return out


@dataclass
class HostEvent:
    """What one task did on one host, from ansible-runner's ``runner_on_*`` events."""

    host: str
    kind: str  # ok | failed | unreachable | skipped
    task: str
    res: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        msg = str(self.res.get("msg") or "").strip()
        if not msg and self.kind == "failed":
            tail = [ln for ln in str(self.res.get("stdout") or "").splitlines() if ln.strip()][-3:]
            msg = "; ".join(tail) or f"exit status {self.res.get('rc')}"
        return msg


KINDS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


@dataclass
class PlaybookRun:
    status: str  # ansible-runner's: successful | failed | timeout | canceled
    rc: int
    stats: dict[str, Any]
    stderr_tail: str = ""


def run_playbook(
    plays: list[dict[str, Any]],
    inventory: Path,
    workdir: Path,
    *,
    forks: int,
    limit: str | None,
    on_event: Callable[[HostEvent], None],
    cmdline: str | None = None,
    secret_env: frozenset[str] = frozenset(),
) -> PlaybookRun:
    """Run ``plays`` (a playbook as data) on ``inventory``; each host's task results go to ``on_event`` as they come.

    Runs in the calling thread (use :func:`run_in_thread` to overlap with other work)."""
    data = workdir / "runner"
    data.mkdir(mode=0o700, exist_ok=True)
    bindir = str(Path(sys.executable).parent)
    env = {
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
    }

    def handler(event: dict[str, Any]) -> bool:
        kind = KINDS.get(str(event.get("event")))
        data_ = event.get("event_data") or {}
        if kind is not None and data_.get("host"):
            res = dict(data_.get("res") or {})
            if kind == "failed" and res.get("unreachable"):
                kind = "unreachable"  # a task in a block reports a lost connection as a failure that says so
            on_event(HostEvent(str(data_["host"]), kind, str(data_.get("task") or ""), res))
        return True

    kwargs: dict[str, Any] = {
        "private_data_dir": str(data),
        "playbook": plays,
        "inventory": str(inventory),
        "forks": max(1, forks),
        "quiet": True,
        "suppress_env_files": True,
        "envvars": env,
        "event_handler": handler,
    }
    if limit:
        kwargs["limit"] = limit
    if cmdline:
        kwargs["cmdline"] = cmdline
    from ansible_runner.interface import init_runner

    runner = init_runner(**kwargs)
    # ansible-runner seeds ansible-playbook's environment with ours and writes it to artifacts/<ident>/command:
    # hand it only what Ansible needs, never a variable a recipe's secret is read from
    runner.config.env = runner_env(runner.config.env, drop=secret_env)
    runner.run()
    tail = ""
    try:
        out = runner.stdout.read() if runner.stdout is not None else ""
        tail = "\n".join([ln for ln in str(out).splitlines() if ln.strip()][-5:])
    except Exception:  # the runner's stdout file may be gone; the tail is only a hint
        tail = ""
    return PlaybookRun(str(runner.status), int(runner.rc or 0), dict(runner.stats or {}), tail)


def run_in_thread(fn: Callable[[], PlaybookRun]) -> tuple[threading.Thread, queue.Queue[PlaybookRun | BaseException]]:
    """Start ``fn`` in a daemon thread; its result (or exception) arrives on the returned queue."""
    done: queue.Queue[PlaybookRun | BaseException] = queue.Queue()

    def body() -> None:
        try:
            done.put(fn())
        except BaseException as e:  # handed to the caller, who reports it
            done.put(e)

    t = threading.Thread(target=body, name="cai-tui-ansible", daemon=True)
    t.start()
    return t, done
