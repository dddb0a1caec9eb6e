"""CAI-4.1: the bucket policy that lets the instance read the model — render, preview (diff), apply.

The instance reads the ciphertext through OSS with the recipe's AccessKey from its public IP (or from inside a VPC).
OSS rejects an ``acs:SourceIp`` condition unless ``acs:SourceVpc`` is constrained in the same statement
(EC 0030-00000008), so the IP statement also says ``StringNotLike acs:SourceVpc vpc-*`` (requests from outside any
VPC); VPCs are granted by ID in a statement of their own (``StringEquals acs:SourceVpc``).

``apply`` replaces the bucket's whole policy (``PutBucketPolicy`` has no partial update): the preview shows what is
removed; ``merge=True`` keeps the current statements and adds the generated ones.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .oss_client import OssInputError, oss_errors

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


@dataclass
class PolicyPreview:
    bucket: str
    current: str  # normalized current policy, "" when the bucket has none
    proposed: str
    diff: str  # unified diff current → proposed, "" when equal

    @property
    def unchanged(self) -> bool:
        return not self.diff

    @property
    def removed_statements(self) -> int:
        """Current statements that the proposed policy does not keep."""
        if not self.current:
            return 0
        try:
            cur = json.loads(self.current).get("Statement") or []
            new = json.loads(self.proposed).get("Statement") or []
        except (ValueError, AttributeError):
            return 0
        return sum(1 for st in cur if st not in new)


def get_current_policy(bucket: Any) -> str | None:
    """The bucket's policy text, or None when it has none."""
    import oss2

    with oss_errors(f"reading the policy of bucket {bucket.bucket_name}", bucket):
        try:
            return str(bucket.get_bucket_policy().policy)
        except oss2.exceptions.NoSuchBucketPolicy:
            return None


def preview_policy(bucket: Any, proposed: str, *, merge: bool = False) -> PolicyPreview:
    current_raw = get_current_policy(bucket)
    if merge:
        proposed = merge_policies(current_raw, proposed)
    current = normalize_policy(current_raw)
    diff = "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            proposed.splitlines(keepends=True),
            fromfile=f"oss://{bucket.bucket_name} (current policy)" if current else "(no policy)",
            tofile="proposed policy",
        )
    )
    return PolicyPreview(bucket.bucket_name, current, proposed, diff)


def apply_policy(bucket: Any, text: str) -> None:
    """``PutBucketPolicy``, then read it back and compare (as JSON)."""
    with oss_errors(f"applying the policy of bucket {bucket.bucket_name}", bucket):
        bucket.put_bucket_policy(text)
    back = get_current_policy(bucket)
    try:
        same = back is not None and json.loads(back) == json.loads(text)
    except ValueError:
        same = False
    if not same:
        from .oss_client import OssActionError

        raise OssActionError(
            f"the policy read back from bucket {bucket.bucket_name} differs from the one applied; "
            "another change may have raced with this one — preview again",
            "oss-access-denied",
        )
