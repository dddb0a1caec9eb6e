"""target_from_uri: the accepted forms, and bad text refused with all of them listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from cai_tui.targets.container import CtrTarget, DockerExecTarget
from cai_tui.targets.local import LocalTarget
from cai_tui.targets.parse import target_from_uri
from cai_tui.targets.ssh import SshTarget
from cai_tui.targets.sysroot import SysrootTarget


def test_forms(tmp_path: Path) -> None:
    assert isinstance(target_from_uri("local"), LocalTarget)
    ssh = target_from_uri("ssh://admin@203.0.113.7:2222", ssh_config=None)
    assert isinstance(ssh, SshTarget) and ssh.name == "ssh://admin@203.0.113.7:2222"  # nothing connected yet
    assert target_from_uri("ssh://admin@[2001:db8::1]", ssh_config=None).name == "ssh://admin@[2001:db8::1]:22"
    d = target_from_uri("docker://cai-docker-oss-1?host=ssh://root@203.0.113.7")
    assert (
        isinstance(d, DockerExecTarget)
        and d.container == "cai-docker-oss-1"
        and d.docker_url == "ssh://root@203.0.113.7"
    )
    c = target_from_uri("ctr://0123abcd")
    assert isinstance(c, CtrTarget) and (c.namespace, c.task, c.address) == ("k8s.io", "0123abcd", None)
    assert c.ctr_argv("task", "ls") == ["ctr", "-n", "k8s.io", "task", "ls"]
    s = target_from_uri(f"sysroot:{tmp_path}")
    assert isinstance(s, SysrootTarget) and s.name == f"sysroot:{tmp_path}"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "locale",
        "ssh:/host",
        "ssh://",
        "ssh://host:notaport",
        "ssh://host/path",
        "docker://",
        "docker://a/b",
        "docker://a?x=1",
        "ctr://",
        "ctr://ns/task/extra",
        "ctr://t?x=1",
        "sysroot:",
        "http://example.invalid",
        "host:22",
    ],
)
def test_bad_text_lists_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError) as e:
        target_from_uri(text, ssh_config=None)
    message = str(e.value)
    for form in ("local", "ssh://[USER@]HOST[:PORT]", "docker://CONTAINER", "ctr://[NAMESPACE/]TASK", "sysroot:PATH"):
        assert form in message, f"{form!r} missing from: {message}"
