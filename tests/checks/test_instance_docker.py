"""docker.version, docker.compose and cai.containers against the real local Docker engine (dockerd from Debian's
docker.io, started when it is not running; a busybox image imported from /bin/busybox, no registry), plus captured
docker outputs for what this machine cannot show (an old engine, Compose v1)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from cai_tui.checks import instance
from cai_tui.checks.base import CheckContext, Result
from cai_tui.checks.instance._common import _output
from cai_tui.checks.instance.docker import _parse_docker
from cai_tui.checks.registry import all_checks
from cai_tui.checks.runner import CheckOutcome, run_checks
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.capture import CaptureTarget
from cai_tui.targets.local import LocalTarget
from tests.targets.docker_lab import docker, ensure_engine, ensure_image

REPO = Path(__file__).resolve().parents[2]
PARSERS = REPO / "tests/fixtures/parsers"


def run_ids(target: object, ids: Iterable[str], timeout: float = 20.0) -> dict[str, CheckOutcome]:
    ctx = CheckContext(recipe=None, targets={"instance": target}, redactor=Redactor(), timeout=timeout)  # type: ignore[dict-item]
    return {o.id: o for o in asyncio.run(run_checks(list(all_checks().values()), ctx, only=list(ids), timeout=timeout))}


def run_over_ssh(workdir: Path, ids: Iterable[str]) -> dict[str, CheckOutcome]:
    """``run_ids`` with an ssh:// instance: a real sshd on 127.0.0.1 (as root, this machine and its engine)."""
    from cai_tui.targets.ssh import SshTarget
    from tests.targets.sshd_lab import make_sshd

    if os.geteuid() != 0:
        pytest.fail("the SSH variant logs in as this user and needs its docker access: run it as root")
    server = make_sshd(workdir / f"sshd-{uuid.uuid4().hex[:6]}")
    server.start()
    known = server.workdir / "client_known_hosts"
    known.write_text(server.known_hosts_line())
    target = SshTarget(
        f"ssh://{server.user}@127.0.0.1:{server.port}",
        known_hosts=known,
        identity_file=server.client_key,
        use_agent=False,
        look_for_keys=False,
        ssh_config=None,
    )
    try:
        return run_ids(target, ids)
    finally:
        asyncio.run(target.close())
        server.stop()


def expect(out: dict[str, CheckOutcome], check_id: str, status: str, faq: str | None = None) -> Result:
    r = out[check_id].result
    assert r.status == status, f"{check_id}: {r.status} {r.summary}"
    if faq is not None:
        assert r.fix is not None and r.fix.faq_id == faq, r.fix
    if status in ("fail", "warn"):
        assert r.fix is not None and r.fix.text and r.evidence, f"{check_id}: a {status} needs a fix and evidence"
    return r


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> str:
    ensure_engine()
    return ensure_image(tmp_path_factory.mktemp("busybox-image"))


# --- docker.version --------------------------------------------------------------------------------------------------


def test_docker_version_of_the_local_engine(engine: str) -> None:
    server = docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    r = expect(run_ids(LocalTarget(), ["docker.version"]), "docker.version", "pass")
    assert r.data["server_version"] == server and r.summary.startswith(f"Docker Engine {server}")
    assert f"Server Version: {server}" in [e.observed for e in r.evidence]
    assert {e.source for e in r.evidence} == {"docker version --format '{{json .}}'"}


def test_docker_daemon_not_answering(engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    r = expect(run_ids(LocalTarget(), ["docker.version"]), "docker.version", "fail", "docker-too-old")
    assert "the Docker daemon does not answer" in r.summary and "Cannot connect to the Docker daemon" in r.summary
    assert r.data["server_version"] is None and r.data["client_version"]


def put_fixture(d: Path, fixture: str) -> None:
    lines = [ln for ln in (PARSERS / fixture).read_text().splitlines() if not ln.startswith("## ")]
    d.mkdir(parents=True, exist_ok=True)
    (d / fixture).write_text("\n".join(lines) + "\n")


def test_docker_versions_from_captures(tmp_path: Path) -> None:
    put_fixture(tmp_path / "1903", "docker-version-json.txt")  # 19.03.6: newer than 19.03
    r = expect(run_ids(CaptureTarget(tmp_path / "1903"), ["docker.version"]), "docker.version", "pass")
    assert r.summary == "Docker Engine 19.03.6 (API 1.40)"
    put_fixture(tmp_path / "old", "docker-version-json.txt")  # the same engine, its versions turned into 18.09.7
    f = tmp_path / "old/docker-version-json.txt"
    f.write_text(f.read_text().replace("19.03.6", "18.09.7").replace('"1.40"', '"1.39"'))
    r = expect(run_ids(CaptureTarget(tmp_path / "old"), ["docker.version"]), "docker.version", "fail", "docker-too-old")
    assert r.summary == "Docker Engine 18.09.7 is not newer than 19.03"
    assert "Server Version: 18.09.7" in [e.observed for e in r.evidence]
    put_fixture(tmp_path / "debian", "docker-version-debian.txt")  # plain `docker version` only
    r = expect(run_ids(CaptureTarget(tmp_path / "debian"), ["docker.version"]), "docker.version", "pass")
    assert r.summary == "Docker Engine 20.10.24+dfsg1 (API 1.41)" and r.evidence[0].source == "docker version"
    put_fixture(tmp_path / "nodaemon", "docker-version-json-noserver.txt")
    r = expect(run_ids(CaptureTarget(tmp_path / "nodaemon"), ["docker.version"]), "docker.version", "fail")
    assert "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" in r.summary


# --- docker.compose --------------------------------------------------------------------------------------------------


def compose_plugin(config_dir: Path, version: str) -> None:
    """A Docker CLI plugin (the real plugin protocol) standing in for Compose: it answers the CLI's metadata query and
    `docker compose version` as Compose prints it."""
    plugins = config_dir / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"SchemaVersion": "0.1.0", "Vendor": "cai-tui tests", "Version": version})
    script = plugins / "docker-compose"
    script.write_text(
        "#!/bin/sh\n"
        f"if [ \"$1\" = docker-cli-plugin-metadata ]; then echo '{meta}'; exit 0; fi\n"
        f'if [ "$1" = compose ] && [ "$2" = version ]; then echo "Docker Compose version {version}"; exit 0; fi\n'
        'echo unexpected "$@" >&2; exit 2\n'
    )
    script.chmod(0o755)


def test_compose_plugin_versions_through_the_real_cli(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new, old = tmp_path / "new", tmp_path / "old"
    compose_plugin(new, "v2.29.1")
    compose_plugin(old, "v2.6.0")
    monkeypatch.setenv("DOCKER_CONFIG", str(new))
    r = expect(run_ids(LocalTarget(), ["docker.compose"]), "docker.compose", "pass")
    assert r.summary == "Docker Compose 2.29.1 (`include:` supported)"
    assert [e.observed for e in r.evidence] == ["Docker Compose version v2.29.1"]
    monkeypatch.setenv("DOCKER_CONFIG", str(old))
    r = expect(run_ids(LocalTarget(), ["docker.compose"]), "docker.compose", "fail", "compose-too-old")
    assert "Docker Compose 2.6.0 predates top-level `include:`" in r.summary


def test_compose_v1_and_v2_from_captures(tmp_path: Path) -> None:
    put_fixture(tmp_path / "v1", "compose-v1.txt")
    r = expect(run_ids(CaptureTarget(tmp_path / "v1"), ["docker.compose"]), "docker.compose", "fail", "compose-too-old")
    assert "retired Compose v1" in r.summary and "docker-compose version 1.29.2, build 5becea4c" in r.summary
    assert "no top-level `include:`" in r.summary and r.data == {"version": "1.29.2", "v1": True, "plugin": False}
    put_fixture(tmp_path / "v2", "compose-v2.txt")
    r = expect(run_ids(CaptureTarget(tmp_path / "v2"), ["docker.compose"]), "docker.compose", "pass")
    assert r.data["version"] == "2.29.1"


# --- cai.containers --------------------------------------------------------------------------------------------------


class Stack:
    """Containers labelled as a compose project's services, as `docker compose up` labels them."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.tag = uuid.uuid4().hex[:8]
        self.names: list[str] = []

    def add(self, project: str, service: str, kind: str) -> str:
        name = f"caitui-{self.tag}-{project}-{service}-1"
        args = ["run", "-d", "--name", name]
        args += ["--label", f"com.docker.compose.project={project}", "--label", f"com.docker.compose.service={service}"]
        if kind == "healthy":
            args += ["--health-cmd", "true", "--health-interval", "1s", self.image, "sleep", "600"]
        elif kind == "unhealthy":
            args += ["--health-cmd", "echo attestation-agent.sock missing; false"]
            args += ["--health-interval", "1s", "--health-retries", "1", self.image, "sleep", "600"]
        elif kind == "starting":
            args += ["--health-cmd", "true", "--health-interval", "300s", self.image, "sleep", "600"]
        elif kind == "exits":
            args += [self.image, "sh", "-c", "echo 'Gocryptfs decryption mount failed: password incorrect' >&2; exit 1"]
        else:  # pragma: no cover
            raise ValueError(kind)
        docker(*args)
        self.names.append(name)
        return name

    def wait(self, name: str, want: str, timeout: float = 30) -> None:
        fmt = "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}"
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = docker("inspect", "-f", fmt, name).stdout.strip()
            if state == want:
                return
            time.sleep(0.2)
        pytest.fail(f"{name} did not reach {want!r} within {timeout} s (last: {state!r})")

    def remove(self, name: str) -> None:
        docker("rm", "-f", name, check=False)
        self.names.remove(name)

    def close(self) -> None:
        if self.names:
            docker("rm", "-f", *self.names, check=False)
        self.names.clear()


@pytest.fixture
def stack(engine: str) -> Iterator[Stack]:
    s = Stack(engine)
    leftovers = docker("ps", "-aq", "--filter", "label=com.docker.compose.project=cai-docker").stdout.split()
    if leftovers:
        pytest.fail(f"containers of compose project cai-docker already exist here ({' '.join(leftovers)}); remove them")
    try:
        yield s
    finally:
        s.close()


HEALTHY = ("oss", "attestation-agent", "confidential-data-hub")


def test_stack_with_an_unhealthy_and_an_exited_service_fails_naming_them(stack: Stack, tmp_path: Path) -> None:
    names = {svc: stack.add("cai-docker", svc, "healthy") for svc in HEALTHY}
    tng = stack.add("cai-docker", "tng", "unhealthy")
    cachefs = stack.add("cai-docker", "cachefs", "exits")
    for svc in HEALTHY:
        stack.wait(names[svc], "running healthy")
    stack.wait(tng, "running unhealthy")
    stack.wait(cachefs, "exited")
    r = expect(run_ids(LocalTarget(), ["cai.containers"]), "cai.containers", "fail", "cai-container-unhealthy")
    assert r.summary == "project cai-docker: tng running, unhealthy, cachefs exited (1)"  # in the stack's order
    for svc in HEALTHY:
        assert svc not in r.summary
    observed = [e.observed for e in r.evidence]
    assert f"{cachefs}: exited (1)" in observed and f"{tng}: running, unhealthy" in observed
    assert "Gocryptfs decryption mount failed: password incorrect" in observed
    assert "attestation-agent.sock missing" in observed
    assert (
        r.fix is not None and "cai-tui troubleshoot" in r.fix.text and "CAI-F4" in r.fix.text and "CAI-F3" in r.fix.text
    )
    assert r.data["project"] == "cai-docker" and r.data["missing"] == []
    assert r.data["services"]["cachefs"][0]["exit_code"] == 1

    # the same engine asked over SSH (real sshd on loopback; the docker CLI through our target, host key checked)
    ssh_r = expect(run_over_ssh(tmp_path, ["cai.containers"]), "cai.containers", "fail")
    assert ssh_r.summary == r.summary and ssh_r.data["services"] == r.data["services"]
    assert "Gocryptfs decryption mount failed: password incorrect" in "\n".join(e.observed for e in ssh_r.evidence)

    # fixed: every service up and healthy
    stack.remove(tng)
    stack.remove(cachefs)
    for name in [stack.add("cai-docker", svc, "healthy") for svc in ("tng", "cachefs")]:
        stack.wait(name, "running healthy")
    r = expect(run_ids(LocalTarget(), ["cai.containers"]), "cai.containers", "pass")
    assert r.summary.startswith("project cai-docker: all 5 services up (oss healthy, attestation-agent healthy")


def test_starting_and_missing_services(stack: Stack) -> None:
    for name in [
        stack.add("cai-docker", svc, "healthy") for svc in ("oss", "attestation-agent", "tng", "confidential-data-hub")
    ]:
        stack.wait(name, "running healthy")
    r = expect(run_ids(LocalTarget(), ["cai.containers"]), "cai.containers", "fail", "cai-container-unhealthy")
    assert r.summary == "project cai-docker: cachefs not created" and r.data["missing"] == ["cachefs"]
    stack.wait(stack.add("cai-docker", "cachefs", "starting"), "running starting")
    r = expect(run_ids(LocalTarget(), ["cai.containers"]), "cai.containers", "warn", "cai-container-unhealthy")
    assert "cachefs still starting" in r.summary


def test_directory_named_project_is_found(stack: Stack) -> None:
    """Included from ~/docker-compose.yml run in /root, the project is `root` (root-oss-1, …)."""
    others = set(
        docker(
            "ps",
            "-a",
            "--filter",
            "label=com.docker.compose.project",
            "--format",
            '{{.Label "com.docker.compose.project"}}',
        ).stdout.split()
    )
    if others:  # the check picks among the engine's projects: another run's containers would be picked instead
        pytest.fail(
            f"compose projects {sorted(others)} run on this Docker engine: another test run shares it; run alone"
        )
    stack.wait(stack.add("root", "oss", "healthy"), "running healthy")
    r = expect(run_ids(LocalTarget(), ["cai.containers"]), "cai.containers", "fail", "cai-container-unhealthy")
    assert r.data["project"] == "root"
    assert r.summary == (
        "project root: attestation-agent not created, tng not created, confidential-data-hub not created, "
        "cachefs not created"
    )


def test_engine_unreachable(engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    r = expect(run_ids(LocalTarget(), ["cai.containers"]), "cai.containers", "unknown")
    assert r.summary.startswith("cannot ask the local Docker engine")


def test_docker_url_follows_the_instance_target() -> None:
    from cai_tui.targets.ssh import SshTarget

    assert instance.docker_url_for(LocalTarget()) == (None, None)
    ssh = SshTarget("ssh://root@203.0.113.7:2222")
    assert instance.docker_url_for(ssh) == ("ssh://root@203.0.113.7:2222", None)
    url, why = instance.docker_url_for(CaptureTarget(REPO / "tests/fixtures/captures/h100-vm-2026-11-22"))
    assert url is None and why is not None and "no Docker engine" in why


def test_tools_are_here() -> None:
    """What these tests need on the machine (CI installs: docker.io containerd busybox-static)."""
    missing = [tool for tool in ("docker", "dockerd") if shutil.which(tool) is None]
    if not os.path.exists("/bin/busybox"):
        missing.append("busybox-static")
    assert not missing, f"install: apt-get install -y docker.io containerd busybox-static (missing: {missing})"
    assert subprocess.run(["/bin/busybox", "true"]).returncode == 0


def test_stderr_chatter_next_to_the_json_is_ignored() -> None:
    from cai_tui.targets.base import CommandResult

    json_line = next(ln for ln in (PARSERS / "docker-version-json.txt").read_text().splitlines() if ln.startswith("{"))
    res = CommandResult(
        instance.DOCKER_JSON, 0, json_line + "\n", "WARNING: Error loading config file: denied\n", 0.1, "x"
    )
    assert _parse_docker(_output(res), res).server_version == "19.03.6"
