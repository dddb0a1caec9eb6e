"""Bucket policies: validation at PutBucketPolicy time, and evaluation on every request.

The rules, as OSS documents them:

* an explicit Deny wins over any Allow; with no matching statement, a request is denied — except for the bucket owner,
  who needs no Allow (their account grants everything on their own bucket);
* a statement whose Principal is ``*`` and which has no Condition applies to everyone but the bucket owner; with a
  Condition it applies to the owner too;
* an ``acs:SourceIp`` condition must come with an ``acs:SourceVpc`` condition in the same statement (EC 0030-00000008);
* negated operators (``StringNotLike``, ``NotIpAddress``, …) match when the request has no value for the key, so
  ``StringNotLike acs:SourceVpc vpc-*`` matches a request from outside any VPC.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from .errors import OssError

POLICY_MAX_BYTES = 16 * 1024

_STRING_OPS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
}
_IP_OPS = {"IpAddress", "NotIpAddress"}
_BOOL_OPS = {"Bool"}
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NotIpAddress"}
KNOWN_OPERATORS = _STRING_OPS | _IP_OPS | _BOOL_OPS


def invalid_policy(message: str, ec: str = "0030-00000001") -> OssError:
    return OssError(400, "InvalidPolicyDocument", message, ec)


def source_ip_needs_vpc() -> OssError:
    return OssError(
        400,
        "InvalidPolicyDocument",
        "When acs:SourceIp is specified as a condition in the bucket policy, acs:SourceVpc must also be specified.",
        "0030-00000008",
    )


@lru_cache(maxsize=1024)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _str_list(value: object, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise invalid_policy(f"Invalid policy: {what} must be a string or a non-empty list of strings.")


@dataclass(frozen=True)
class Statement:
    effect: str
    principals: tuple[str, ...]
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...]  # (operator, key (lowercase), values)


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]
    text: str


def parse_policy(text: str, bucket: str) -> Policy:
    """Validate a policy document as PutBucketPolicy does; raises OssError (InvalidPolicyDocument) on a bad one."""
    if len(text.encode("utf-8")) > POLICY_MAX_BYTES:
        raise invalid_policy("Invalid policy: the policy exceeds the maximum size of 16 KB.")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise invalid_policy("Invalid policy: the document is not valid JSON.") from None
    if not isinstance(doc, dict):
        raise invalid_policy("Invalid policy: the document must be a JSON object.")
    if doc.get("Version") != "1":
        raise invalid_policy('Invalid policy: Version must be "1".')
    raw_statements = doc.get("Statement")
    if not isinstance(raw_statements, list) or not raw_statements:
        raise invalid_policy("Invalid policy: Statement must be a non-empty list.")
    statements = []
    for raw in raw_statements:
        if not isinstance(raw, dict):
            raise invalid_policy("Invalid policy: every statement must be a JSON object.")
        effect = raw.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise invalid_policy('Invalid policy: Effect must be "Allow" or "Deny".')
        if "Principal" not in raw:
            raise invalid_policy("Invalid policy: Principal is required in a bucket policy.")
        principals = _str_list(raw["Principal"], "Principal")
        actions = _str_list(raw.get("Action"), "Action")
        for a in actions:
            if not (a == "*" or a.lower().startswith("oss:")):
                raise invalid_policy(f"Invalid policy: action {a!r} is not an OSS action.")
        resources = _str_list(raw.get("Resource"), "Resource")
        for r in resources:
            _check_resource(r, bucket)
        conditions = _parse_conditions(raw.get("Condition"))
        keys = {k for _, k, _ in conditions}
        if "acs:sourceip" in keys and "acs:sourcevpc" not in keys:
            raise source_ip_needs_vpc()
        statements.append(Statement(effect, tuple(principals), tuple(actions), tuple(resources), tuple(conditions)))
    return Policy(tuple(statements), text)


def _check_resource(resource: str, bucket: str) -> None:
    parts = resource.split(":", 4)
    if len(parts) != 5 or parts[0] != "acs" or parts[1] != "oss":
        raise invalid_policy(
            f"Invalid policy: resource {resource!r} must look like acs:oss:<region>:<uid>:<bucket>[/<object>]."
        )
    bucket_part = parts[4].split("/", 1)[0]
    if not glob_match(bucket_part, bucket):
        raise invalid_policy(
            f"Invalid policy: resource {resource!r} does not belong to bucket {bucket}.", "0030-00000003"
        )


def _parse_conditions(raw: object) -> list[tuple[str, str, tuple[str, ...]]]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise invalid_policy("Invalid policy: Condition must be a JSON object.")
    out = []
    for op, block in raw.items():
        if op not in KNOWN_OPERATORS:
            raise invalid_policy(f"Invalid policy: unsupported condition operator {op!r}.")
        if not isinstance(block, dict) or not block:
            raise invalid_policy(f"Invalid policy: condition {op} must map keys to values.")
        for key, values in block.items():
            vals = _str_list(values, f"the values of {op}/{key}")
            if op in _IP_OPS:
                for v in vals:
                    try:
                        ipaddress.ip_network(v, strict=False)
                    except ValueError:
                        raise invalid_policy(f"Invalid policy: {v!r} is not an IP address or CIDR block.") from None
            out.append((op, key.lower(), tuple(vals)))
    return out


@dataclass(frozen=True)
class RequestContext:
    """What a statement is matched against."""

    action: str  # e.g. oss:GetObject
    resource: str  # acs:oss:<region>:<owner uid>:<bucket>[/<key>]
    principal_ids: tuple[str, ...]  # uid (and access key id) of the requester; empty for anonymous
    is_bucket_owner: bool
    values: Mapping[str, str] = field(default_factory=dict)  # condition key (lowercase) → value; absent = no value


def _condition_holds(op: str, key: str, patterns: tuple[str, ...], ctx: RequestContext) -> bool:
    value = ctx.values.get(key)
    if value is None or value == "":
        return op in _NEGATED
    if op in _IP_OPS:
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            return op in _NEGATED
        hit = any(addr in ipaddress.ip_network(p, strict=False) for p in patterns)
    elif op in ("StringEquals", "StringNotEquals"):
        hit = value in patterns
    elif op in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        hit = value.lower() in (p.lower() for p in patterns)
    elif op in ("StringLike", "StringNotLike"):
        hit = any(glob_match(p, value) for p in patterns)
    elif op == "Bool":
        hit = value.lower() in (p.lower() for p in patterns)
    else:  # pragma: no cover - rejected when the policy was put
        return False
    return (not hit) if op in _NEGATED else hit


def _applies(st: Statement, ctx: RequestContext) -> bool:
    if "*" in st.principals:
        if ctx.is_bucket_owner and not st.conditions:
            return False
    elif not any(p in st.principals for p in ctx.principal_ids):
        return False
    if not any(glob_match(a, ctx.action, ignore_case=True) for a in st.actions):
        return False
    if not any(glob_match(r, ctx.resource) for r in st.resources):
        return False
    return all(_condition_holds(op, key, vals, ctx) for op, key, vals in st.conditions)


def evaluate(policy: Policy | None, ctx: RequestContext) -> str:
    """``"deny"`` (explicit Deny), ``"allow"`` (an Allow matched) or ``"none"`` (nothing matched)."""
    if policy is None:
        return "none"
    allowed = False
    for st in policy.statements:
        if _applies(st, ctx):
            if st.effect == "Deny":
                return "deny"
            allowed = True
    return "allow" if allowed else "none"
