"""Fixtures shared by every test: the whole lab, in-process (``lab``) or as ``cai-tui lab serve`` (``lab_process``).

* ``lab`` — a started :class:`cai_tui.lab.orchestrator.Lab` on ephemeral ports with a temporary state directory;
* ``lab_process`` — the ready line's document of a ``python -m cai_tui.cli.main lab serve`` subprocess on a free port
  base; at the end it is sent SIGTERM and must exit 0;
* ``lab_process_factory`` — start more of those (``factory(state_dir=…, port_base=…, args=[…])`` → :class:`LabProcess`),
  for tests of signals, restarts and start-up failures;
* :func:`free_port_base` (also the ``lab_port_base`` fixture) — a base N with N..N+3 all free on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
READY_TIMEOUT_S = 20.0  # how long the fixture waits at most; the 2 s promise is asserted by its own test


def free_port_base(count: int = 4, low: int = 20000, high: int = 32000, attempts: int = 200) -> int:
    """A port N such that N..N+count-1 can all be bound on 127.0.0.1 right now (below Linux's ephemeral range)."""
    rng = random.SystemRandom()
    for _ in range(attempts):
        base = rng.randrange(low, high - count)
        held: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports between {low} and {high}")


def loopback_env() -> dict[str, str]:
    """The environment for a lab subprocess: no proxies (everything stays on 127.0.0.1), the checkout importable."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class LabProcess:
    """A ``cai-tui lab serve`` subprocess: stdout is a pipe (the ready line), stderr goes to a file."""

    proc: subprocess.Popen[bytes]
    argv: list[str]
    stderr_path: Path
    started_at: float  # time.monotonic() just before Popen
    info: dict[str, Any] | None = None
    ready_after_s: float | None = None
    stdout_rest: list[str] = field(default_factory=list)
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        threading.Thread(target=self._pump, daemon=True, name=f"lab-stdout-{self.proc.pid}").start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.put(raw.decode("utf-8", "replace"))
        self._lines.put(None)

    @property
    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
        """Wait for the ready line; fails the test with the process's stderr if it does not come."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no ready line within {timeout} s from {' '.join(self.argv)}\nstderr:\n{self.stderr}")
        if line is None:
            rc = self.proc.wait(timeout=10)
            pytest.fail(f"lab serve exited ({rc}) without a ready line\nstderr:\n{self.stderr}")
        self.ready_after_s = time.monotonic() - self.started_at
        try:
            info = json.loads(line)
        except ValueError:
            pytest.fail(f"the first stdout line is not JSON: {line!r}")
        assert isinstance(info, dict) and info.get("event") == "ready", info
        self.info = info
        return info

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait for the exit code (SIGKILL after ``timeout``, which then fails the test)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            pytest.fail(f"lab serve did not stop within {timeout} s of {signal.Signals(sig).name}\n{self.stderr}")
        self.drain()
        return rc

    def drain(self) -> list[str]:
        """Whatever else the process wrote on stdout (after it exited)."""
        while True:
            try:
                line = self._lines.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.stdout_rest.append(line)
        return self.stdout_rest


LabProcessFactory = Callable[..., LabProcess]


@pytest.fixture
def lab_port_base() -> int:
    return free_port_base()


@pytest.fixture
def lab_process_factory(tmp_path: Path) -> Iterator[LabProcessFactory]:
    """``factory(state_dir=None, port_base=None, args=(), wait=True)`` → a started :class:`LabProcess`.

    Every process still running at the end is killed (a test that wants a clean stop calls ``stop()`` itself).
    """
    started: list[LabProcess] = []

    def factory(
        state_dir: Path | None = None, port_base: int | None = None, args: Sequence[str] = (), wait: bool = True
    ) -> LabProcess:
        n = len(started)
        state = state_dir if state_dir is not None else tmp_path / f"lab-state-{n}"
        base = port_base if port_base is not None else free_port_base()
        argv = [sys.executable, "-m", "cai_tui.cli.main", "lab", "serve", "--state-dir", str(state)]
        argv += ["--port-base", str(base), *args]
        err_path = tmp_path / f"lab-serve-{n}.stderr"
        with open(err_path, "wb") as err:
            t0 = time.monotonic()
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=loopback_env(), cwd=tmp_path
            )
        lp = LabProcess(proc, argv, err_path, t0)
        started.append(lp)
        if wait:
            lp.wait_ready()
        return lp

    yield factory
    for lp in started:
        if lp.proc.poll() is None:
            lp.proc.kill()
            lp.proc.wait(timeout=10)
        if lp.proc.stdout is not None:
            lp.proc.stdout.close()


@pytest.fixture
def lab_process(lab_process_factory: LabProcessFactory) -> Iterator[dict[str, Any]]:
    """The ready line of a ``cai-tui lab serve`` subprocess (without the instance: no image to build, ready in
    seconds); SIGTERM at the end must stop it with exit code 0."""
    lp = lab_process_factory(args=["--no-instance"])
    assert lp.info is not None
    yield lp.info
    rc = lp.stop(signal.SIGTERM)
    assert rc == 0, f"lab serve exited {rc} on SIGTERM\nstderr:\n{lp.stderr}"


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A started in-process lab (ephemeral ports, state in a temporary directory); stopped afterwards."""
    from cai_tui.lab.orchestrator import Lab

    for var in PROXY_VARS:  # the SDKs honour proxy variables; everything must go straight to 127.0.0.1
        monkeypatch.delenv(var, raising=False)
    with Lab(state_dir=tmp_path / "lab-state") as running:
        yield running


class LabClients:
    """The real clients (oss2, the KMS SDK, KbsClient) configured from a lab's ``credentials.json``."""

    def __init__(self, credentials_path: str | Path) -> None:
        self.creds: dict[str, Any] = json.loads(Path(credentials_path).read_text("utf-8"))

    def oss_bucket(self, *, sts: bool = False, timeout: float = 5) -> Any:
        import oss2

        c = self.creds
        if sts:
            auth: Any = oss2.StsAuth(c["oss_sts_access_key_id"], c["oss_sts_access_key_secret"], c["oss_sts_token"])
        else:
            auth = oss2.Auth(c["oss_access_key_id"], c["oss_access_key_secret"])
        session = oss2.Session()
        session.session.trust_env = False
        return oss2.Bucket(
            auth, c["oss_endpoint"], c["oss_bucket"], session=session, connect_timeout=timeout, region=c["oss_region"]
        )

    def kms(self) -> Any:
        from alibabacloud_kms20160120.client import Client
        from alibabacloud_tea_openapi import models as open_api_models

        c = self.creds
        return Client(
            open_api_models.Config(
                access_key_id=c["kms_access_key_id"],
                access_key_secret=c["kms_access_key_secret"],
                endpoint=c["kms_endpoint"],
                protocol="http",
                region_id=c["kms_region"],
                connect_timeout=2000,
                read_timeout=5000,
            )
        )

    def kms_secret(self, name: str | None = None) -> str:
        from alibabacloud_kms20160120 import models as kms_models

        req = kms_models.GetSecretValueRequest(secret_name=name or self.creds["kms_secret_name"])
        return str(self.kms().get_secret_value(req).body.secret_data)

    def kbs(self, timeout: float = 5.0) -> Any:
        from cai_tui.clients.kbs import KbsClient

        return KbsClient(self.creds["trustee_url"], timeout=timeout, protocol_version=self.creds["protocol_version"])

    def kbs_model_key(self, timeout: float = 5.0) -> bytes:
        """auth (the lab's protocol version) → attest with sample evidence → get the model key resource."""
        with self.kbs(timeout) as client:
            result = client.auth(tee="sample")
            assert result.nonce and result.client_version == self.creds["protocol_version"]
            client.attest_sample()
            return bytes(client.get_resource(self.creds["model_key_id"]))


@pytest.fixture
def lab_clients() -> type[LabClients]:
    """``lab_clients(credentials_path)`` → :class:`LabClients`."""
    return LabClients


# what applying the CAI flow on a bare lab changes, (stage, item): the replay and the wizard's whole-flow tests both hold
# their runs to it
APPLIED_FROM_NOTHING = {
    ("model-encrypt", "model.create_key_file"),
    ("model-encrypt", "model.encrypt"),
    ("model-upload", "model.upload"),
    ("model-key", "kms.create_secret"),
    ("access", "oss.apply_bucket_policy"),
    ("cai-env", "cai-env"),
    ("cai-stack", "cai.start_stack"),
}


@pytest.fixture
def bare_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A bare lab (plaintext model only) with its Docker instance: every stage of the CAI flow has work to do."""
    from cai_tui.lab.orchestrator import Lab
    from tests.targets.docker_lab import ensure_engine

    if os.geteuid() != 0:
        pytest.fail("the lab instance bind-mounts MODEL_MOUNT_POINT and runs FUSE in containers: run as root")
    ensure_engine()
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    with Lab(state_dir=tmp_path / "lab-state", seed="bare", instance=True) as lab:
        assert lab.ready_info()["instance"]["state"] == "ready", lab.ready_info()["instance"]
        yield lab


# The fast lane (`pytest -m "not slow"`, README): the long kinds of test are marked slow here by what they use, so a new
# test of those kinds is marked without anyone remembering to — the lab's servers started per test (`lab`, `bare_lab`,
# the lab process), the labstack and fault matrix (Docker), deploys (Docker, SSH), fleets (sshd, Ansible) and the
# wizard's Pilot tests (a Textual app booted per test); and the modules that drive real Docker, containerd, sshd, loop
# devices or network namespaces. Other long tests carry @pytest.mark.slow themselves; the CI plugin lists any unmarked
# test over 5 s at the end of a run.
SLOW_FIXTURES = frozenset(
    {"lab", "bare_lab", "lab_process", "lab_process_factory", "stack_bed", "stack_bed_factory", "labstack_image"}
)
SLOW_FOLDERS = frozenset({"labstack", "deploy", "fleet", "tui"})
SLOW_MODULES = frozenset(
    {
        "cli/test_init_cmd.py",  # plain mode through a pty and the wizard
        "checks/test_instance_docker.py",  # Docker
        "troubleshoot/test_docker.py",  # Docker
        "troubleshoot/test_compose.py",  # Docker Compose
        "targets/test_container.py",  # Docker and containerd
        "targets/test_ssh.py",  # sshd
        "kata/test_container_run.py",  # containerd
        "kata/test_cni_attach.py",  # network namespaces
        "kata/test_image_import.py",  # containerd
        "kata/test_rootfs_mount.py",  # loop devices
        "kata/test_rootfs_grow.py",  # qemu-img, e2fsprogs
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        path = Path(str(item.path))
        module = path.relative_to(tests).as_posix() if path.is_relative_to(tests) else path.name
        if (
            path.parent.name in SLOW_FOLDERS
            or module in SLOW_MODULES
            or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
        ):
            item.add_marker(pytest.mark.slow)
