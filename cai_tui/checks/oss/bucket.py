"""oss.bucket: the bucket exists and this AccessKey may list it."""

from __future__ import annotations

from ..base import CheckContext, Evidence, Result
from ..common import (
    ev,
    make,
)
from ..registry import check
from ._common import (
    STAGE_UPLOAD,
    OssFailure,
    _setup,
    call,
    failure_result,
)


@check(
    "oss.bucket",
    "The bucket exists and this AccessKey may list it",
    stage=STAGE_UPLOAD,
    depends=("oss.credentials",),
)
async def oss_bucket(ctx: CheckContext) -> Result:
    got = await _setup(ctx)
    if isinstance(got, Result):
        return got
    answers, bucket, bucket_name, prefix, endpoint = got
    evidence: list[Evidence] = []
    source = f"ListObjects {bucket_name} prefix={prefix!r} max-keys=1 @ {endpoint}"
    listed = await call(bucket.list_objects, prefix=prefix, max_keys=1)
    if isinstance(listed, OssFailure):
        return failure_result(ctx, listed, evidence, source, f"cannot list bucket {bucket_name}")
    evidence.append(
        ev(ctx, f"HTTP 200 ListBucketResult ({len(listed.object_list)} object(s) on the first page)", source)
    )
    info_source = f"GetBucketInfo {bucket_name} @ {endpoint}"
    info = await call(bucket.get_bucket_info)
    if isinstance(info, OssFailure):
        evidence.append(ev(ctx, info.observed, info_source))
        return make(
            ctx, "pass", f"bucket {bucket_name} exists and can be listed (GetBucketInfo: {info.code})", evidence
        )
    loc = str(info.location or "")
    evidence.append(
        ev(ctx, f"Location={loc} StorageClass={info.storage_class} Created={info.creation_date}", info_source)
    )
    region = loc[4:] if loc.startswith("oss-") else loc
    if region and region != answers.oss.region:
        return make(
            ctx,
            "warn",
            f"bucket {bucket_name} is in {region}, the recipe says oss.region {answers.oss.region}",
            evidence,
            (
                "oss-no-such-bucket",
                f"The instance must be in the bucket's region ({region}) to use its -internal endpoint; fix oss.region "
                "and MODEL_OSS_ENDPOINT, or use a bucket in the instance's region.",
            ),
            region=region,
        )
    return make(
        ctx, "pass", f"bucket {bucket_name} exists in {region or '?'} and can be listed", evidence, region=region
    )
