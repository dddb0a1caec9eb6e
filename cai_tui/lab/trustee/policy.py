"""The lab's tiny policy model (no rego evaluation).

Resource policy (KBS): one of five modes.

- ``allow-all`` — allow every ``resource`` request (kbs-client ``--allow-all``, sample_policies/allow_all.rego);
- ``deny-all`` — deny everything (``--deny-all``, sample_policies/deny_all.rego);
- ``default`` — upstream's default: allow unless the evidence came from the ``sample`` TEE; the lab setting
  ``allow_sample_evidence`` lifts that one restriction (the Alibaba default, based on the EAR trustworthiness vector,
  is recognised as this mode too);
- ``affirming`` — allow only tokens whose EAR status is ``affirming`` (``--affirming``, sample_policies/affirming.rego);
- ``custom`` — a posted rego the lab cannot recognise: stored verbatim and evaluated as deny (logged as such).

A posted rego is mapped to a mode by recognising the content of those sample policies (comments and whitespace
ignored). Attestation policies (AS): stored verbatim per id; the EAR status of accepted evidence is the lab setting
``attestation_status``, unless the policy text names exactly one EAR status as a quoted string, which then wins.
"""

from __future__ import annotations

import re
from typing import Any

from cai_tui.lab.trustee.settings import EAR_STATUSES

_COMMENT_RE = re.compile(r"#[^\n]*")


def _normalise(rego: str) -> str:
    text = re.sub(r"\s+", " ", _COMMENT_RE.sub("", rego)).strip()
    return re.sub(r"\s*([^\w\s])\s*", r"\1", text)


_ALLOW_BODY_RE = re.compile(r"(?<![\w.])allow(?: if)?\{([^{}]*)\}")
_ALLOW_TRUE_RE = re.compile(r"(?<![\w.])(?<!default )allow:?=true")


def recognise_resource_policy(rego: str) -> str:
    """Map a resource-policy rego to a lab mode (see the module docstring)."""
    norm = _normalise(rego)
    if not norm.startswith("package policy"):
        return "custom"
    if "default allow=true" in norm or "default allow:=true" in norm:
        return "allow-all"
    if '["ear.status"]!="affirming"' in norm or '["ear.status"]=="affirming"' in norm:
        return "affirming"
    if 'not input["submods"]["cpu0"]["ear.veraison.annotated-evidence"]["sample"]' in norm:
        return "default"
    if '["ear.trustworthiness-vector"]' in norm:
        return "default"
    bodies = _ALLOW_BODY_RE.findall(norm)
    if not bodies and not _ALLOW_TRUE_RE.search(norm):
        return "deny-all"
    if all(b in ('plugin=="resource"', 'data.plugin=="resource"', "true", "") for b in bodies):
        return "allow-all"
    return "custom"


def evaluate_resource_policy(mode: str, claims: dict[str, Any], *, allow_sample_evidence: bool) -> tuple[bool, str]:
    """(allow, reason) for a resource request carrying these token claims."""
    cpu0 = claims.get("submods", {}).get("cpu0", {}) if isinstance(claims.get("submods"), dict) else {}
    annotated = cpu0.get("ear.veraison.annotated-evidence", {}) if isinstance(cpu0, dict) else {}
    status = cpu0.get("ear.status") if isinstance(cpu0, dict) else None
    if mode == "allow-all":
        return True, "allow-all"
    if mode == "deny-all":
        return False, "deny-all"
    if mode == "default":
        if isinstance(annotated, dict) and "sample" in annotated and not allow_sample_evidence:
            return False, "default policy: evidence from the sample TEE is not trusted"
        return True, "default policy"
    if mode == "affirming":
        return status == "affirming", f"affirming policy: EAR status is {status!r}"
    return False, "custom policy: the lab does not evaluate rego; treated as deny"


def ear_status_for_policy(rego: str | None, default: str) -> str:
    if not rego:
        return default
    text = _COMMENT_RE.sub("", rego)
    named = {s for s in EAR_STATUSES if f'"{s}"' in text}
    return named.pop() if len(named) == 1 else default
