"""oss.bucket_policy: the bucket policy grants the instance's public IP (CAI-4.1), evaluated here."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..base import CheckContext, Evidence, Result
from ..common import (
    ev,
    make,
)
from ..registry import check

if TYPE_CHECKING:
    from ...recipe.cai import CaiAnswers
from ._common import (
    STAGE_ACCESS,
    OssFailure,
    _oss_answers,
    _setup,
    call,
    failure_result,
)


def _values(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return [str(x) for x in v]
    return []


def _glob(pattern: str, value: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(value, pattern)


def _covers_objects(resource: str, bucket: str) -> bool:
    """Whether ``acs:oss:<region>:<uid>:<bucket>/<key pattern>`` covers the objects of ``bucket``."""
    parts = resource.split(":", 4)
    return len(parts) == 5 and parts[0] == "acs" and parts[1] == "oss" and _glob(parts[4], f"{bucket}/any-object")


_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NotIpAddress"}


def _condition_holds(op: str, values: list[str], actual: str | None) -> bool:
    """One condition against a request from ``actual`` (None: the request has no value, e.g. no VPC)."""
    if actual is None:
        return op in _NEGATED
    if op in ("IpAddress", "NotIpAddress"):
        try:
            addr = ipaddress.ip_address(actual)
            hit = any(addr in ipaddress.ip_network(v, strict=False) for v in values)
        except ValueError:
            hit = False
    elif op in ("StringEquals", "StringNotEquals"):
        hit = actual in values
    elif op in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        hit = actual.lower() in (v.lower() for v in values)
    elif op in ("StringLike", "StringNotLike"):
        hit = any(_glob(v, actual) for v in values)
    else:
        return False
    return (not hit) if op in _NEGATED else hit


@dataclass
class PolicyVerdict:
    allowing: list[int]  # statement numbers that grant GetObject to the IP
    denying: list[int]
    ip_without_vpc: list[int]  # Allow statements with acs:SourceIp but no acs:SourceVpc
    mentions_ip: bool


def evaluate_policy(doc: dict[str, Any], ip: str, bucket: str) -> PolicyVerdict:
    """Which statements admit (or deny) oss:GetObject on the bucket from ``ip`` outside any VPC."""
    verdict = PolicyVerdict([], [], [], False)
    statements = doc.get("Statement")
    if not isinstance(statements, list):
        return verdict
    for n, st in enumerate(statements, 1):
        if not isinstance(st, dict):
            continue
        actions = _values(st.get("Action"))
        if not any(_glob(a.lower(), "oss:getobject") for a in actions):
            continue
        if not any(_covers_objects(r, bucket) for r in _values(st.get("Resource"))):
            continue
        conds = st.get("Condition") if isinstance(st.get("Condition"), dict) else {}
        keys: set[str] = set()
        holds = True
        for op, block in (conds or {}).items():
            if not isinstance(block, dict):
                continue
            for key, vals in block.items():
                k = str(key).lower()
                keys.add(k)
                if k == "acs:sourceip":
                    if any(_condition_holds("IpAddress", [v], ip) for v in _values(vals)):
                        verdict.mentions_ip = True
                    holds = holds and _condition_holds(op, _values(vals), ip)
                elif k == "acs:sourcevpc":
                    holds = holds and _condition_holds(op, _values(vals), None)
        effect = st.get("Effect")
        if effect == "Allow" and "acs:sourceip" in keys and "acs:sourcevpc" not in keys:
            verdict.ip_without_vpc.append(n)
        if holds and effect == "Allow" and "acs:sourceip" in keys:
            verdict.allowing.append(n)
        elif holds and effect == "Deny":
            verdict.denying.append(n)
    return verdict


def suggested_policy(answers: CaiAnswers, bucket: str, ip: str) -> str:
    uid = answers.oss.account_uid or "<account uid>"
    doc = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": ["*"],
                "Action": ["oss:GetObject", "oss:ListObjects"],
                "Resource": [f"acs:oss:*:{uid}:{bucket}", f"acs:oss:*:{uid}:{bucket}/*"],
                "Condition": {"IpAddress": {"acs:SourceIp": [f"{ip}/32"]}, "StringNotLike": {"acs:SourceVpc": "vpc-*"}},
            }
        ],
    }
    return json.dumps(doc, separators=(",", ":"))


@check(
    "oss.bucket_policy",
    "The bucket policy grants the instance's public IP (CAI-4.1)",
    stage=STAGE_ACCESS,
    depends=("oss.bucket",),
    required=False,
)
async def oss_bucket_policy(ctx: CheckContext) -> Result:
    answers, skip = _oss_answers(ctx)
    if answers is None:
        return skip  # type: ignore[return-value]
    ip = answers.instance.public_ip
    if not ip:
        return make(ctx, "skip", "instance.public_ip is not set yet (CAI-3)")
    got = await _setup(ctx, 0.5)
    if isinstance(got, Result):
        return got
    answers, bucket, bucket_name, _prefix, endpoint = got
    source = f"GetBucketPolicy {bucket_name} @ {endpoint}"
    evidence: list[Evidence] = [ev(ctx, ip, "answers.instance.public_ip")]
    fix_text = (
        f"Apply a bucket policy granting {ip} (CAI-4.1; `cai-tui` renders it as the bucket-policy artifact), e.g. "
        f"{suggested_policy(answers, bucket_name, ip)} — OSS requires acs:SourceVpc together with acs:SourceIp."
    )
    got_policy = await call(bucket.get_bucket_policy)
    if isinstance(got_policy, OssFailure):
        if got_policy.network:
            return failure_result(ctx, got_policy, evidence, source, "cannot read the bucket policy")
        evidence.append(ev(ctx, got_policy.observed, source))
        if got_policy.code == "NoSuchBucketPolicy":
            return make(
                ctx,
                "fail",
                f"bucket {bucket_name} has no bucket policy: nothing grants {ip}",
                evidence,
                ("oss-access-denied", fix_text),
            )
        return make(
            ctx,
            "warn",
            f"cannot read the bucket policy with these credentials ({got_policy.code}); check it in the OSS console",
            evidence,
            (
                "oss-access-denied",
                "Read the policy in the console (Bucket → Permission Control → Bucket Policy), or run "
                "this check with the bucket owner's AccessKey. " + fix_text,
            ),
        )
    text = str(got_policy.policy)
    evidence.append(ev(ctx, " ".join(text.split())[:600], source))
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        return make(
            ctx, "unknown", f"the bucket policy is not a JSON object ({exc})", evidence, ("oss-access-denied", fix_text)
        )
    verdict = evaluate_policy(doc, ip, bucket_name)
    data: dict[str, Any] = {"allowing": verdict.allowing, "denying": verdict.denying}
    if verdict.denying:
        return make(
            ctx,
            "fail",
            f"statement(s) {verdict.denying} of the bucket policy deny GetObject from {ip}",
            evidence,
            ("oss-access-denied", fix_text),
            **data,
        )
    if verdict.allowing:
        return make(
            ctx,
            "pass",
            f"statement(s) {verdict.allowing} allow GetObject from {ip} (acs:SourceIp with the acs:SourceVpc rule)",
            evidence,
            **data,
        )
    if verdict.ip_without_vpc:
        return make(
            ctx,
            "fail",
            f"statement(s) {verdict.ip_without_vpc} use acs:SourceIp without acs:SourceVpc",
            evidence,
            ("oss-access-denied", 'Add `"StringNotLike": {"acs:SourceVpc": "vpc-*"}` to the statement. ' + fix_text),
            **data,
        )
    why = (
        f"the statement naming {ip} does not apply to requests from the public internet (its acs:SourceVpc rule)"
        if verdict.mentions_ip
        else f"no Allow statement with acs:SourceIp covers {ip}"
    )
    return make(ctx, "fail", why, evidence, ("oss-access-denied", fix_text), **data)
