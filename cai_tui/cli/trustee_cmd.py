"""``cai-tui trustee …``: Trustee on the ACK cluster — its URL from the ALB (CAI-2.4).

Runs where kubectl reaches the cluster (the recipe's ``trustee_admin`` target). The URL is the seed's
``http://$(kubectl get AlbConfig alb -o jsonpath='{.status.loadBalancer.dnsname}')/<release>``.
"""

from __future__ import annotations

import typer

trustee_app = typer.Typer(help="Trustee on the ACK cluster (CAI-2.x).", no_args_is_help=True)

KUBECTL_TIMEOUT_S = 60
ALB_CONFIG = "alb"
JSONPATH = "{.status.loadBalancer.dnsname}"


def _err(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def alb_dns_name(kubectl: str) -> str:
    """The ALB's DNS name from the AlbConfig; ValueError with a one-line reason."""
    import re
    import subprocess

    argv = [kubectl, "get", "AlbConfig", ALB_CONFIG, "-o", f"jsonpath={JSONPATH}", "--request-timeout=30s"]
    try:
        res = subprocess.run(
            argv, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise ValueError(f"kubectl did not answer within {KUBECTL_TIMEOUT_S}s (is the cluster reachable?)") from None
    except OSError as e:
        raise ValueError(f"cannot run {kubectl}: {e.strerror}") from None
    if res.returncode != 0:
        lines = [ln.strip() for ln in res.stderr.splitlines() if ln.strip()]
        said = lines[-1] if lines else f"exit {res.returncode}"
        if "not found" in said.lower() or "the server doesn't have a resource type" in said.lower():
            raise ValueError(
                f"no AlbConfig {ALB_CONFIG!r} in the cluster ({said}); create the ALB ingress of CAI-2.3 first"
            )
        raise ValueError(f"kubectl failed: {said}")
    name = res.stdout.strip().strip("'\"")
    if not name:
        raise ValueError(
            f"the AlbConfig {ALB_CONFIG!r} has no status.loadBalancer.dnsname yet; wait until the ALB is created "
            "(kubectl get AlbConfig alb) and run again"
        )
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", name):
        raise ValueError(f"kubectl printed {name[:80]!r}, not a DNS name")
    return name


@trustee_app.command("find-url")
def find_url(
    recipe: str = typer.Option(..., "--recipe", help="The recipe (trustee.helm.release names the path)."),
    write: bool = typer.Option(False, "--write", help="Store the URL as trustee.url in the recipe (comments kept)."),
) -> None:
    """Print Trustee's URL, http://<ALB DNS name>/<release>, read from the cluster's AlbConfig (CAI-2.4)."""
    import shutil

    from ..recipe.model import CaiRecipe
    from .common import load_or_report

    loaded = load_or_report(recipe)
    if loaded is None:
        raise typer.Exit(2)
    if not isinstance(loaded.recipe, CaiRecipe):
        raise _err(f"find-url: {recipe} is a {loaded.recipe.flow} recipe; Trustee belongs to the cai flow", 2)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise _err(
            "find-url: kubectl is not installed here; run this where kubectl reaches the ACK cluster "
            "(the recipe's targets.trustee_admin), or install kubectl with the cluster's kubeconfig (CAI-2.2)"
        )
    try:
        dns = alb_dns_name(kubectl)
    except ValueError as e:
        raise _err(f"find-url: {e}") from None
    url = f"http://{dns}/{loaded.recipe.answers.trustee.helm.release}"
    typer.echo(url)
    if not write:
        return
    from ..recipe import RecipeError
    from ..recipe.draft import Draft

    draft = Draft(loaded)
    problem = draft.set("trustee.url", url)
    if problem is not None:
        raise _err(f"find-url: {problem}")
    if not draft.dirty:
        typer.echo(f"{recipe}: trustee.url is already {url}")
        return
    try:
        saved = draft.save()
    except (RecipeError, OSError) as e:
        raise _err(f"find-url: cannot save {recipe}: {e}") from None
    typer.echo(f"{saved}: trustee.url = {url} (the previous file kept as {saved.name}.bak)")
