"""``cai-tui trustee find-url`` (CAI-2.4).

kubectl talks to an ACK cluster, which cannot run here: the tests put a test double on PATH — a real executable
named ``kubectl`` (a shell script) that checks it is asked exactly the seed's question
(``get AlbConfig alb -o jsonpath={.status.loadBalancer.dnsname}``) and answers as kubectl does (the DNS name on
stdout; ``Error from server (NotFound)`` on stderr with exit 1). A PATH without kubectl gives the missing-tool path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cai_tui.recipe import load_recipe
from tests.conftest import loopback_env
from tests.helpers import REPO, run_cli

DNS = "alb-3kx1pcmywtfl9aewc.cn-hangzhou.alb.aliyuncsslb.com"
KUBECTL = r"""#!/bin/sh
[ "$1 $2 $3 $4 $5" = "get AlbConfig alb -o jsonpath={.status.loadBalancer.dnsname}" ] || {
  echo "unexpected arguments: $*" >&2; exit 3; }
case "$CAI_TEST_KUBECTL" in
  ok) printf '%s' "$CAI_TEST_DNS" ;;
  empty) ;;
  missing) echo 'Error from server (NotFound): albconfigs.alibabacloud.com "alb" not found' >&2; exit 1 ;;
esac
"""


def bin_with_kubectl(tmp_path: Path) -> Path:
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    k = d / "kubectl"
    k.write_text(KUBECTL)
    k.chmod(0o755)
    return d


def recipe_copy(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text((REPO / "recipes" / "cai-qwen2.5-3b-beijing.yaml").read_text())
    return path


def find_url(path: Path, bindir: Path, mode: str, *extra: str) -> Any:
    env = {**loopback_env(), "PATH": str(bindir), "CAI_TEST_KUBECTL": mode, "CAI_TEST_DNS": DNS}
    return run_cli("trustee", "find-url", "--recipe", str(path), *extra, env=env)


def test_prints_the_url_and_writes_it(tmp_path: Path) -> None:
    path = recipe_copy(tmp_path)
    before = path.read_text()
    release = load_recipe(path).recipe.answers.trustee.helm.release  # type: ignore[union-attr]
    bindir = bin_with_kubectl(tmp_path)
    r = find_url(path, bindir, "ok")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"http://{DNS}/{release}"
    assert path.read_text() == before  # without --write nothing changes
    r = find_url(path, bindir, "ok", "--write")
    assert r.returncode == 0, r.stderr
    assert load_recipe(path).recipe.answers.trustee.url == f"http://{DNS}/{release}"  # type: ignore[union-attr]
    assert (tmp_path / "recipe.yaml.bak").read_text() == before
    comments = [ln for ln in before.splitlines() if ln.lstrip().startswith("#")]
    after = path.read_text()
    assert comments and all(c in after for c in comments)  # comments kept
    r = find_url(path, bindir, "ok", "--write")
    assert r.returncode == 0 and "already" in r.stdout


def test_no_albconfig_or_no_dns_name_yet(tmp_path: Path) -> None:
    path = recipe_copy(tmp_path)
    bindir = bin_with_kubectl(tmp_path)
    r = find_url(path, bindir, "missing")
    assert r.returncode == 1 and "no AlbConfig 'alb'" in r.stderr and "CAI-2.3" in r.stderr
    assert "Error from server (NotFound)" in r.stderr and "Traceback" not in r.stderr
    r = find_url(path, bindir, "empty", "--write")
    assert r.returncode == 1 and "no status.loadBalancer.dnsname yet" in r.stderr
    assert not (tmp_path / "recipe.yaml.bak").exists()


def test_kubectl_missing(tmp_path: Path) -> None:
    path = recipe_copy(tmp_path)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    r = find_url(path, empty, "ok")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("find-url: kubectl is not installed here") and "trustee_admin" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
