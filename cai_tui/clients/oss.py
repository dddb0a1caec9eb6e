"""The OSS client: oss2 buckets and services built from a recipe, and one error type for everything OSS (or the way
to it) can answer.

Every action that talks to OSS (upload, bucket policy) and every OSS check builds its :class:`oss2.Bucket` (or
:class:`oss2.Service`) here, signed the one way :func:`make_auth` chooses (V4 by default), so a check cannot disagree
with the action it verifies. Actions wrap their calls in :func:`oss_errors`, so a user sees one clear sentence naming
the fix (and an FAQ id), never an oss2 traceback.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .hosts import is_loopback_host

if TYPE_CHECKING:
    from collections.abc import Callable

    import oss2

    from ..recipe.cai import CaiAnswers

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_AUTH_VERSION = "v4"  # the signature every OSS client of cai-tui sends (V1 only when asked for)


class OssActionError(Exception):
    """An OSS operation failed; ``str()`` is the message a user reads (what happened and what to do)."""

    def __init__(self, message: str, faq_id: str = "oss-unreachable", code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.faq_id = faq_id
        self.code = code

    def __str__(self) -> str:
        return self.message


class OssInputError(ValueError):
    """A bad ``oss://`` URL or recipe value (exit code 2, no OSS call was made)."""


# ------------------------------------------------------------------------------------------------ URLs and recipes
def parse_oss_url(url: str) -> tuple[str, str]:
    """``oss://bucket/some/prefix`` → ``("bucket", "some/prefix/")`` (the prefix empty or ending in ``/``)."""
    from ..recipe.types import BUCKET_RE

    text = url.strip()
    if not text.startswith("oss://"):
        raise OssInputError(
            f"{url!r} is not an OSS URL; write oss://BUCKET/PREFIX (e.g. oss://examplebucket/qwen-encrypted/)"
        )
    bucket, _, prefix = text[len("oss://") :].partition("/")
    if not BUCKET_RE.match(bucket):
        raise OssInputError(
            f"{url!r}: {bucket!r} is not a valid bucket name (3–63 of a-z 0-9 -, not starting or ending with -)"
        )
    prefix = prefix.strip("/")
    if "//" in prefix or any(part in (".", "..") for part in prefix.split("/") if prefix):
        raise OssInputError(f"{url!r}: the prefix must not contain empty, '.' or '..' path segments")
    return bucket, (prefix + "/" if prefix else "")


def upload_endpoint(answers: CaiAnswers) -> str:
    """Where this machine sends uploads: ``oss.upload_endpoint`` when set, else ``oss.endpoint``."""
    return str(answers.oss.upload_endpoint or answers.oss.endpoint)


def public_twin(endpoint: str) -> str | None:
    """``https://oss-cn-beijing-internal.aliyuncs.com`` → ``https://oss-cn-beijing.aliyuncs.com``."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if "-internal" not in host:
        return None
    netloc = host.replace("-internal", "", 1) + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str
    session_token: str | None = None


def _resolve_with_recipe(ref: Any, field_name: str, what: str) -> str:
    from ..recipe import resolve_secret

    return resolve_secret(ref, field=field_name, what=what)


def recipe_credentials(answers: CaiAnswers, resolve: Callable[[Any, str, str], str] | None = None) -> Credentials:
    """Resolve the recipe's OSS secrets (they join the redaction set); :class:`OssInputError` when missing.

    ``resolve(reference, field, what)`` resolves one reference (the checks pass their context's, which reports an
    unresolvable one as ``unknown``); by default the recipe's own resolver."""
    from ..recipe import SecretUnavailable

    get = resolve or _resolve_with_recipe
    oss = answers.oss
    if oss.access_key_id is None or oss.access_key_secret is None:
        raise OssInputError(
            "the recipe has no OSS AccessKey: set answers.oss.access_key_id and answers.oss.access_key_secret "
            "(references such as file:~/.config/cai-tui/oss_ak), plus answers.oss.session_token for STS"
        )
    try:
        ak = get(oss.access_key_id, "answers.oss.access_key_id", "AccessKey ID")
        sk = get(oss.access_key_secret, "answers.oss.access_key_secret", "AccessKey secret")
        token = (
            get(oss.session_token, "answers.oss.session_token", "STS token") if oss.session_token is not None else None
        )
    except SecretUnavailable as exc:
        raise OssInputError(str(exc)) from None
    return Credentials(ak.strip(), sk.strip(), token.strip() if token else None)


def has_credentials(answers: CaiAnswers) -> bool:
    return answers.oss.access_key_id is not None and answers.oss.access_key_secret is not None


def make_auth(credentials: Credentials | None, *, region: str | None, auth_version: str = DEFAULT_AUTH_VERSION) -> Any:
    """The one signing choice: V4 (which needs ``region``) unless ``auth_version="v1"``; STS when the credentials carry
    a token; anonymous without credentials."""
    import oss2

    if auth_version not in ("v1", "v4"):
        raise OssInputError(f"auth version must be v1 or v4, not {auth_version!r}")
    if credentials is None:
        return oss2.AnonymousAuth()
    if auth_version == "v4" and not region:
        raise OssInputError("V4 signatures need the OSS region (answers.oss.region), or use V1 signatures")
    version = oss2.AUTH_VERSION_4 if auth_version == "v4" else oss2.AUTH_VERSION_1
    if credentials.session_token:
        return oss2.StsAuth(
            credentials.access_key_id, credentials.access_key_secret, credentials.session_token, auth_version=version
        )
    if version == oss2.AUTH_VERSION_4:
        return oss2.AuthV4(credentials.access_key_id, credentials.access_key_secret)
    return oss2.Auth(credentials.access_key_id, credentials.access_key_secret)


def _session(endpoint: str, pool_size: int = 10) -> Any:
    import oss2

    session = oss2.Session(pool_size=max(10, pool_size))
    host = urlsplit(endpoint).hostname or ""
    session.session.trust_env = not is_loopback_host(host)  # never send loopback traffic through a proxy
    return session


def make_bucket(
    endpoint: str,
    bucket_name: str,
    credentials: Credentials | None,
    *,
    region: str | None,
    timeout: float = DEFAULT_TIMEOUT_S,
    auth_version: str = DEFAULT_AUTH_VERSION,
    pool_size: int = 10,
    enable_crc: bool = False,
) -> oss2.Bucket:
    """An :class:`oss2.Bucket` signed by :func:`make_auth` (anonymous when ``credentials`` is None). V4 signatures
    need ``region``; ``auth_version="v1"`` is the fallback for endpoints (or proxies) that only speak V1. IP and
    ``localhost`` endpoints are path-style (oss2 does that by itself).

    oss2's own CRC-64 pass over every request body is off by default: the upload computes the CRC-64 of what it
    sends once and compares it with the one OSS returns for every object (and part), so a second pass only costs
    CPU."""
    import oss2

    _quiet_oss2_logging()
    auth = make_auth(credentials, region=region, auth_version=auth_version)
    return oss2.Bucket(
        auth,
        endpoint,
        bucket_name,
        session=_session(endpoint, pool_size),
        connect_timeout=timeout,
        region=region if auth_version == "v4" else None,
        enable_crc=enable_crc,
    )


def make_service(
    endpoint: str,
    credentials: Credentials,
    *,
    region: str | None,
    timeout: float = DEFAULT_TIMEOUT_S,
    auth_version: str = DEFAULT_AUTH_VERSION,
) -> oss2.Service:
    """An :class:`oss2.Service` (ListBuckets) signed as :func:`make_bucket` signs."""
    import oss2

    _quiet_oss2_logging()
    auth = make_auth(credentials, region=region, auth_version=auth_version)
    return oss2.Service(
        auth,
        endpoint,
        session=_session(endpoint),
        connect_timeout=timeout,
        region=region if auth_version == "v4" else None,
    )


def _quiet_oss2_logging() -> None:
    """oss2 logs the exceptions of its worker threads (with tracebacks) at WARNING/ERROR; without a handler of the
    application's, Python's last-resort handler would print them on stderr next to our one clear message. A
    NullHandler keeps them out of the terminal; a configured root logger still receives them."""
    import logging

    logger = logging.getLogger("oss2")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def bucket_from_recipe(
    answers: CaiAnswers,
    bucket_name: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    auth_version: str = DEFAULT_AUTH_VERSION,
    pool_size: int = 10,
) -> oss2.Bucket:
    return make_bucket(
        upload_endpoint(answers),
        bucket_name,
        recipe_credentials(answers),
        region=str(answers.oss.region),
        timeout=timeout,
        auth_version=auth_version,
        pool_size=pool_size,
    )


# ------------------------------------------------------------------------------------------------ errors
_FIXES: dict[str, tuple[str, str]] = {
    "AccessDenied": (
        "oss-access-denied",
        "the AccessKey's RAM policy must allow oss:PutObject, oss:GetObject, oss:ListObjects and oss:DeleteObject "
        "on the bucket (and oss:PutBucketPolicy to apply a policy), and no bucket-policy Deny may match this "
        "machine; fix the permissions in the RAM console or use the bucket owner's key",
    ),
    "NoSuchBucket": (
        "oss-no-such-bucket",
        "create the bucket in the endpoint's region (the same region as the instance), or fix the bucket name "
        "or the endpoint (answers.oss.upload_endpoint / answers.oss.endpoint)",
    ),
    "InvalidAccessKeyId": (
        "oss-invalid-access-key",
        "the AccessKey ID is unknown to OSS (typo, deleted or disabled key, or an STS key used without its "
        "token): fix answers.oss.access_key_id with an active key",
    ),
    "SignatureDoesNotMatch": (
        "oss-signature-mismatch",
        "the AccessKey secret does not belong to the AccessKey ID: fix answers.oss.access_key_secret (look for a "
        "stray space or newline in the secret file)",
    ),
    "SecurityTokenExpired": (
        "oss-token-expired",
        "the STS token has expired: get a fresh AccessKey/secret/token triple from STS AssumeRole, update the files "
        "answers.oss.access_key_id, access_key_secret and session_token point at",
    ),
    "InvalidSecurityToken": (
        "oss-token-expired",
        "the STS token is invalid or belongs to another STS AccessKey: set answers.oss.session_token to the token "
        "issued with this AccessKey pair (or remove it for a permanent RAM key)",
    ),
    "RequestTimeTooSkewed": (
        "oss-clock-skew",
        "this machine's clock differs from OSS's by more than 15 minutes: enable time sync "
        "(`timedatectl set-ntp true`, chrony)",
    ),
}


def _endpoint_of(bucket: Any) -> str:
    return str(getattr(bucket, "endpoint", "") or "")


def map_oss_error(exc: BaseException, what: str, endpoint: str = "") -> OssActionError:
    """One :class:`OssActionError` for an oss2/requests/socket exception raised while doing ``what``."""
    import oss2
    import requests

    where = f" ({endpoint})" if endpoint else ""
    if isinstance(exc, OssActionError):
        return exc
    if isinstance(exc, oss2.exceptions.RequestError):
        cause = getattr(exc, "exception", None) or exc
        return _network_error(cause, what, endpoint)
    if isinstance(exc, oss2.exceptions.InconsistentError):
        return OssActionError(
            f"{what}: the CRC-64 OSS computed differs from the data sent ({exc.message}); the data changed on the "
            "way or the file changed while it was read — run the command again",
            "oss-crc-mismatch",
            "InconsistentError",
        )
    if isinstance(exc, oss2.exceptions.OssError):
        code = exc.code or f"HTTP{exc.status}"
        faq, fix = _FIXES.get(code, ("oss-error", "see the message from OSS"))
        detail = f"HTTP {exc.status} {code}" + (f": {exc.message}" if exc.message else "")
        ec = f" EC {exc.ec}" if getattr(exc, "ec", "") else ""
        return OssActionError(f"{what}: OSS answered {detail}{ec}{where}. Fix: {fix}.", faq, code)
    if isinstance(exc, (requests.exceptions.RequestException, socket.timeout, ConnectionError, TimeoutError)):
        return _network_error(exc, what, endpoint)
    raise TypeError(f"not an OSS error: {type(exc).__name__}")


def _network_error(cause: BaseException, what: str, endpoint: str) -> OssActionError:
    import requests

    text = f"{type(cause).__name__}: {cause}"
    host = urlsplit(endpoint).hostname or "" if endpoint else ""
    name_error = "Name or service not known" in text or "nodename nor servname" in text or "NameResolution" in text
    if name_error and "-internal" in host:
        twin = public_twin(endpoint) or "the public endpoint"
        return OssActionError(
            f"{what}: {host} does not resolve here: -internal endpoints only resolve inside an Alibaba Cloud VPC. "
            f"Fix: set answers.oss.upload_endpoint to {twin} for uploads from outside.",
            "oss-unreachable",
            "network",
        )
    stalled = isinstance(cause, (requests.exceptions.ReadTimeout, socket.timeout, TimeoutError)) or (
        isinstance(cause, requests.exceptions.ConnectionError) and "Read timed out" in text
    )
    if stalled or (isinstance(cause, requests.exceptions.ConnectionError) and "Connection aborted" in text):
        return OssActionError(
            f"{what}: the answer from OSS{' at ' + endpoint if endpoint else ''} stalled or was cut off ({text[:200]}). "
            "Fix: check the network path (proxy, firewall, VPN) and run the same command again.",
            "oss-unreachable",
            "network",
        )
    return OssActionError(
        f"{what}: cannot reach OSS{' at ' + endpoint if endpoint else ''} ({text[:200]}). Fix: check the endpoint "
        "(answers.oss.upload_endpoint / answers.oss.endpoint), DNS, proxies and firewalls.",
        "oss-unreachable",
        "network",
    )


def is_oss_error(exc: BaseException) -> bool:
    import oss2
    import requests

    return isinstance(
        exc,
        (
            OssActionError,
            oss2.exceptions.OssError,
            requests.exceptions.RequestException,
            socket.timeout,
            ConnectionError,
            TimeoutError,
        ),
    )


@contextmanager
def oss_errors(what: str, bucket: Any = None) -> Iterator[None]:
    """Turn what oss2 (or requests under it) raises inside the block into :class:`OssActionError`."""
    try:
        yield
    except Exception as exc:
        if not is_oss_error(exc):
            raise
        raise map_oss_error(exc, what, _endpoint_of(bucket)) from None
