"""CAI-4.1: the bucket policy that lets the instance read the model — preview (diff) and apply the document of
:mod:`cai_tui.clients.oss_policy`.

The instance reads the ciphertext through OSS with the recipe's AccessKey from its public IP (or from inside a VPC).
OSS rejects an ``acs:SourceIp`` condition unless ``acs:SourceVpc`` is constrained in the same statement
(EC 0030-00000008), so the IP statement also says ``StringNotLike acs:SourceVpc vpc-*`` (requests from outside any
VPC); VPCs are granted by ID in a statement of their own (``StringEquals acs:SourceVpc``).

``apply`` replaces the bucket's whole policy (``PutBucketPolicy`` has no partial update): the preview shows what is
removed; ``merge=True`` keeps the current statements and adds the generated ones.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from ..clients.oss import oss_errors
from ..clients.oss_policy import (
    ACTIONS,
    VPC_ID_PREFIX,
    dumps_policy,
    merge_policies,
    normalize_policy,
    render_bucket_policy,
)

__all__ = [
    "ACTIONS",
    "VPC_ID_PREFIX",
    "PolicyPreview",
    "apply_policy",
    "dumps_policy",
    "get_current_policy",
    "merge_policies",
    "normalize_policy",
    "preview_policy",
    "render_bucket_policy",
]


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
        from ..clients.oss import OssActionError

        raise OssActionError(
            f"the policy read back from bucket {bucket.bucket_name} differs from the one applied; "
            "another change may have raced with this one — preview again",
            "oss-access-denied",
        )
