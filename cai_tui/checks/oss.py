"""OSS checks: the endpoint, the AccessKey, the bucket, the model prefix and the bucket policy (CAI-1.7, CAI-4.1).

They use oss2 (the client the seed's tools use) from this process with the recipe's MODEL_OSS_* values. An
``-internal`` endpoint only resolves inside an Alibaba Cloud VPC: from outside, the checks say so and continue with
``oss.upload_endpoint`` (or the public twin of the endpoint) instead of reporting a bare DNS failure.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..clients.oss import Credentials, has_credentials, public_twin, recipe_credentials
from ..clients.oss import make_bucket as client_bucket
from ..clients.oss import make_service as client_service
from .base import CheckContext, Evidence, Result
from .common import (
    SecretProblem,
    cai_answers,
    describe_os_error,
    ev,
    human_bytes,
    ip_literal,
    is_timeout,
    make,
    net_timeout,
    no_recipe,
    resolve,
    resolve_timeout,
    secret,
    tcp_connect,
    timed_out,
)
from .registry import check

if TYPE_CHECKING:
    import oss2

    from ..recipe.cai import CaiAnswers

STAGE_UPLOAD = "model-upload"
STAGE_ACCESS = "access"
CONF = "gocryptfs.conf"
DIRIV = "gocryptfs.diriv"
LOOK_DOWN_MAX = 20  # sub-folders inspected when looking one level down
LIST_PAGES_MAX = 20

FIX_UNREACHABLE = (
    "Check MODEL_OSS_ENDPOINT (oss.endpoint): from outside Alibaba Cloud use the public endpoint "
    "(oss-<region>.aliyuncs.com, set it as oss.upload_endpoint); inside the VPC the -internal one. Check DNS, "
    "proxies and firewalls on the way."
)
# OSS error code -> (FAQ id, what to do)
OSS_FIXES: dict[str, tuple[str, str]] = {
    "AccessDenied": (
        "oss-access-denied",
        "The bucket policy or the RAM policy of this AccessKey denies the request: grant the instance's public IP in "
        "the bucket policy (CAI-4.1; OSS needs acs:SourceVpc constrained together with acs:SourceIp) and give the RAM "
        "user oss:GetObject and oss:ListObjects on the bucket.",
    ),
    "NoSuchBucket": (
        "oss-no-such-bucket",
        "Fix the bucket name in MODEL_OSS_BUCKET_PATH (oss.bucket_path, <bucket>:/<path>) or the region of "
        "MODEL_OSS_ENDPOINT: the bucket must exist in the endpoint's region.",
    ),
    "InvalidAccessKeyId": (
        "oss-invalid-access-key",
        "The AccessKey ID is unknown to OSS (typo, deleted or disabled key): fix MODEL_OSS_ACCESS_KEY_ID "
        "(oss.access_key_id) with an active key from the RAM console.",
    ),
    "SignatureDoesNotMatch": (
        "oss-signature-mismatch",
        "The AccessKey secret does not belong to the AccessKey ID: fix MODEL_OSS_SECRET_ACCESS_KEY "
        "(oss.access_key_secret); check for a copied space or newline in the secret file.",
    ),
    "SecurityTokenExpired": (
        "oss-token-expired",
        "The STS token has expired: get a fresh AccessKey/secret/token triple from STS AssumeRole and update "
        "MODEL_OSS_SESSION_TOKEN (oss.session_token) with its AccessKey pair.",
    ),
    "InvalidSecurityToken": (
        "oss-token-expired",
        "The STS token is invalid or does not belong to this STS AccessKey: set MODEL_OSS_SESSION_TOKEN "
        "(oss.session_token) to the token issued with this AccessKey pair, or remove it for a permanent RAM key.",
    ),
    "RequestTimeTooSkewed": (
        "oss-clock-skew",
        "This machine's clock differs from OSS's by more than 15 minutes: enable time sync "
        "(`timedatectl set-ntp true`, chrony) and run the check again.",
    ),
}
CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "SecurityTokenExpired",
        "InvalidSecurityToken",
        "RequestTimeTooSkewed",
    }
)


# --------------------------------------------------------------------------------------------- shared plumbing


def _oss_answers(ctx: CheckContext) -> tuple[CaiAnswers | None, Result | None]:
    answers = cai_answers(ctx)
    if answers is None:
        return None, no_recipe()
    return answers, None


def location(answers: CaiAnswers) -> tuple[str, str]:
    """(bucket, prefix ending in "/" or empty) of MODEL_OSS_BUCKET_PATH."""
    from ..recipe.types import parse_bucket_path

    bucket, path = parse_bucket_path(answers.oss.bucket_path)
    path = path.strip("/")
    return bucket, (path + "/" if path else "")


def shown_path(bucket: str, prefix: str) -> str:
    return f"{bucket}:/{prefix}"


def host_port(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(endpoint)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


@dataclass
class EndpointPlan:
    endpoint: str  # what the checks from here use
    configured: str
    note: str = ""  # why it differs
    evidence: list[Evidence] = field(default_factory=list)
    error: str = ""  # set when nothing usable resolves
    timed_out: str = ""  # the name whose resolution ran out of its deadline (nothing is known about it)
    deadline: float = 0.0


def _resolved(ctx: CheckContext, host: str, port: int, addrs: list[str]) -> Evidence:
    if ip_literal(host) is not None:
        return ev(ctx, f"{host} is an IP address (nothing to resolve)", "answers.oss.endpoint")
    return ev(ctx, f"{host} → {', '.join(addrs)}", f"getaddrinfo({host!r}, {port})")


async def endpoint_plan(ctx: CheckContext, answers: CaiAnswers) -> EndpointPlan:
    """Which endpoint the checks from this machine use: the configured one, or (for an ``-internal`` one that does
    not resolve here) ``oss.upload_endpoint`` or its public twin. An IP literal needs no resolution."""
    configured = str(answers.oss.endpoint)
    plan = EndpointPlan(configured, configured)
    host, port = host_port(configured)
    timeout = plan.deadline = resolve_timeout(ctx, 0.3)
    try:
        addrs = await resolve(host, port, timeout)
        plan.evidence.append(_resolved(ctx, host, port, addrs))
        return plan
    except (OSError, asyncio.TimeoutError) as exc:
        plan.evidence.append(ev(ctx, f"{host}: {describe_os_error(exc)}", f"getaddrinfo({host!r}, {port})"))
        if is_timeout(exc):
            plan.timed_out = host
            return plan
        first_error = describe_os_error(exc)
    if "-internal" not in host:
        plan.error = f"{host} does not resolve ({first_error})"
        return plan
    alt = str(answers.oss.upload_endpoint) if answers.oss.upload_endpoint else public_twin(configured)
    plan.note = (
        f"{host} is an -internal endpoint: it only resolves inside an Alibaba Cloud VPC (expected from outside); "
        f"the instance uses it, the checks from here use {alt}"
    )
    if alt is None:  # pragma: no cover - public_twin always exists for an -internal host
        plan.error = plan.note
        return plan
    ahost, aport = host_port(alt)
    try:
        addrs = await resolve(ahost, aport, timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        plan.evidence.append(ev(ctx, f"{ahost}: {describe_os_error(exc)}", f"getaddrinfo({ahost!r}, {aport})"))
        if is_timeout(exc):
            plan.timed_out = ahost
            return plan
        plan.error = f"{plan.note}, and {ahost} does not resolve either ({describe_os_error(exc)})"
        return plan
    plan.evidence.append(_resolved(ctx, ahost, aport, addrs))
    plan.endpoint = alt
    return plan


async def endpoint_for_checks(ctx: CheckContext, answers: CaiAnswers) -> str:
    done = ctx.results.get("oss.endpoint")
    if done is not None and isinstance(done.data.get("effective_endpoint"), str):
        return str(done.data["effective_endpoint"])
    return (await endpoint_plan(ctx, answers)).endpoint


def _credentials(ctx: CheckContext, answers: CaiAnswers) -> Credentials | None:
    """The recipe's OSS credentials as the actions read them, resolved through the context (None: anonymous).

    Raises :class:`SecretProblem` when a secret reference cannot be resolved."""
    if not has_credentials(answers):
        return None
    return recipe_credentials(answers, lambda ref, field_name, _what: secret(ctx, ref, field_name))


def make_bucket(ctx: CheckContext, answers: CaiAnswers, endpoint: str, bucket: str, timeout: float) -> oss2.Bucket:
    """The bucket the actions would use (:func:`cai_tui.clients.oss.make_bucket`: the same signature version, STS
    when a session token is given; anonymous without keys), with the check's deadline."""
    return client_bucket(
        endpoint, bucket, _credentials(ctx, answers), region=str(answers.oss.region), timeout=max(0.5, timeout)
    )


def make_service(ctx: CheckContext, answers: CaiAnswers, endpoint: str, timeout: float) -> oss2.Service:
    creds = _credentials(ctx, answers)
    assert creds is not None  # oss.credentials asks the service only with keys
    return client_service(endpoint, creds, region=str(answers.oss.region), timeout=max(0.5, timeout))


@dataclass
class OssFailure:
    """What went wrong with one OSS call: an OSS error code, or a network failure."""

    code: str  # OSS error code, or "network"
    status: int | None
    observed: str

    @property
    def network(self) -> bool:
        return self.code == "network"


def classify(exc: BaseException) -> OssFailure:
    import oss2

    if isinstance(exc, oss2.exceptions.RequestError):
        cause = getattr(exc, "exception", None) or exc
        return OssFailure("network", None, f"RequestError: {type(cause).__name__}: {cause}")
    if isinstance(exc, oss2.exceptions.OssError):
        details = exc.details or {}
        extra = ""
        if exc.code == "RequestTimeTooSkewed":
            extra = f" (RequestTime {details.get('RequestTime', '?')}, ServerTime {details.get('ServerTime', '?')})"
        ec = f" EC {exc.ec}" if getattr(exc, "ec", "") else ""
        rid = f" RequestId {exc.request_id}" if exc.request_id else ""
        return OssFailure(
            exc.code or f"HTTP{exc.status}",
            exc.status,
            f"HTTP {exc.status} {exc.code}: {exc.message}{extra}{ec}{rid}",
        )
    # a body that stalls after the headers: requests' ConnectionError / ReadTimeout, or a bare socket timeout
    return OssFailure("network", None, f"{type(exc).__name__}: {exc}")


def failure_result(ctx: CheckContext, failure: OssFailure, evidence: list[Evidence], source: str, what: str) -> Result:
    evidence.append(ev(ctx, failure.observed, source))
    if failure.network:
        stalled = "timed out" in failure.observed.lower() or "read" in failure.observed.lower()
        why = "the answer stalled or timed out" if stalled else "no connection"
        return make(
            ctx, "fail", f"{what}: {why} ({failure.observed[:200]})", evidence, ("oss-unreachable", FIX_UNREACHABLE)
        )
    faq, text = OSS_FIXES.get(
        failure.code,
        ("oss-access-denied", f"OSS refused the request with {failure.code}; see the error message in the evidence."),
    )
    return make(ctx, "fail", f"{what}: {failure.code}", evidence, (faq, text), code=failure.code)


async def call(fn: Any, *args: Any, **kw: Any) -> Any:
    """Run a blocking oss2 call in a thread; exceptions come back as :class:`OssFailure`."""
    try:
        return await asyncio.to_thread(fn, *args, **kw)
    except SecretProblem:
        raise
    except Exception as exc:
        return classify(exc)


async def _setup(ctx: CheckContext, timeout_share: float = 0.6) -> tuple[Any, ...] | Result:
    answers, skip = _oss_answers(ctx)
    if answers is None:
        return skip  # type: ignore[return-value]
    bucket_name, prefix = location(answers)
    endpoint = await endpoint_for_checks(ctx, answers)
    timeout = net_timeout(ctx, timeout_share)
    try:
        bucket = make_bucket(ctx, answers, endpoint, bucket_name, timeout)
    except SecretProblem as exc:
        return exc.result
    return answers, bucket, bucket_name, prefix, endpoint


# --------------------------------------------------------------------------------------------- oss.endpoint


@check("oss.endpoint", "OSS endpoint resolves and accepts connections", stage=STAGE_UPLOAD)
async def oss_endpoint(ctx: CheckContext) -> Result:
    answers, skip = _oss_answers(ctx)
    if answers is None:
        return skip  # type: ignore[return-value]
    plan = await endpoint_plan(ctx, answers)
    evidence = [ev(ctx, plan.configured, "answers.oss.endpoint (MODEL_OSS_ENDPOINT)"), *plan.evidence]
    if plan.timed_out:
        return timed_out(ctx, f"resolving {plan.timed_out}", plan.deadline, evidence)
    if plan.error:
        internal = "-internal" in plan.configured
        text = (
            "This -internal endpoint only resolves inside an Alibaba Cloud VPC in its region; from outside set "
            "oss.upload_endpoint to the public endpoint (oss-<region>.aliyuncs.com) for uploads and checks."
            if internal
            else FIX_UNREACHABLE
        )
        return make(ctx, "fail", plan.error, evidence, ("oss-unreachable", text))
    host, port = host_port(plan.endpoint)
    deadline = net_timeout(ctx, 0.5)
    try:
        secs = await tcp_connect(host, port, deadline)
    except (OSError, asyncio.TimeoutError) as exc:
        evidence.append(ev(ctx, describe_os_error(exc), f"TCP connect {host}:{port}"))
        if is_timeout(exc):
            return timed_out(ctx, f"connecting to {host}:{port}", deadline, evidence, effective_endpoint=plan.endpoint)
        return make(
            ctx,
            "fail",
            f"cannot connect to {host}:{port} ({describe_os_error(exc)})",
            evidence,
            ("oss-unreachable", FIX_UNREACHABLE),
            effective_endpoint=plan.endpoint,
        )
    evidence.append(ev(ctx, f"connected in {secs * 1000:.0f} ms", f"TCP connect {host}:{port}"))
    if plan.note:
        return make(
            ctx,
            "warn",
            plan.note,
            evidence,
            (
                "oss-unreachable",
                "Nothing to fix if the instance is in the bucket's region: it reaches the -internal endpoint inside "
                "its VPC. Checks from this machine go through the public endpoint (oss.upload_endpoint).",
            ),
            effective_endpoint=plan.endpoint,
        )
    return make(
        ctx,
        "pass",
        f"{host}:{port} accepts connections ({secs * 1000:.0f} ms)",
        evidence,
        effective_endpoint=plan.endpoint,
    )


# --------------------------------------------------------------------------------------------- oss.credentials


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


# --------------------------------------------------------------------------------------------- oss.bucket


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


# --------------------------------------------------------------------------------------------- oss.model_prefix


@dataclass
class Level:
    files: dict[str, int]  # name under the prefix -> size
    dirs: list[str]  # sub-prefixes (ending in "/")


def list_level(bucket: oss2.Bucket, prefix: str) -> Level:
    files: dict[str, int] = {}
    dirs: list[str] = []
    marker = ""
    for _ in range(LIST_PAGES_MAX):
        res = bucket.list_objects(prefix=prefix, delimiter="/", marker=marker, max_keys=1000)
        for obj in res.object_list:
            files[obj.key[len(prefix) :]] = int(obj.size)
        dirs.extend(res.prefix_list)
        if not res.is_truncated:
            break
        marker = res.next_marker
    return Level(files, dirs)


def total_size(bucket: oss2.Bucket, prefix: str) -> tuple[int, int]:
    count = size = 0
    marker = ""
    for _ in range(LIST_PAGES_MAX):
        res = bucket.list_objects(prefix=prefix, marker=marker, max_keys=1000)
        for obj in res.object_list:
            count += 1
            size += int(obj.size)
        if not res.is_truncated:
            break
        marker = res.next_marker
    return count, size


def parent_prefix(prefix: str) -> str | None:
    if not prefix:
        return None
    head = prefix.rstrip("/").rpartition("/")[0]
    return head + "/" if head else ""


def read_small(bucket: oss2.Bucket, key: str, limit: int = 1 << 20) -> bytes:
    result = bucket.get_object(key)
    try:
        return bytes(result.read(limit))
    finally:
        result.close()


def find_conf_around(bucket: oss2.Bucket, prefix: str, level: Level) -> tuple[str | None, str | None]:
    """(sub-prefix one level down holding gocryptfs.conf, parent prefix holding gocryptfs.conf)."""
    down = None
    for sub in level.dirs[:LOOK_DOWN_MAX]:
        if CONF in list_level(bucket, sub).files:
            down = sub
            break
    up = None
    parent = parent_prefix(prefix)
    if parent is not None and CONF in list_level(bucket, parent).files:
        up = parent
    return down, up


@check(
    "oss.model_prefix",
    "MODEL_OSS_BUCKET_PATH holds the encrypted model (gocryptfs cipherdir or Sam package)",
    stage=STAGE_UPLOAD,
    depends=("oss.bucket",),
)
async def oss_model_prefix(ctx: CheckContext) -> Result:
    from ..gocryptfs import GocryptfsError
    from ..gocryptfs.config import GocryptfsConfig

    got = await _setup(ctx, 0.5)
    if isinstance(got, Result):
        return got
    answers, bucket, bucket_name, prefix, endpoint = got
    method = answers.model.encryption_method
    where = shown_path(bucket_name, prefix)
    src = f"ListObjects {bucket_name} prefix={prefix!r} delimiter='/' @ {endpoint}"
    evidence: list[Evidence] = [ev(ctx, where, "answers.oss.bucket_path (MODEL_OSS_BUCKET_PATH)")]
    level = await call(list_level, bucket, prefix)
    if isinstance(level, OssFailure):
        return failure_result(ctx, level, evidence, src, f"cannot list {where}")
    shown = sorted(level.files)[:8] + level.dirs[:4]
    evidence.append(
        ev(ctx, f"{len(level.files)} object(s), {len(level.dirs)} folder(s): {', '.join(shown) or '(empty)'}", src)
    )
    from ..actions.model_upload import MARKER_NAME

    if MARKER_NAME in level.files:
        return make(
            ctx,
            "fail",
            f"the upload to {where} has not finished: the marker {MARKER_NAME} is still there",
            evidence,
            (
                "model-files-missing",
                "Run the same `cai-tui model upload … --recipe …` again: it resumes, verifies every object's size and "
                "CRC-64, and removes the marker only when the upload is complete (CAI-1.7).",
            ),
        )
    has_conf, has_diriv = CONF in level.files, DIRIV in level.files
    fix_path = (
        "Point MODEL_OSS_BUCKET_PATH (oss.bucket_path) at the folder that holds gocryptfs.conf and gocryptfs.diriv"
    )

    if method == "sam":
        if has_conf:
            return make(
                ctx,
                "fail",
                f"{where} holds a gocryptfs cipherdir but MODEL_ENCRYPTION_METHOD is sam",
                evidence,
                (
                    "model-not-gocryptfs",
                    "Set model.encryption_method (MODEL_ENCRYPTION_METHOD) to gocryptfs, or upload the Sam package.",
                ),
            )
        if not level.files and not level.dirs:
            return make(
                ctx,
                "fail",
                f"nothing is uploaded at {where}",
                evidence,
                ("model-not-gocryptfs", "Upload the Sam package there (CAI-1.7)."),
            )
        if not level.files:
            return make(
                ctx,
                "fail",
                f"{where} holds only folders ({', '.join(level.dirs[:4])}): the Sam package is probably one level down",
                evidence,
                (
                    "model-not-gocryptfs",
                    "Point MODEL_OSS_BUCKET_PATH at the Sam output folder (./<key ID>/ of do_content_packager.sh).",
                ),
            )
        count, size = len(level.files), sum(level.files.values())
        return make(
            ctx,
            "pass",
            f"{where} holds {count} object(s) ({human_bytes(size)}): a Sam package (not a gocryptfs cipherdir)",
            evidence,
            objects=count,
            size=size,
        )

    if not has_conf:
        around = await call(find_conf_around, bucket, prefix, level)
        if isinstance(around, OssFailure):
            return failure_result(ctx, around, evidence, src, f"cannot list around {where}")
        down, up = around
        if down is not None:
            evidence.append(ev(ctx, f"{down}{CONF} exists", f"ListObjects {bucket_name} prefix={down!r}"))
            return make(
                ctx,
                "fail",
                f"one level too high: the gocryptfs cipherdir is {shown_path(bucket_name, down)}, not {where}",
                evidence,
                ("model-not-gocryptfs", f"{fix_path}: {shown_path(bucket_name, down)}."),
                suggested=shown_path(bucket_name, down),
            )
        if up is not None:
            evidence.append(ev(ctx, f"{up}{CONF} exists", f"ListObjects {bucket_name} prefix={up!r}"))
            return make(
                ctx,
                "fail",
                f"one level too low: {where} is a folder inside the cipherdir {shown_path(bucket_name, up)}",
                evidence,
                ("model-not-gocryptfs", f"{fix_path}: {shown_path(bucket_name, up)}."),
                suggested=shown_path(bucket_name, up),
            )
        if "config.json" in level.files:
            why = f"{where} holds a plaintext model (config.json), not a gocryptfs cipherdir"
        elif not level.files and not level.dirs:
            why = f"nothing is uploaded at {where}"
        elif has_diriv:
            why = f"{where} has gocryptfs.diriv but no gocryptfs.conf (an incomplete upload or a sub-folder of a cipherdir)"
        else:
            why = (
                f"{where} has no gocryptfs.conf: not a gocryptfs cipherdir (a Sam package? then set the method to sam)"
            )
        return make(
            ctx,
            "fail",
            why,
            evidence,
            (
                "model-not-gocryptfs",
                f"{fix_path}, or set MODEL_ENCRYPTION_METHOD to match how the model was encrypted; upload the whole cipher/ directory (CAI-1.7).",
            ),
        )

    conf_src = f"GetObject {bucket_name}/{prefix}{CONF} @ {endpoint}"
    raw = await call(read_small, bucket, prefix + CONF)
    if isinstance(raw, OssFailure):
        return failure_result(ctx, raw, evidence, conf_src, f"cannot read {prefix}{CONF}")
    try:
        config = GocryptfsConfig.from_json(raw, source=f"{where}{CONF}")
    except GocryptfsError as exc:
        evidence.append(ev(ctx, str(exc), conf_src))
        return make(
            ctx,
            "fail",
            f"{where}{CONF} is not a usable gocryptfs config: {exc}",
            evidence,
            ("model-not-gocryptfs", "Re-upload gocryptfs.conf from the cipher directory (gocryptfs v2.4.0 defaults)."),
        )
    evidence.append(
        ev(
            ctx,
            f"Creator={config.creator!r} Version={config.version} FeatureFlags={','.join(config.feature_flags)} "
            f"scrypt N={config.scrypt.n}",
            conf_src,
        )
    )
    totals = await call(total_size, bucket, prefix)
    count, size = (len(level.files), sum(level.files.values())) if isinstance(totals, OssFailure) else totals
    data: dict[str, Any] = {"objects": count, "size": size, "feature_flags": list(config.feature_flags)}
    if not has_diriv:
        return make(
            ctx,
            "fail",
            f"{where} has gocryptfs.conf but no gocryptfs.diriv: the upload is incomplete",
            evidence,
            ("model-not-gocryptfs", "Upload the whole cipher/ directory, gocryptfs.diriv included (CAI-1.7)."),
            **data,
        )
    if not config.is_default_format:
        return make(
            ctx,
            "warn",
            f"{where} is a gocryptfs cipherdir but not in the default format ({','.join(config.feature_flags)})",
            evidence,
            (
                "model-not-gocryptfs",
                "The CAI stack supports gocryptfs v2.4.0 with default parameters: re-encrypt with `gocryptfs -init` defaults.",
            ),
            **data,
        )
    return make(
        ctx, "pass", f"{where} is a gocryptfs cipherdir: {count} object(s), {human_bytes(size)}", evidence, **data
    )


# --------------------------------------------------------------------------------------------- oss.bucket_policy


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
