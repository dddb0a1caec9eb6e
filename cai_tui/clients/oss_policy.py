"""CAI-4.1: the bucket policy document that lets the instance read the model (render, normalise, merge).

The instance reads the ciphertext through OSS with the recipe's AccessKey from its public IP (or from inside a VPC).
OSS rejects an ``acs:SourceIp`` condition unless ``acs:SourceVpc`` is constrained in the same statement
(EC 0030-00000008), so the IP statement also says ``StringNotLike acs:SourceVpc vpc-*`` (requests from outside any
VPC); VPCs are granted by ID in a statement of their own (``StringEquals acs:SourceVpc``). Pure text: the renderer
(:mod:`cai_tui.render.bucket_policy`) and the action that applies it (:mod:`cai_tui.actions.bucket_policy`) share it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from typing import Any

from .oss import OssInputError

ACTIONS = ("oss:GetObject", "oss:ListObjects")
VPC_ID_PREFIX = "vpc-"


def _cidr(ip: str) -> str:
    text = ip.strip()
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise OssInputError(f"{ip!r} is not an IP address or CIDR block (e.g. 203.0.113.7 or 203.0.113.0/24)") from None
    return str(net)


def render_bucket_policy(bucket: str, uid: str, ips: Sequence[str], vpc_ids: Iterable[str] = ()) -> str:
    """The policy document (JSON text, 2-space indent, trailing newline) granting read access to ``bucket`` of account
    ``uid`` from ``ips`` (outside any VPC) and from ``vpc_ids``."""
    from ..recipe.types import BUCKET_RE

    if not BUCKET_RE.match(bucket):
        raise OssInputError(f"{bucket!r} is not a valid bucket name")
    if not uid or not uid.isdigit():
        raise OssInputError(
            "the account UID is needed for the policy's resources: set answers.oss.account_uid (digits, shown in the "
            "console's account centre) or pass --uid"
        )
    cidrs = list(dict.fromkeys(_cidr(ip) for ip in ips))
    vpcs = list(dict.fromkeys(v.strip() for v in vpc_ids))
    for v in vpcs:
        if not v.startswith(VPC_ID_PREFIX) or len(v) <= len(VPC_ID_PREFIX) or not v.replace("-", "").isalnum():
            raise OssInputError(f"{v!r} is not a VPC ID (vpc-…)")
    if not cidrs and not vpcs:
        raise OssInputError(
            "no source to grant: set answers.instance.public_ip (the instance's public IP) or pass --ip (and/or --vpc)"
        )
    resources = [f"acs:oss:*:{uid}:{bucket}", f"acs:oss:*:{uid}:{bucket}/*"]
    statements: list[dict[str, Any]] = []
    if cidrs:
        statements.append(
            {
                "Effect": "Allow",
                "Principal": ["*"],
                "Action": list(ACTIONS),
                "Resource": resources,
                "Condition": {
                    "IpAddress": {"acs:SourceIp": cidrs},
                    "StringNotLike": {"acs:SourceVpc": f"{VPC_ID_PREFIX}*"},
                },
            }
        )
    if vpcs:
        statements.append(
            {
                "Effect": "Allow",
                "Principal": ["*"],
                "Action": list(ACTIONS),
                "Resource": resources,
                "Condition": {"StringEquals": {"acs:SourceVpc": vpcs}},
            }
        )
    return dumps_policy({"Version": "1", "Statement": statements})


def dumps_policy(doc: Any) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def normalize_policy(text: str | None) -> str:
    """The current policy in the rendered layout (for a readable diff); non-JSON text is shown as it is."""
    if not text:
        return ""
    try:
        return dumps_policy(json.loads(text))
    except ValueError:
        return text if text.endswith("\n") else text + "\n"


def merge_policies(current: str | None, new: str) -> str:
    """The current statements followed by the new ones that are not already there."""
    if not current:
        return new
    try:
        cur = json.loads(current)
    except ValueError:
        raise OssInputError("the current bucket policy is not JSON; cannot merge (apply without --merge)") from None
    statements = list(cur.get("Statement") or []) if isinstance(cur, dict) else []
    for st in json.loads(new)["Statement"]:
        if st not in statements:
            statements.append(st)
    return dumps_policy({"Version": "1", "Statement": statements})
