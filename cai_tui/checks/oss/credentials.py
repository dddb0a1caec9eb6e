"""oss.credentials: OSS accepts the recipe's AccessKey (or STS token)."""

from __future__ import annotations

from ...clients.oss import has_credentials
from ..base import CheckContext, Evidence, Result
from ..common import (
    SecretProblem,
    ev,
    make,
    net_timeout,
)
from ..registry import check
from ._common import (
    CREDENTIAL_CODES,
    OSS_FIXES,
    STAGE_UPLOAD,
    OssFailure,
    _oss_answers,
    _setup,
    call,
    failure_result,
    make_service,
)


@check(
    "oss.credentials",
    "OSS accepts the recipe's AccessKey (a signed request succeeds)",
    stage=STAGE_UPLOAD,
    depends=("oss.endpoint",),
)
async def oss_credentials(ctx: CheckContext) -> Result:
    answers, skip = _oss_answers(ctx)
    if answers is None:
        return skip  # type: ignore[return-value]
    if not has_credentials(answers):
        return make(ctx, "skip", "no AccessKey in the recipe: access is anonymous (only public-read buckets work)")
    got = await _setup(ctx)
    if isinstance(got, Result):
        return got
    _answers, bucket, bucket_name, _prefix, endpoint = got
    kind = "STS token" if answers.oss.session_token is not None else "AccessKey"
    source = f"GetBucketInfo {bucket_name} @ {endpoint} (signed with the {kind})"
    evidence: list[Evidence] = []
    info = await call(bucket.get_bucket_info)
    if not isinstance(info, OssFailure):
        evidence.append(ev(ctx, f"HTTP 200 BucketInfo Name={info.name} Location={info.location}", source))
        return make(ctx, "pass", f"OSS accepted the {kind} (GetBucketInfo {bucket_name} succeeded)", evidence)
    if info.network:
        return failure_result(ctx, info, evidence, source, "no answer from OSS")
    if info.code in CREDENTIAL_CODES:
        return failure_result(ctx, info, evidence, source, f"OSS rejected the {kind}")
    evidence.append(ev(ctx, info.observed, source))
    if info.code == "AccessDenied":
        return make(
            ctx,
            "pass",
            f"OSS authenticated the {kind} (the request was signed correctly; access itself is denied: see oss.bucket)",
            evidence,
        )
    # NoSuchBucket (and other bucket errors) come before authentication: ask the service instead
    try:
        service = make_service(ctx, answers, endpoint, net_timeout(ctx, 0.3))
    except SecretProblem as exc:
        return exc.result
    source2 = f"ListBuckets @ {endpoint} (signed with the {kind})"
    listed = await call(service.list_buckets, max_keys=1)
    if not isinstance(listed, OssFailure):
        evidence.append(ev(ctx, "HTTP 200 ListAllMyBucketsResult", source2))
        return make(ctx, "pass", f"OSS accepted the {kind} (ListBuckets succeeded)", evidence)
    if listed.network or listed.code in CREDENTIAL_CODES:
        return failure_result(ctx, listed, evidence, source2, f"OSS rejected the {kind}")
    evidence.append(ev(ctx, listed.observed, source2))
    if listed.code == "AccessDenied":
        return make(
            ctx, "pass", f"OSS authenticated the {kind} (ListBuckets is denied to it, as for most RAM users)", evidence
        )
    return make(
        ctx,
        "unknown",
        f"could not tell whether OSS accepts the {kind} ({info.code}, then {listed.code})",
        evidence,
        OSS_FIXES.get(info.code, ("oss-access-denied", "See the error in the evidence.")),
    )
