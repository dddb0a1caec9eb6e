"""CAI-2.6 through the KMS API: create the generic secret holding the model key (or add a version), then read it back.

What to create comes from :func:`cai_tui.render.kms_secret.plan` (the same plan ``cai-tui render kms-secret`` shows).
Every SDK failure becomes a :class:`KmsActionError`: one line saying what to fix, with the FAQ id of
``assets/faq/kms.yaml``. The value is resolved from its reference once, joins the redaction set, and is never shown.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..recipe import CaiRecipe
    from ..render.base import Prompter

DEFAULT_TIMEOUT_S = 15.0
DESCRIPTION = "model decryption key (cai-tui, CAI-2.6)"
WRITE_RIGHTS = "kms:CreateSecret, kms:PutSecretValue, kms:DescribeSecret and kms:GetSecretValue"


class KmsActionError(Exception):
    """A KMS step failed; ``str()`` is the one line a user reads. ``exit_code``: 2 input/KMS error, 1 a failed run."""

    def __init__(self, message: str, *, faq_id: str = "", code: str = "", exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.faq_id = faq_id
        self.code = code
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message + (f"  [FAQ: {self.faq_id}]" if self.faq_id else "")


class SecretExists(KmsActionError):
    """The secret is already there and the caller did not ask for a new version."""


@dataclass(frozen=True)
class Outcome:
    name: str
    result: str  # "created" | "updated" (new version) | "unchanged" (it already held this value)
    version_id: str
    verified: bool


# ------------------------------------------------------------------------------------------------ client
def endpoint_of(recipe: CaiRecipe) -> tuple[str, bool]:
    """(``host[:port]`` of the KMS OpenAPI, plain HTTP?): loopback (the lab) and an explicit ``http://`` use HTTP."""
    from ..clients.hosts import is_loopback_host

    k = recipe.answers.kms
    text = (k.endpoint or f"kms.{k.region}.aliyuncs.com").strip()
    endpoint = text.split("://", 1)[-1].rstrip("/")
    host = endpoint.rsplit(":", 1)[0] if endpoint.count(":") == 1 else endpoint
    return endpoint, text.startswith("http://") or is_loopback_host(host)


def make_client(recipe: CaiRecipe, *, prompt: Prompter | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> Any:
    """An ``alibabacloud_kms20160120`` Client from the recipe's AccessKey references (resolved, never shown)."""
    from alibabacloud_kms20160120.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    from ..recipe import SecretUnavailable, resolve_secret

    k = recipe.answers.kms
    missing = [f"answers.kms.{n}" for n in ("access_key_id", "access_key_secret") if getattr(k, n) is None]
    if missing:
        raise KmsActionError(
            f"{' and '.join(missing)} not set: creating the secret needs an AccessKey allowed {WRITE_RIGHTS} "
            "(as file:PATH or env:NAME references); or create it in the KMS console (cai-tui render kms-secret)"
        )
    assert k.access_key_id is not None and k.access_key_secret is not None
    try:
        ak = resolve_secret(k.access_key_id, field="answers.kms.access_key_id", prompt=prompt)
        sk = resolve_secret(k.access_key_secret, field="answers.kms.access_key_secret", prompt=prompt)
    except SecretUnavailable as exc:
        raise KmsActionError(str(exc)) from None
    endpoint, plain = endpoint_of(recipe)
    config = open_api_models.Config(
        access_key_id=ak,
        access_key_secret=sk,
        region_id=k.region,
        endpoint=endpoint,
        protocol="http" if plain else "https",
        connect_timeout=int(timeout * 1000),
        read_timeout=int(timeout * 1000),
    )
    if plain:
        config.no_proxy = "127.0.0.1,localhost,::1"
    return Client(config)


# ------------------------------------------------------------------------------------------------ errors
def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


_NET_REASONS = re.compile(
    r"Connection refused|Connection reset[^'\"]*|Name or service not known|Temporary failure in name resolution|"
    r"nodename nor servname provided|No route to host|Network is unreachable|timed out|CERTIFICATE_VERIFY_FAILED|"
    r"certificate verify failed[^'\"]*|Remote end closed connection[^'\"]*"
)


def network_reason(text: str) -> str:
    """The part of a urllib3/requests error chain a user can act on (``Connection refused``), or ''."""
    m = _NET_REASONS.search(text)
    return m.group(0) if m else ""


def kms_error(exc: BaseException, *, call: str, name: str, endpoint: str, instance_id: str | None) -> KmsActionError:
    """The SDK exception of ``call`` (CreateSecret, …) as a one-line message with its FAQ id."""
    from Tea.exceptions import TeaException, UnretryableException

    if isinstance(exc, UnretryableException) or not isinstance(exc, TeaException):
        reason = network_reason(str(getattr(exc, "message", None) or exc)) or type(exc).__name__
        return KmsActionError(
            f"no answer from KMS at {endpoint} ({reason}): check answers.kms.endpoint (host[:port], default "
            "kms.<region>.aliyuncs.com), DNS and proxies on this machine",
            faq_id="kms-unreachable",
        )
    code = str(exc.code or "")
    if code in ("InvalidAccessKeyId.NotFound", "InvalidAccessKeyId", "InvalidAccessKeyId.Inactive"):
        return KmsActionError(
            f"KMS does not know the AccessKey ID of answers.kms.access_key_id ({code}): set an active AccessKey pair "
            f"of a RAM user allowed {WRITE_RIGHTS}",
            faq_id="kms-invalid-access-key",
            code=code,
        )
    if code in ("SignatureDoesNotMatch", "IncompleteSignature"):
        return KmsActionError(
            f"the AccessKey secret does not match the AccessKey ID ({code}): fix answers.kms.access_key_secret",
            faq_id="kms-invalid-access-key",
            code=code,
        )
    if code == "InvalidTimeStamp.Expired":
        return KmsActionError(
            "KMS rejects this machine's clock (InvalidTimeStamp.Expired): enable time sync (timedatectl set-ntp true)",
            faq_id="kms-clock-skew",
            code=code,
        )
    if code == "Forbidden.ResourceNotFound" and call == "CreateSecret":
        return KmsActionError(
            f"KMS has no instance {instance_id or '(default)'} in this region (Forbidden.ResourceNotFound): fix "
            "answers.kms.instance_id (kst-…) and answers.kms.region",
            code=code,
        )
    if code == "Forbidden.KeyNotFound":
        return KmsActionError(
            "the encryption key does not exist (Forbidden.KeyNotFound): give the ID of the customer master key created "
            "in CAI-2.1 with --encryption-key-id, or leave it out",
            code=code,
        )
    if code == "Rejected.ResourceInDeleteWindow":
        return KmsActionError(
            f"the secret {name!r} is scheduled for deletion: restore it (RestoreSecret, or the KMS console) first",
            faq_id="kms-secret-missing",
            code=code,
        )
    if code.startswith("Forbidden."):
        return KmsActionError(
            f"KMS refused {call} ({code}): the RAM user of answers.kms.access_key_id needs {WRITE_RIGHTS} on the "
            f"secret {name!r} (e.g. AliyunKMSFullAccess, or a custom policy)",
            faq_id="kms-permission-denied",
            code=code,
        )
    message = _one_line(getattr(exc, "message", "") or "")
    return KmsActionError(f"KMS refused {call}: {code or 'error'}: {message}", code=code)


def exists_error(name: str) -> SecretExists:
    return SecretExists(
        f"the KMS secret {name!r} already exists; nothing was changed. To store this key as a new version (the current "
        "one is kept as ACSPrevious) run again with --update",
        code="Rejected.ResourceExist",
        exit_code=1,
    )


# ------------------------------------------------------------------------------------------------ calls
class Session:
    """One KMS client bound to the recipe's plan; every call's failure is a :class:`KmsActionError`."""

    def __init__(self, recipe: CaiRecipe, client: Any) -> None:
        from ..render.kms_secret import plan

        self.recipe = recipe
        self.client = client
        self.plan = plan(recipe)
        self.endpoint = endpoint_of(recipe)[0]

    def _fail(self, exc: BaseException, call: str) -> KmsActionError:
        return kms_error(exc, call=call, name=self.plan.name, endpoint=self.endpoint, instance_id=self.plan.instance_id)

    def exists(self) -> bool:
        """DescribeSecret: True when the secret exists (also when scheduled for deletion)."""
        from alibabacloud_kms20160120 import models as kms_models
        from Tea.exceptions import TeaException, UnretryableException

        try:
            self.client.describe_secret(kms_models.DescribeSecretRequest(secret_name=self.plan.name))
        except TeaException as exc:
            if not isinstance(exc, UnretryableException) and exc.code == "Forbidden.ResourceNotFound":
                return False
            raise self._fail(exc, "DescribeSecret") from None
        except Exception as exc:
            raise self._fail(exc, "DescribeSecret") from None
        return True

    def current_value(self) -> tuple[str, str]:
        """GetSecretValue of ACSCurrent: (value, version id); the value joins the redaction set."""
        from alibabacloud_kms20160120 import models as kms_models

        from ..recipe import REDACTOR

        try:
            body = self.client.get_secret_value(kms_models.GetSecretValueRequest(secret_name=self.plan.name)).body
        except Exception as exc:
            raise self._fail(exc, "GetSecretValue") from None
        text = str(body.secret_data or "")
        if (body.secret_data_type or "text") == "binary":
            try:
                text = base64.b64decode(text, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                pass
        if text:
            REDACTOR.add(text)
        return text, str(body.version_id or "")

    def create(self, value: str, encryption_key_id: str | None) -> str:
        from alibabacloud_kms20160120 import models as kms_models
        from Tea.exceptions import TeaException

        from ..render.kms_secret import VERSION_ID

        request = kms_models.CreateSecretRequest(
            secret_name=self.plan.name,
            secret_data=value,
            secret_data_type="text",
            version_id=VERSION_ID,
            encryption_key_id=encryption_key_id,
            dkmsinstance_id=self.plan.instance_id,
            description=DESCRIPTION,
        )
        try:
            body = self.client.create_secret(request).body
        except TeaException as exc:
            if exc.code == "Rejected.ResourceExist":
                raise exists_error(self.plan.name) from None
            raise self._fail(exc, "CreateSecret") from None
        except Exception as exc:
            raise self._fail(exc, "CreateSecret") from None
        return str(body.version_id or VERSION_ID)

    def put(self, value: str) -> str:
        from alibabacloud_kms20160120 import models as kms_models

        request = kms_models.PutSecretValueRequest(
            secret_name=self.plan.name, secret_data=value, secret_data_type="text", version_id=new_version_id()
        )
        try:
            body = self.client.put_secret_value(request).body
        except Exception as exc:
            raise self._fail(exc, "PutSecretValue") from None
        return str(body.version_id or request.version_id)

    def verify(self, value: str) -> str:
        """Read the secret back: its ACSCurrent value must equal ``value``; returns the version id read."""
        stored, version = self.current_value()
        if not hmac.compare_digest(stored.encode("utf-8"), value.encode("utf-8")):
            raise KmsActionError(
                f"verification FAILED: GetSecretValue of {self.plan.name!r} (version {version or '?'}) does not return "
                "the key just stored; another writer may have changed it — run again",
                faq_id="model-password-wrong",
                exit_code=1,
            )
        return version


def new_version_id() -> str:
    """A fresh, unique version id for PutSecretValue (KMS: up to 64 characters, unique per secret)."""
    return f"cai-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def resolve_value(recipe: CaiRecipe, *, prompt: Prompter | None = None) -> str:
    """The model key the secret must hold (``plan().value_ref``), resolved and added to the redaction set."""
    from ..recipe import SecretUnavailable, resolve_secret
    from ..render.kms_secret import plan

    p = plan(recipe)
    try:
        return resolve_secret(p.value_ref, field=f"answers.{p.value_field}", prompt=prompt, what="model key")
    except SecretUnavailable as exc:
        raise KmsActionError(str(exc)) from None


def create_or_update(
    session: Session, value: str, *, update: bool, encryption_key_id: str | None = None, exists: bool | None = None
) -> Outcome:
    """CreateSecret; when the secret exists: :class:`SecretExists` without ``update``, else PutSecretValue.

    A secret that already holds ``value`` gets no new version. The result is read back and compared (``verify``).
    """
    name = session.plan.name
    if exists is None:
        exists = session.exists()
    if exists and not update:
        raise exists_error(name)
    if not exists:
        try:
            session.create(value, encryption_key_id)
            return Outcome(name, "created", session.verify(value), True)
        except SecretExists:
            if not update:
                raise
    current, _ = session.current_value()
    if hmac.compare_digest(current.encode("utf-8"), value.encode("utf-8")):
        return Outcome(name, "unchanged", session.verify(value), True)
    session.put(value)
    return Outcome(name, "updated", session.verify(value), True)
