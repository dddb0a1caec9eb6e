"""OSS checks, shared: the constants, the recipe's OSS location, which endpoint the checks use from here, the
bucket and service built through the one OSS client, and the classification of what OSS answers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ...clients.oss import Credentials, has_credentials, public_twin, recipe_credentials
from ...clients.oss import make_bucket as client_bucket
from ...clients.oss import make_service as client_service
from ..base import CheckContext, Evidence, Result
from ..common import (
    SecretProblem,
    cai_answers,
    describe_os_error,
    ev,
    ip_literal,
    is_timeout,
    make,
    net_timeout,
    no_recipe,
    resolve,
    resolve_timeout,
    secret,
)

if TYPE_CHECKING:
    import oss2

    from ...recipe.cai import CaiAnswers


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


def _oss_answers(ctx: CheckContext) -> tuple[CaiAnswers | None, Result | None]:
    answers = cai_answers(ctx)
    if answers is None:
        return None, no_recipe()
    return answers, None


def location(answers: CaiAnswers) -> tuple[str, str]:
    """(bucket, prefix ending in "/" or empty) of MODEL_OSS_BUCKET_PATH."""
    from ...recipe.types import parse_bucket_path

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
