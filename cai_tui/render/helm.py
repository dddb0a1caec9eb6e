"""CAI-2.3: the Trustee chart install, KMS as the key store.

The value key is the chart's own ``kbs.aliyunKms.kmsIntanceId`` (sic: "Intance"); the three KMS files go in with
``--set-file`` (helm reads them itself, so ``~`` is expanded by the shell through ``"$HOME"``).
"""

from __future__ import annotations

from ..recipe import CaiRecipe
from .base import Prompter, Rendered, Renderer, RenderError, need
from .shell import Raw, Word, line, multiline, q, qpath, script

PLUGIN_URL = "https://github.com/AliyunContainerService/helm-acr"
CHART_REPO = "acr://trustee-chart.cn-hangzhou.cr.aliyuncs.com/trustee/trustee"
INSTANCE_ID_KEY = "kbs.aliyunKms.kmsIntanceId"  # the chart's spelling
FILE_KEYS = (
    ("kbs.aliyunKms.clientKey", "client_key_file", "clientKey_*.json"),
    ("kbs.aliyunKms.password", "password_file", "clientKey_*_Password.txt"),
    ("kbs.aliyunKms.certPem", "ca_file", "PrivateKmsCA_*.pem"),
)


def _helm_value(path: str, field: str) -> str:
    """helm's --set parser splits on ',' and treats '\\' as an escape; refuse paths that need either."""
    if "," in path or "\\" in path:
        raise RenderError(f"answers.kms.{field} {path!r} contains ',' or '\\', which helm --set-file cannot take")
    return path


class HelmInstall(Renderer):
    kind = "helm-install"
    title = "helm install of Trustee with the KMS backend (CAI-2.3)"
    flow = "cai"
    default_path = "~/trustee-install.sh"
    mode = 0o755

    def render(self, recipe: CaiRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        a = recipe.answers
        h = a.trustee.helm
        instance_id = need(a.kms.instance_id, "kms.instance_id", "the KMS instance ID kst-…")
        files: list[list[Word]] = []
        for key, field, what in FILE_KEYS:
            path = need(getattr(a.kms, field), f"kms.{field}", f"the path of {what}")
            files.append(["--set-file", Raw(qpath(_helm_value(path, field), prefix=f"{key}="))])
        install = multiline(
            ["helm", "install", h.release, "trustee/trustee"],
            ["--version", h.chart_version],
            ["--set", f"regionId={h.region}"],
            ["--set", "kbs.aliyunKms.enabled=true"],
            ["--set", f"{INSTANCE_ID_KEY}={instance_id}"],
            *files,
            ["--namespace", h.namespace],
        )
        notes = []
        if a.kms.region != h.region:
            notes.append(
                f"answers.kms.region ({a.kms.region}) differs from the chart's regionId ({h.region}); "
                "the KMS instance must be in the ACK cluster's region (CAI-2.0)"
            )
        body = [
            "# If the plugin install fails: helm plugin uninstall cm-push, then run this again.",
            line(["helm", "plugin", "list"])
            + " | grep -q '^cm-push' || "
            + line(["helm", "plugin", "install", PLUGIN_URL]),
            line(["helm", "repo", "add", "trustee", CHART_REPO]),
            line(["helm", "repo", "update"]),
            install,
            "",
            "# CAI-2.4: the Trustee URL (TRUSTEE_URL in cai.env)",
            "echo http://$(kubectl get AlbConfig alb -o jsonpath='{.status.loadBalancer.dnsname}')/" + q(h.release),
        ]
        text = script(
            body,
            header=[
                f"CAI-2.3: install Trustee {h.chart_version} as release {h.release} in namespace {h.namespace},",
                f"with KMS instance {instance_id} ({h.region}) as its key store.",
            ],
        )
        return self.done(text, notes=tuple(notes))
