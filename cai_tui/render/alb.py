"""CAI-4.2 / CAI-6.1: the Trustee ALB whitelist — which IPs, and the kubectl line that finds the ALB."""

from __future__ import annotations

from ..recipe import CaiRecipe
from .base import Prompter, Rendered, Renderer, RenderError
from .shell import line, q, script


def acl_entries(recipe: CaiRecipe) -> list[tuple[str, str]]:
    """(CIDR, why) for the ALB access-control policy group."""
    i = recipe.answers.instance
    out: list[tuple[str, str]] = []
    vpc_ip = i.vpc_egress_ip or i.public_ip
    if vpc_ip:
        why = "the instance VPC's public IP" if i.vpc_egress_ip else "the instance's public IP"
        out.append((_cidr(vpc_ip), why))
    if i.client_ip:
        out.append((_cidr(i.client_ip), "the inference client's egress IP"))
    unique: dict[str, str] = {}
    for cidr, why in out:
        unique.setdefault(cidr, why)
    return list(unique.items())


def _cidr(ip: str) -> str:
    return f"{ip}/128" if ":" in ip else f"{ip}/32"


class AlbAcl(Renderer):
    kind = "alb-acl"
    title = "Trustee ALB access control: IPs to whitelist and the ALB ID (CAI-4.2, CAI-6.1)"
    flow = "cai"
    default_path = "~/trustee-alb-acl.sh"
    mode = 0o755

    def render(self, recipe: CaiRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        entries = acl_entries(recipe)
        if not entries:
            raise RenderError(
                "no IP to whitelist: set answers.instance.vpc_egress_ip (or public_ip) and answers.instance.client_ip"
            )
        ns = recipe.answers.trustee.helm.namespace
        header = ["CAI-4.2: add these entries to the ALB access-control policy group (IP 条目):"]
        header += [f"  {cidr:<20} {why}" for cidr, why in entries]
        header += [
            "Then on the ALB instance found below: switch off configuration-change protection (关闭配置修改保护),",
            "and on its listener enable access control with the policy group as a whitelist.",
        ]
        find = (
            line(["kubectl", "get", "ing", "--namespace", ns, "kbs-ingress", "-o"])
            + " "
            + q("jsonpath={.status.loadBalancer.ingress[0].hostname}")
            + " | cut -d'.' -f1 | sed 's/[^a-zA-Z0-9-]//g'"
        )
        body = ["# The ALB instance ID (alb-…):", find]
        return self.done(script(body, header=header))
