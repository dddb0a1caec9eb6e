"""Trustee checks, shared: the stages, the fixes, the recipe's Trustee answers and the TLS choice."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..base import CheckContext, Result
from ..common import (
    cai_answers,
    no_recipe,
)

if TYPE_CHECKING:
    from ...recipe.cai import TrusteeAnswers


STAGE_DEPLOY = "trustee-deploy"
STAGE_KEY = "model-key"
SLOW_SHARE = 0.5  # an answer slower than this share of the budget is reported as slow

FIX_UNREACHABLE = (
    "Check TRUSTEE_URL (trustee.url), DNS, the ALB access-control list of CAI-4.2 (this machine's egress IP must be in "
    "the policy group) and security groups; `kubectl get pods -n <namespace>` shows whether the Trustee pods run."
)
FIX_BACKEND_DOWN = (
    "The Trustee gateway answers but its backend pods do not: `kubectl get pods -n <namespace>` in the ACK cluster, "
    "look at the kbs / attestation-service pods' logs and restart them (`kubectl rollout restart deployment …`)."
)


def _trustee(ctx: CheckContext) -> tuple[TrusteeAnswers | None, Result | None]:
    answers = cai_answers(ctx)
    if answers is None:
        return None, no_recipe()
    if not answers.trustee.url:
        return None, Result("skip", "trustee.url is not set yet (CAI-2.4)")
    return answers.trustee, None


def _verify(trustee: TrusteeAnswers) -> bool | str:
    if not trustee.verify_tls:
        return False
    if trustee.ca_file:
        return os.path.expanduser(trustee.ca_file)
    return True


def _base(trustee: TrusteeAnswers) -> str:
    return str(trustee.url)  # the model holds it without a trailing slash


def _clip(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
