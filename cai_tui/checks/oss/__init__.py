"""OSS checks: the endpoint, the AccessKey, the bucket, the model prefix and the bucket policy (CAI-1.7, CAI-4.1).

They use oss2 (the client the seed's tools use) from this process with the recipe's MODEL_OSS_* values. An
``-internal`` endpoint only resolves inside an Alibaba Cloud VPC: from outside, the checks say so and continue with
``oss.upload_endpoint`` (or the public twin of the endpoint) instead of reporting a bare DNS failure.

One module a check (shared plumbing in the ``_``-modules). Importing the package imports them all, in the order
the checks register (doctor runs them in it); the names stay importable from here, as before the split.
"""

# isort: off
# Kept in the order the checks register in, so not sorted.
from . import endpoint, credentials, bucket, model_prefix, bucket_policy
# isort: on

from ._common import (
    CONF,
    CREDENTIAL_CODES,
    DIRIV,
    FIX_UNREACHABLE,
    LIST_PAGES_MAX,
    LOOK_DOWN_MAX,
    OSS_FIXES,
    STAGE_ACCESS,
    STAGE_UPLOAD,
    EndpointPlan,
    OssFailure,
    call,
    classify,
    endpoint_for_checks,
    endpoint_plan,
    failure_result,
    host_port,
    location,
    make_bucket,
    make_service,
    shown_path,
)
from .bucket import (
    oss_bucket,
)
from .bucket_policy import (
    PolicyVerdict,
    evaluate_policy,
    oss_bucket_policy,
    suggested_policy,
)
from .credentials import (
    oss_credentials,
)
from .endpoint import (
    oss_endpoint,
)
from .model_prefix import (
    Level,
    find_conf_around,
    list_level,
    oss_model_prefix,
    parent_prefix,
    read_small,
    total_size,
)

__all__ = [
    "CONF",
    "CREDENTIAL_CODES",
    "DIRIV",
    "FIX_UNREACHABLE",
    "LIST_PAGES_MAX",
    "LOOK_DOWN_MAX",
    "OSS_FIXES",
    "STAGE_ACCESS",
    "STAGE_UPLOAD",
    "EndpointPlan",
    "Level",
    "OssFailure",
    "PolicyVerdict",
    "bucket",
    "bucket_policy",
    "call",
    "classify",
    "credentials",
    "endpoint",
    "endpoint_for_checks",
    "endpoint_plan",
    "evaluate_policy",
    "failure_result",
    "find_conf_around",
    "host_port",
    "list_level",
    "location",
    "make_bucket",
    "make_service",
    "model_prefix",
    "oss_bucket",
    "oss_bucket_policy",
    "oss_credentials",
    "oss_endpoint",
    "oss_model_prefix",
    "parent_prefix",
    "read_small",
    "shown_path",
    "suggested_policy",
    "total_size",
]
