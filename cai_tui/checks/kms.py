"""KMS checks: the model key's secret exists (CAI-2.6), it unlocks the model, and the ClientKey files are sound (CAI-2.1).

The secret checks use the KMS OpenAPI SDK (alibabacloud-kms20160120) with ``answers.kms.endpoint`` and the API
AccessKey; the secret's name is the last segment of MODEL_KEY_ID, as the Trustee's KMS backend reads it. Secret values
join the redaction set the moment they are read and are never shown.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hmac
import json
import re
from typing import TYPE_CHECKING, Any

from ..clients.hosts import is_loopback_host
from .base import CheckContext, Evidence, Result
from .common import (
    SecretProblem,
    cai_answers,
    ev,
    expand_path,
    join,
    make,
    net_timeout,
    no_recipe,
    secret,
)
from .registry import check

if TYPE_CHECKING:
    from ..recipe.cai import CaiAnswers
    from ..targets.base import Target

STAGE_KMS = "kms"
STAGE_KEY = "model-key"
KST_RE = re.compile(r"kst-[a-z0-9]{6,40}")
KAAP_RE = re.compile(r"KAAP\.[A-Za-z0-9-]+")

FIX_KMS_KEY = (
    "kms-invalid-access-key",
    "Fix kms.access_key_id / kms.access_key_secret: an active AccessKey pair of a RAM user allowed to read secrets "
    "(kms:DescribeSecret, kms:GetSecretValue) in the KMS region.",
)
FIX_KMS_UNREACHABLE = (
    "kms-unreachable",
    "Check kms.endpoint (host[:port] without a scheme; default kms.<region>.aliyuncs.com, kms-vpc.<region>… inside a "
    "VPC), DNS and proxies on this machine.",
)
KMS_CODE_FIXES: dict[str, tuple[str, str]] = {
    "InvalidAccessKeyId.NotFound": FIX_KMS_KEY,
    "InvalidAccessKeyId": FIX_KMS_KEY,
    "SignatureDoesNotMatch": (
        "kms-invalid-access-key",
        "The KMS AccessKey secret does not match the AccessKey ID: fix kms.access_key_secret.",
    ),
    "IncompleteSignature": FIX_KMS_KEY,
    "Forbidden.RAM": (
        "kms-permission-denied",
        "The RAM user of this AccessKey lacks kms:DescribeSecret / kms:GetSecretValue on the secret: grant them "
        "(e.g. AliyunKMSSecretUserAccess).",
    ),
    "Forbidden.NoPermission": (
        "kms-permission-denied",
        "The RAM user of this AccessKey may not read this secret: grant kms:DescribeSecret and kms:GetSecretValue.",
    ),
    "InvalidTimeStamp.Expired": (
        "kms-clock-skew",
        "This machine's clock is off: enable time sync (`timedatectl set-ntp true`, chrony) and run the check again.",
    ),
}


def secret_name_of(answers: CaiAnswers) -> str:
    """The KMS secret Trustee reads: the ``<tag>`` of MODEL_KEY_ID (falls back to kms.secret_name)."""
    from ..clients.kbs import parse_kbs_uri

    try:
        return parse_kbs_uri(answers.trustee.model_key_id).tag
    except ValueError:
        return answers.kms.secret_name


def _kms_ready(ctx: CheckContext) -> tuple[CaiAnswers | None, Result | None]:
    answers = cai_answers(ctx)
    if answers is None:
        return None, no_recipe()
    if answers.kms.access_key_id is None or answers.kms.access_key_secret is None:
        return None, Result(
            "skip", "needs kms.access_key_id and kms.access_key_secret (an AccessKey that may read KMS secrets)"
        )
    return answers, None


def kms_endpoint(answers: CaiAnswers) -> str:
    """``host[:port]`` of the KMS OpenAPI (a scheme typed by mistake is dropped)."""
    endpoint = (answers.kms.endpoint or f"kms.{answers.kms.region}.aliyuncs.com").strip()
    return endpoint.split("://", 1)[1].rstrip("/") if "://" in endpoint else endpoint.rstrip("/")


def kms_client(ctx: CheckContext, answers: CaiAnswers, timeout: float) -> Any:
    from alibabacloud_kms20160120.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    ak = secret(ctx, answers.kms.access_key_id, "answers.kms.access_key_id")
    sk = secret(ctx, answers.kms.access_key_secret, "answers.kms.access_key_secret")
    endpoint = kms_endpoint(answers)
    host = endpoint.rsplit(":", 1)[0] if endpoint.count(":") == 1 else endpoint
    loopback = is_loopback_host(host)
    config = open_api_models.Config(
        access_key_id=ak,
        access_key_secret=sk,
        region_id=answers.kms.region,
        endpoint=endpoint,
        protocol="http" if loopback or (answers.kms.endpoint or "").startswith("http://") else "https",
        connect_timeout=int(timeout * 1000),
        read_timeout=int(timeout * 1000),
    )
    if loopback:
        config.no_proxy = "127.0.0.1,localhost,::1"
    return Client(config)


def kms_failure(ctx: CheckContext, exc: BaseException, evidence: list[Evidence], source: str, name: str) -> Result:
    from Tea.exceptions import TeaException, UnretryableException

    if isinstance(exc, UnretryableException) or not isinstance(exc, TeaException):
        evidence.append(ev(ctx, f"{type(exc).__name__}: {exc}", source))
        return make(ctx, "fail", f"no answer from KMS at {source.split(' @ ')[-1]}", evidence, FIX_KMS_UNREACHABLE)
    code = str(exc.code or "")
    status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
    message = str(getattr(exc, "message", "") or "")
    request_id = getattr(exc, "request_id", None) or ""
    evidence.append(ev(ctx, f"HTTP {status or '?'} {code}: {message} RequestId {request_id}".strip(), source))
    if code == "Forbidden.ResourceNotFound":
        return make(
            ctx,
            "fail",
            f"the KMS secret {name!r} does not exist (Forbidden.ResourceNotFound)",
            evidence,
            (
                "kms-secret-missing",
                f"Create the generic secret {name!r} holding the model password (CAI-2.6), encrypted with the CMK of "
                "the KMS instance Trustee uses — or fix MODEL_KEY_ID (trustee.model_key_id): its last segment is the "
                "secret name.",
            ),
            code=code,
            secret_name=name,
        )
    faq, text = KMS_CODE_FIXES.get(
        code, ("kms-permission-denied", f"KMS refused the request ({code}); see the evidence.")
    )
    return make(ctx, "fail", f"KMS refused the request: {code}", evidence, (faq, text), code=code)


# --------------------------------------------------------------------------------------------- kms.secret_exists


@check("kms.secret_exists", "The KMS secret named by MODEL_KEY_ID exists (CAI-2.6)", stage=STAGE_KEY)
async def kms_secret_exists(ctx: CheckContext) -> Result:
    from alibabacloud_kms20160120 import models as kms_models

    answers, skip = _kms_ready(ctx)
    if answers is None:
        return skip  # type: ignore[return-value]
    name = secret_name_of(answers)
    endpoint = kms_endpoint(answers)
    source = f"DescribeSecret SecretName={name} @ {endpoint}"
    evidence: list[Evidence] = [ev(ctx, answers.trustee.model_key_id, "answers.trustee.model_key_id (MODEL_KEY_ID)")]
    try:
        client = kms_client(ctx, answers, net_timeout(ctx, 0.7))
    except SecretProblem as exc:
        return exc.result

    def work() -> Any:
        return client.describe_secret(kms_models.DescribeSecretRequest(secret_name=name)).body

    try:
        body = await asyncio.to_thread(work)
    except Exception as exc:
        return kms_failure(ctx, exc, evidence, source, name)
    instance = getattr(body, "dkmsinstance_id", None) or ""
    evidence.append(
        ev(
            ctx,
            f"SecretName={body.secret_name} SecretType={body.secret_type} CreateTime={body.create_time} "
            f"DKMSInstanceId={instance or '-'}",
            source,
        )
    )
    data: dict[str, Any] = {"secret_name": name, "dkms_instance_id": instance}
    if getattr(body, "planned_delete_time", None):
        return make(
            ctx,
            "fail",
            f"the KMS secret {name!r} is scheduled for deletion ({body.planned_delete_time})",
            evidence,
            ("kms-secret-missing", f"Restore the secret {name!r} (RestoreSecret) before it is deleted (CAI-2.6)."),
            **data,
        )
    if answers.kms.instance_id and instance and instance != answers.kms.instance_id:
        return make(
            ctx,
            "warn",
            f"the secret {name!r} lives in KMS instance {instance}, the recipe's Trustee uses {answers.kms.instance_id}",
            evidence,
            (
                "kms-secret-missing",
                "Create the secret in the KMS instance given to the Trustee chart (kms.instance_id).",
            ),
            **data,
        )
    if answers.kms.secret_name != name:
        return make(
            ctx,
            "warn",
            f"the secret {name!r} exists, but kms.secret_name says {answers.kms.secret_name!r}; Trustee reads {name!r}",
            evidence,
            ("kms-secret-missing", "Make kms.secret_name and the last segment of MODEL_KEY_ID the same name."),
            **data,
        )
    return make(ctx, "pass", f"the KMS secret {name!r} exists", evidence, **data)


# --------------------------------------------------------------------------------------------- kms.secret_matches


async def _conf_from_target(ctx: CheckContext, answers: CaiAnswers) -> tuple[bytes, str, str] | None:
    """(gocryptfs.conf bytes, where, target name) from the local cipher directory, or None."""
    target = ctx.target("workstation")
    if target is None or not answers.model.cipher_dir:
        return None
    path = join(await expand_path(target, answers.model.cipher_dir), "gocryptfs.conf")
    try:
        return await target.read_file(path, max_bytes=1 << 20), path, target.name
    except OSError:
        return None


async def _conf_from_oss(ctx: CheckContext, answers: CaiAnswers) -> tuple[bytes, str, str] | str:
    """(gocryptfs.conf bytes, where, "local") fetched from MODEL_OSS_BUCKET_PATH, or why not."""
    from . import oss

    bucket_name, prefix = oss.location(answers)
    endpoint = await oss.endpoint_for_checks(ctx, answers)
    bucket = oss.make_bucket(ctx, answers, endpoint, bucket_name, net_timeout(ctx, 0.4))
    got = await oss.call(oss.read_small, bucket, prefix + oss.CONF)
    where = f"GetObject {bucket_name}/{prefix}{oss.CONF} @ {endpoint}"
    if isinstance(got, oss.OssFailure):
        return f"{where}: {got.observed}"
    return got, where, "local"


def _unlocks(conf: Any, value: bytes) -> bool:
    try:
        return bool(conf.check_password(value))
    except ValueError:  # empty password
        return False


@check(
    "kms.secret_matches",
    "The KMS secret's value unlocks the model (its gocryptfs.conf)",
    stage=STAGE_KEY,
    depends=("kms.secret_exists",),
)
async def kms_secret_matches(ctx: CheckContext) -> Result:
    from alibabacloud_kms20160120 import models as kms_models

    from ..gocryptfs import GocryptfsError
    from ..gocryptfs.config import GocryptfsConfig

    answers, skip = _kms_ready(ctx)
    if answers is None:
        return skip  # type: ignore[return-value]
    name = secret_name_of(answers)
    endpoint = kms_endpoint(answers)
    source = f"GetSecretValue SecretName={name} @ {endpoint}"
    evidence: list[Evidence] = []
    try:
        client = kms_client(ctx, answers, net_timeout(ctx, 0.4))
    except SecretProblem as exc:
        return exc.result

    def fetch() -> Any:
        return client.get_secret_value(kms_models.GetSecretValueRequest(secret_name=name)).body

    try:
        body = await asyncio.to_thread(fetch)
    except Exception as exc:
        return kms_failure(ctx, exc, evidence, source, name)
    text = str(body.secret_data or "")
    if (body.secret_data_type or "text") == "binary":
        try:
            value = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            value = text.encode("utf-8")
    else:
        value = text.encode("utf-8")
    ctx.redactor.add(value)
    ctx.redactor.add(value.strip())
    evidence.append(
        ev(
            ctx,
            f"SecretDataType={body.secret_data_type} VersionId={body.version_id} ({len(value)} bytes, not shown)",
            source,
        )
    )

    if answers.model.encryption_method == "sam":
        if answers.model.sam.key is None:
            return make(
                ctx, "skip", "Sam model: set model.sam.key to compare the KMS secret with the Sam key", evidence
            )
        try:
            sam_key = secret(ctx, answers.model.sam.key, "answers.model.sam.key").encode("utf-8")
        except SecretProblem as exc:
            return exc.result
        if hmac.compare_digest(sam_key, value):
            return make(ctx, "pass", f"the KMS secret {name!r} equals the Sam key (value not shown)", evidence)
        return make(
            ctx,
            "fail",
            f"the KMS secret {name!r} differs from the Sam key model.sam.key",
            evidence,
            ("model-password-wrong", f"Store the Sam plaintext key as the value of {name!r} (CAI-2.6)."),
        )

    got: tuple[bytes, str, str] | str | None = await _conf_from_target(ctx, answers)
    if got is None:
        try:
            got = await _conf_from_oss(ctx, answers)
        except SecretProblem as exc:
            return exc.result
    if isinstance(got, str):
        evidence.append(ev(ctx, got, "gocryptfs.conf"))
        return make(
            ctx,
            "unknown",
            "cannot read the model's gocryptfs.conf (no model.cipher_dir here, and OSS did not give it)",
            evidence,
            ("model-not-gocryptfs", "Set model.cipher_dir to the local cipher directory, or fix the OSS checks first."),
        )
    raw, where, target_name = got
    try:
        conf = GocryptfsConfig.from_json(raw, source=where)
    except GocryptfsError as exc:
        evidence.append(ev(ctx, str(exc), where, target_name))
        return make(ctx, "fail", f"{where} is not a usable gocryptfs.conf", evidence, ("model-not-gocryptfs", str(exc)))
    if await asyncio.to_thread(_unlocks, conf, value):
        evidence.append(ev(ctx, "the value unlocks the master key (scrypt + AES-GCM)", where, target_name))
        return make(
            ctx, "pass", f"the KMS secret {name!r} unlocks the model's gocryptfs.conf (value not shown)", evidence
        )
    evidence.append(ev(ctx, "password incorrect: the value does not unlock the master key", where, target_name))
    hint = ""
    stripped = value.strip()
    if stripped != value and stripped and await asyncio.to_thread(_unlocks, conf, stripped):
        hint = " The value has leading/trailing whitespace or a newline: without it, it unlocks the model."
    elif answers.model.password is not None:
        try:
            pw = secret(ctx, answers.model.password, "answers.model.password").encode("utf-8")
        except SecretProblem:
            pw = b""
        if pw and pw != value and await asyncio.to_thread(_unlocks, conf, pw):
            hint = " model.password (the encryption key file) does unlock it: the KMS secret holds another value."
    return make(
        ctx,
        "fail",
        f"the KMS secret {name!r} does not unlock the model (gocryptfs: password incorrect)",
        evidence,
        (
            "model-password-wrong",
            f"Store the password the model was encrypted with (the key file of CAI-1.4) as the value of {name!r} "
            f"(PutSecretValue, CAI-2.6).{hint}",
        ),
    )


# --------------------------------------------------------------------------------------------- kms.client_key_files


async def _read(target: Target, path: str) -> tuple[bytes | None, str]:
    full = await expand_path(target, path)
    try:
        return await target.read_file(full, max_bytes=1 << 20), full
    except OSError as exc:
        return None, f"{full}: {exc.strerror or exc}"


def _not_after(cert: Any) -> dt.datetime:
    try:
        return cert.not_valid_after_utc  # type: ignore[no-any-return]
    except AttributeError:  # pragma: no cover - cryptography < 42
        return cert.not_valid_after.replace(tzinfo=dt.timezone.utc)  # type: ignore[no-any-return]


def _subject(cert: Any) -> str:
    return str(cert.subject.rfc4514_string())


@check(
    "kms.client_key_files",
    "KMS ClientKey, its password and the instance CA certificate are valid (CAI-2.1)",
    stage=STAGE_KMS,
)
async def kms_client_key_files(ctx: CheckContext) -> Result:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs12

    answers = cai_answers(ctx)
    if answers is None:
        return no_recipe()
    kms = answers.kms
    if not (kms.client_key_file or kms.password_file or kms.ca_file):
        return Result("skip", "kms.client_key_file, kms.password_file and kms.ca_file are not set yet (CAI-2.1)")
    target = ctx.target("workstation")
    if target is None:  # pragma: no cover - the workstation is always local
        return Result("skip", "no workstation target")
    tname = target.name
    evidence: list[Evidence] = []
    problems: list[str] = []
    warnings: list[str] = []
    now = dt.datetime.now(dt.timezone.utc)
    ids: dict[str, str] = {}

    password: bytes | None = None
    if kms.password_file:
        raw, where = await _read(target, kms.password_file)
        if raw is None:
            problems.append(f"cannot read the password file ({where})")
            evidence.append(ev(ctx, where, "read the password file", tname))
        else:
            password = raw.decode("utf-8", "replace").split("\n", 1)[0].rstrip("\r").encode("utf-8")
            ctx.redactor.add(password)
            evidence.append(
                ev(ctx, f"password file: {len(password)} bytes on its first line (not shown)", where, tname)
            )
            m = KAAP_RE.search(where)
            if m:
                ids["password file"] = m.group(0)

    if kms.client_key_file:
        raw, where = await _read(target, kms.client_key_file)
        if raw is None:
            problems.append(f"cannot read the ClientKey file ({where})")
            evidence.append(ev(ctx, where, "read the ClientKey file", tname))
        else:
            m = KAAP_RE.search(where.rsplit("/", 1)[-1])
            if m:
                ids["ClientKey file name"] = m.group(0)
            try:
                doc = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                doc = None
                problems.append(f"the ClientKey file is not JSON ({exc})")
            if doc is not None:
                key_id, blob = (doc.get("KeyId"), doc.get("PrivateKeyData")) if isinstance(doc, dict) else (None, None)
                if not isinstance(key_id, str) or not isinstance(blob, str):
                    keys = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
                    problems.append(f'the ClientKey JSON must be {{"KeyId", "PrivateKeyData"}}, found {keys}')
                else:
                    ctx.redactor.add(blob)
                    ids["ClientKey KeyId"] = key_id
                    evidence.append(
                        ev(ctx, f"KeyId={key_id}, PrivateKeyData {len(blob)} base64 characters", where, tname)
                    )
                    try:
                        p12 = base64.b64decode(blob, validate=True)
                    except (binascii.Error, ValueError):
                        p12 = b""
                        problems.append("PrivateKeyData is not base64")
                    if p12 and password is None:
                        warnings.append("no kms.password_file: the PKCS#12 could not be opened")
                    elif p12 and password is not None:
                        try:
                            key, cert, _extra = pkcs12.load_key_and_certificates(p12, password)
                        except ValueError as exc:
                            problems.append(f"the password file does not open the ClientKey's PKCS#12 ({exc})")
                        else:
                            if key is None:
                                problems.append("the ClientKey's PKCS#12 holds no private key")
                            if cert is not None:
                                expires = _not_after(cert)
                                evidence.append(
                                    ev(
                                        ctx,
                                        f"PKCS#12 opens: certificate {_subject(cert)}, valid until {expires:%Y-%m-%d}",
                                        where,
                                        tname,
                                    )
                                )
                                if expires < now:
                                    problems.append(f"the ClientKey certificate expired on {expires:%Y-%m-%d}")
                            else:
                                evidence.append(ev(ctx, "PKCS#12 opens (private key, no certificate)", where, tname))

    if kms.ca_file:
        raw, where = await _read(target, kms.ca_file)
        if raw is None:
            problems.append(f"cannot read the CA certificate ({where})")
            evidence.append(ev(ctx, where, "read the CA certificate", tname))
        else:
            try:
                certs = x509.load_pem_x509_certificates(raw)
            except ValueError as exc:
                certs = []
                problems.append(f"the CA file is not a PEM certificate ({exc})")
            for cert in certs[:1]:
                try:
                    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
                    is_ca = bool(bc.ca)
                except x509.ExtensionNotFound:
                    is_ca = False
                expires = _not_after(cert)
                evidence.append(ev(ctx, f"{_subject(cert)}, CA={is_ca}, valid until {expires:%Y-%m-%d}", where, tname))
                if not is_ca:
                    problems.append("the CA file's certificate is not a CA certificate (BasicConstraints CA=false)")
                if expires < now:
                    problems.append(f"the CA certificate expired on {expires:%Y-%m-%d}")
                found = {m.group(0) for m in KST_RE.finditer(_subject(cert) + " " + where.rsplit("/", 1)[-1])}
                if kms.instance_id and found and kms.instance_id not in found:
                    problems.append(
                        f"the CA certificate is for KMS instance {', '.join(sorted(found))}, the recipe says {kms.instance_id}"
                    )
                elif kms.instance_id and kms.instance_id in found:
                    evidence.append(ev(ctx, f"instance {kms.instance_id} matches the certificate", where, tname))

    kaap = set(ids.values())
    if len(kaap) > 1:
        warnings.append(
            "the ClientKey and password files name different application access points: "
            + ", ".join(f"{k} {v}" for k, v in ids.items())
        )
    fix = (
        "kms-client-key-invalid",
        "Download the ClientKey zip of the application access point again (clientKey_*.json + clientKey_*_Password.txt, "
        "from the same zip) and the instance CA (PrivateKmsCA_kst-….pem of the KMS instance kms.instance_id) (CAI-2.1); "
        "a bad file only shows up later as `failed to get resource from aliyun KMS` in the KBS log.",
    )
    if problems:
        return make(ctx, "fail", "; ".join(problems), evidence, fix)
    if warnings:
        return make(ctx, "warn", "; ".join(warnings), evidence, fix)
    checked = [
        n for n, v in (("ClientKey", kms.client_key_file), ("password", kms.password_file), ("CA", kms.ca_file)) if v
    ]
    return make(ctx, "pass", f"{', '.join(checked)} file(s) valid", evidence)
