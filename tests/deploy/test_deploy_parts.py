"""The deploy parts on their own: the plan, container verdicts from ``docker inspect`` documents, Docker's times,
and the Compose probe against real commands that print what Compose v1 / an old v2 print."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cai_tui.deploy.compose_run import ComposeUnavailable, missing_compose, probe_compose
from cai_tui.deploy.execute import default_project_name
from cai_tui.deploy.plan import DeployInputError, build_plan, expand_home, parse_compose_cmd
from cai_tui.deploy.watch import classify, from_inspect, parse_time
from cai_tui.recipe import load_recipe
from cai_tui.targets.base import CommandResult
from cai_tui.targets.local import LocalTarget
from tests.helpers import REPO

CAI = REPO / "recipes" / "cai-qwen2.5-3b-beijing.yaml"
KATA = REPO / "recipes" / "kata-virtcca-qwen1.5-1.8b.yaml"


def test_plan_compose_and_docker_flows() -> None:
    rec: Any = load_recipe(CAI).recipe
    rec.answers.service.deploy_with = "compose"
    plan = build_plan(rec, home="/root")
    assert [(f.kind, f.remote_path, f.mode) for f in plan.files] == [
        ("cai-env", "/root/cai.env", 0o600),
        ("compose", "/root/docker-compose.yml", 0o644),
    ]
    assert [c.argv for c in plan.commands] == [
        ("docker", "compose", "-f", "/root/docker-compose.yml", "up", "-d", "--wait")
    ]
    assert plan.files[0].secrets == (
        "MODEL_OSS_ACCESS_KEY_ID ← env:OSS_ACCESS_KEY_ID",
        "MODEL_OSS_SECRET_ACCESS_KEY ← env:OSS_ACCESS_KEY_SECRET",
    )
    unexpanded = build_plan(rec)
    assert unexpanded.needs_home and unexpanded.files[0].remote_path == "~/cai.env"

    rec.answers.service.deploy_with = "docker"
    plan = build_plan(rec, home="/home/ecs-user/", compose_cmd=("docker-compose",), project="cai-docker")
    assert [(f.kind, f.remote_path, f.mode) for f in plan.files] == [
        ("cai-env", "/home/ecs-user/cai.env", 0o600),
        ("vllm-run", "/home/ecs-user/vllm-run.sh", 0o755),
    ]
    assert plan.commands[0].argv == (
        *("docker-compose", "-p", "cai-docker", "-f", "/opt/alibaba/cai-docker/docker-compose.yml"),
        *("--env-file", "/home/ecs-user/cai.env", "up", "-d", "--wait"),
    )
    assert plan.commands[0].with_action("ps", "-a", "-q")[-3:] == ("ps", "-a", "-q")
    assert plan.next_steps[0].startswith(
        "CAI-5.3: start vLLM once the stack is healthy: bash /home/ecs-user/vllm-run.sh"
    )

    with pytest.raises(DeployInputError, match="cai flow"):
        build_plan(load_recipe(KATA).recipe)
    with pytest.raises(DeployInputError, match="compose project name"):
        build_plan(rec, project="Bad Name")


def test_plan_passes_compose_overrides_after_the_main_file_in_both_flows() -> None:
    rec: Any = load_recipe(CAI).recipe
    assert rec.answers.service.compose_overrides == []  # optional: recipes without it plan as before
    rec.answers.service.compose_overrides = ["/srv/lab/docker-compose.lab.yml", "~/gpu-off.yml"]
    rec.answers.service.deploy_with = "compose"
    plan = build_plan(rec, home="/root")
    assert plan.commands[0].argv == (
        *("docker", "compose", "-f", "/root/docker-compose.yml"),
        *("-f", "/srv/lab/docker-compose.lab.yml", "-f", "/root/gpu-off.yml", "up", "-d", "--wait"),
    )
    assert build_plan(rec).needs_home  # an override under ~ needs the target's home too

    rec.answers.service.deploy_with = "docker"
    plan = build_plan(rec, home="/root", project="cai-docker")
    assert plan.commands[0].argv == (
        *("docker", "compose", "-p", "cai-docker", "-f", "/opt/alibaba/cai-docker/docker-compose.yml"),
        *("-f", "/srv/lab/docker-compose.lab.yml", "-f", "/root/gpu-off.yml"),
        *("--env-file", "/root/cai.env", "up", "-d", "--wait"),
    )
    with pytest.raises(ValueError, match="compose_overrides"):
        rec.answers.service.compose_overrides = ["relative/override.yml"]
    with pytest.raises(DeployInputError, match="~user"):
        expand_home("~admin/cai.env", "/root")
    assert expand_home("~", "/root") == "/root" and expand_home("/etc/x", None) == "/etc/x"
    assert parse_compose_cmd(None) == ("docker", "compose")
    assert parse_compose_cmd("'/opt/my compose/docker-compose'") == ("/opt/my compose/docker-compose",)
    with pytest.raises(DeployInputError):
        parse_compose_cmd("  ")
    assert default_project_name("/opt/alibaba/cai-docker/docker-compose.yml") == "cai-docker"
    assert default_project_name("/home/Me.Work/docker-compose.yml") == "mework"


def doc(status: str, *, health: str | None = None, exit_code: int = 0, restarts: int = 0, **state: Any) -> dict:
    st: dict[str, Any] = {"Status": status, "ExitCode": exit_code, "StartedAt": "2025-01-02T03:04:05.123456789Z"}
    if health:
        st["Health"] = {
            "Status": health,
            "Log": [
                {"Start": "2025-01-02T03:04:06Z", "End": "2025-01-02T03:04:06.1Z", "ExitCode": 1, "Output": "no"},
                {"Start": "2025-01-02T03:04:07Z", "End": "2025-01-02T03:04:07.623456Z", "ExitCode": 0, "Output": ""},
            ],
        }
    st.update(state)
    return {
        "Id": "abc",
        "Name": "/cai-docker-oss-1",
        "RestartCount": restarts,
        "State": st,
        "Config": {"Labels": {"com.docker.compose.project": "cai-docker", "com.docker.compose.service": "oss"}},
    }


@pytest.mark.parametrize(
    ("document", "done", "verdict"),
    [
        (doc("running", health="healthy"), True, "healthy"),
        (doc("running"), True, "running"),  # no healthcheck
        (doc("running", health="starting"), True, "starting"),
        (doc("running", health="unhealthy"), True, "failed"),
        (doc("running", restarts=3), True, "failed"),  # crash loop caught while up
        (doc("running", health="healthy", restarts=1), True, "healthy"),
        (doc("restarting", exit_code=1), True, "failed"),
        (doc("exited", exit_code=0), True, "completed"),
        (doc("exited", exit_code=137, OOMKilled=True), True, "failed"),
        (doc("dead"), True, "failed"),
        (doc("created"), False, "starting"),
        (doc("created"), True, "failed"),  # compose finished and never started it
    ],
)
def test_verdicts(document: dict, done: bool, verdict: str) -> None:
    assert classify(from_inspect(document), compose_done=done) == verdict


def _service(status: str, service: str, depends: str | None = None, **kw: Any) -> dict:
    d = doc(status, **kw)
    d["Name"] = f"/cai-docker-{service}-1"
    labels = d["Config"]["Labels"]
    labels["com.docker.compose.service"] = service
    if depends:
        labels["com.docker.compose.depends_on"] = depends
    return d


def test_never_started_behind_a_failed_dependency_is_waiting_not_failed() -> None:
    """compose's depends_on label: cachefs waits on confidential-data-hub (failed), inference on cachefs (a chain);
    a created container whose dependency is healthy still counts as failed (compose gave up on it)."""
    from cai_tui.deploy.watch import _mark_waiting

    states = [
        from_inspect(_service("exited", "confidential-data-hub", exit_code=101)),
        from_inspect(_service("running", "oss", health="healthy")),
        from_inspect(
            _service("created", "cachefs", "oss:service_healthy:false,confidential-data-hub:service_healthy:false")
        ),
        from_inspect(_service("created", "inference", "cachefs:service_healthy:true")),
        from_inspect(_service("created", "tng", "oss:service_healthy:false")),
    ]
    for st in states:
        st.verdict = classify(st, compose_done=True)
    _mark_waiting(states)
    got = {st.service: (st.verdict, st.waiting_on) for st in states}
    assert got == {
        "confidential-data-hub": ("failed", ()),
        "oss": ("healthy", ()),
        "cachefs": ("waiting", ("confidential-data-hub",)),
        "inference": ("waiting", ("cachefs",)),
        "tng": ("failed", ()),
    }
    assert states[3].state == "created, not started: waiting on cachefs, which failed"


def test_inspect_fields_and_times() -> None:
    s = from_inspect(doc("running", health="healthy"))
    assert (s.name, s.project, s.service, s.health) == ("cai-docker-oss-1", "cai-docker", "oss", "healthy")
    assert s.healthy_after_s == 2.5  # first passing probe 03:04:07.62 − started 03:04:05.12
    assert from_inspect(doc("exited", exit_code=3)).state == "exited (3)"
    assert parse_time("0001-01-01T00:00:00Z") is None and parse_time("junk") is None
    assert parse_time("2025-01-02T03:04:05+08:00") == parse_time("2025-01-01T19:04:05Z")


def result(rc: int, out: str = "", err: str = "") -> CommandResult:
    return CommandResult(("docker", "compose", "up"), rc, out, err, 0.1, "t")


def test_missing_compose_messages() -> None:
    plugin = ("docker", "compose")
    for text in (
        "docker: 'compose' is not a docker command.",
        "docker: unknown command: docker compose",
        "unknown shorthand flag: 'f' in -f",
        "unknown flag: --wait",
    ):
        found = missing_compose(result(1, err=text), plugin, "ssh://root@h:22")
        assert found is not None and found.faq_id == "compose-too-old" and "--compose-cmd" in str(found)
    docker_gone = missing_compose(result(127), plugin, "t")
    assert docker_gone is not None and docker_gone.faq_id == "docker-too-old"
    assert missing_compose(result(1, err="container cai-docker-oss-1 exited (1)"), plugin, "t") is None


def fake_compose(path: Path, version_line: str) -> str:
    """A real executable that prints ``version_line`` for ``version`` (how Compose v1 or an old v2 answers)."""
    path.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    path.chmod(0o755)
    return str(path)


async def test_probe_compose_versions(tmp_path: Path) -> None:
    t = LocalTarget()
    v1 = fake_compose(tmp_path / "v1", "docker-compose version 1.29.2, build 5becea4c")
    with pytest.raises(ComposeUnavailable, match="retired Compose v1"):
        await probe_compose(t, (v1,), need_include=False)
    old = fake_compose(tmp_path / "old", "Docker Compose version v2.6.0")
    assert (await probe_compose(t, (old,), need_include=False)).version == "2.6.0"  # has up --wait
    with pytest.raises(ComposeUnavailable, match="too old for top-level include"):
        await probe_compose(t, (old,), need_include=True)
    with pytest.raises(ComposeUnavailable) as e:
        await probe_compose(t, (str(tmp_path / "absent"),), need_include=True)
    assert e.value.faq_id == "compose-too-old" and "is not installed on local" in str(e.value)
