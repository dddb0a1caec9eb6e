"""The secret actions of KMS 2016-01-20: parameter checks, store calls, flat JSON answers.

Each handler takes the request's business parameters (query and form body merged, as strings) and returns
the response document without ``RequestId`` (the server adds it), or raises KmsError. Field names are
the ones ``alibabacloud_kms20160120.models.*ResponseBody.from_map`` reads.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cai_tui.lab.kms import errors
from cai_tui.lab.kms.secrets_store import CURRENT, PREVIOUS, Secret, SecretsStore, SecretVersion, iso

SECRET_NAME_RE = re.compile(r"[A-Za-z0-9_/+=.@-]{1,192}")
LAB_ACCOUNT_ID = "1000000000000000"
MAX_PAGE_SIZE = 100
MAX_TAGS = 20
MAX_FILTERS = 10
MAX_STAGES = 10
SECRET_DATA_LIMIT = 30720  # bytes, the documented maximum of SecretData


@dataclass
class ActionContext:
    store: SecretsStore
    region: str
    instance_id: str
    secrets_missing: bool  # the kms-secret-missing fault is on
    account_id: str = LAB_ACCOUNT_ID

    def arn(self, name: str) -> str:
        return f"acs:kms:{self.region}:{self.account_id}:secret/{name}"


class Params:
    """Typed access to the request's business parameters; errors name the parameter."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def required(self, name: str) -> str:
        value = self._values.get(name)
        if value is None or value == "":
            raise errors.missing_parameter(name)
        return value

    def optional(self, name: str, default: str | None = None) -> str | None:
        value = self._values.get(name)
        return default if value is None or value == "" else value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.optional(name)
        if value is None:
            return default
        low = value.lower()
        if low not in ("true", "false"):
            raise errors.invalid_parameter(name, "Valid values: true, false.")
        return low == "true"

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        value = self.optional(name)
        if value is None:
            return default
        if not re.fullmatch(r"[0-9]{1,9}", value) or not lo <= int(value) <= hi:
            raise errors.invalid_parameter(name, f"It must be an integer from {lo} to {hi}.")
        return int(value)

    def json_list(self, name: str) -> list[Any] | None:
        value = self.optional(name)
        if value is None:
            return None
        try:
            doc = json.loads(value)
        except (ValueError, RecursionError):
            raise errors.invalid_parameter(name, "It is not valid JSON.") from None
        if not isinstance(doc, list):
            raise errors.invalid_parameter(name, "It must be a JSON array.")
        return doc


# --- shared checks -------------------------------------------------------------------------------


def _secret_name_for_create(params: Params) -> str:
    name = params.required("SecretName")
    if not SECRET_NAME_RE.fullmatch(name):
        raise errors.invalid_parameter("SecretName", "Use 1 to 192 letters, digits and the characters _ / + = . @ -.")
    if name.startswith("acs/"):
        raise errors.invalid_parameter("SecretName", "A Generic secret name cannot start with acs/.")
    return name


def _lookup(ctx: ActionContext, params: Params) -> Secret:
    """The secret named by SecretName (a name or its ARN), pending deletion or not."""
    name = params.required("SecretName")
    if ctx.secrets_missing:
        raise errors.resource_not_found()
    prefix = f"acs:kms:{ctx.region}:{ctx.account_id}:secret/"
    if name.startswith("acs:kms:"):
        if not name.startswith(prefix):
            raise errors.resource_not_found()
        name = name[len(prefix) :]
    return ctx.store.get(name)


def _secret_data(params: Params) -> tuple[str, str]:
    data = params.required("SecretData")
    data_type = params.optional("SecretDataType", "text")
    if data_type not in ("text", "binary"):
        raise errors.invalid_parameter("SecretDataType", "Valid values: text, binary.")
    if len(data.encode("utf-8")) > SECRET_DATA_LIMIT:
        raise errors.invalid_parameter("SecretData", f"It can be up to {SECRET_DATA_LIMIT} bytes long.")
    if data_type == "binary":
        try:
            binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError):
            raise errors.invalid_parameter("SecretData", "A binary secret value must be Base64-encoded.") from None
    return data, data_type


def _version_id(params: Params) -> str:
    version_id = params.required("VersionId")
    if len(version_id) > 64 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in version_id):
        raise errors.invalid_parameter("VersionId", "It can be up to 64 printable characters long.")
    return version_id


def _tags(params: Params) -> list[list[str]]:
    doc = params.json_list("Tags")
    if doc is None:
        return []
    if len(doc) > MAX_TAGS:
        raise errors.invalid_parameter("Tags", f"A secret can have up to {MAX_TAGS} tags.")
    tags: list[list[str]] = []
    for item in doc:
        if not isinstance(item, dict):
            raise errors.invalid_parameter("Tags", 'Each tag is {"TagKey": "...", "TagValue": "..."}.')
        key, value = item.get("TagKey"), item.get("TagValue")
        if not isinstance(key, str) or not isinstance(value, str) or not 0 < len(key) <= 128 or len(value) > 128:
            raise errors.invalid_parameter("Tags", 'Each tag is {"TagKey": "...", "TagValue": "..."} of 1-128 chars.')
        if key.startswith(("aliyun", "acs:")):
            raise errors.invalid_parameter("Tags", "A tag key cannot start with aliyun or acs:.")
        tags.append([key, value])
    return tags


def _tags_doc(secret: Secret) -> dict[str, Any]:
    return {"Tag": [{"TagKey": k, "TagValue": v} for k, v in secret.tags]}


def _stages_doc(version: SecretVersion) -> dict[str, Any]:
    return {"VersionStage": list(version.stages)}


# --- actions -------------------------------------------------------------------------------------


def create_secret(ctx: ActionContext, params: Params) -> dict[str, Any]:
    name = _secret_name_for_create(params)
    data, data_type = _secret_data(params)
    version_id = _version_id(params)
    secret_type = params.optional("SecretType", "Generic")
    if secret_type != "Generic":
        raise errors.invalid_parameter("SecretType", "The cai-tui lab KMS keeps Generic secrets only.")
    instance = params.optional("DKMSInstanceId")
    if instance is not None and instance != ctx.instance_id:
        raise errors.resource_not_found()
    description = params.optional("Description", "") or ""
    if len(description) > 8192:
        raise errors.invalid_parameter("Description", "It can be up to 8192 characters long.")
    secret = ctx.store.create(
        name=name,
        data=data,
        data_type=data_type,
        version_id=version_id,
        description=description,
        encryption_key_id=params.optional("EncryptionKeyId", "") or "",
        dkms_instance_id=ctx.instance_id,
        tags=_tags(params),
    )
    return {
        "Arn": ctx.arn(secret.name),
        "SecretName": secret.name,
        "VersionId": version_id,
        "SecretType": secret.secret_type,
        "DKMSInstanceId": secret.dkms_instance_id,
    }


def get_secret_value(ctx: ActionContext, params: Params) -> dict[str, Any]:
    dry_run = params.boolean("DryRun")
    secret = _lookup(ctx, params)
    if secret.planned_delete is not None:
        raise errors.in_delete_window()
    version_id = params.optional("VersionId")
    stage = params.optional("VersionStage")
    if version_id is not None:
        version = secret.by_id(version_id)
        if version is None or (stage is not None and stage not in version.stages):
            raise errors.resource_not_found()
    else:
        version = secret.by_stage(stage or CURRENT)
        if version is None:
            raise errors.resource_not_found()
    if dry_run:
        raise errors.dry_run_passed()
    return {
        "SecretName": secret.name,
        "SecretType": secret.secret_type,
        "VersionId": version.version_id,
        "CreateTime": iso(version.created),
        "SecretData": version.data,
        "SecretDataType": version.data_type,
        "VersionStages": _stages_doc(version),
    }


def describe_secret(ctx: ActionContext, params: Params) -> dict[str, Any]:
    fetch_tags = params.boolean("FetchTags")
    secret = _lookup(ctx, params)
    doc: dict[str, Any] = {
        "SecretName": secret.name,
        "Arn": ctx.arn(secret.name),
        "Description": secret.description,
        "SecretType": secret.secret_type,
        "CreateTime": iso(secret.created),
        "UpdateTime": iso(secret.updated),
        "DKMSInstanceId": secret.dkms_instance_id,
    }
    if secret.encryption_key_id:
        doc["EncryptionKeyId"] = secret.encryption_key_id
    if secret.planned_delete is not None:
        doc["PlannedDeleteTime"] = iso(secret.planned_delete)
    if fetch_tags:
        doc["Tags"] = _tags_doc(secret)
    return doc


_FILTER_KEYS: dict[str, Callable[[Secret], list[str]]] = {
    "SecretName": lambda s: [s.name],
    "Description": lambda s: [s.description],
    "SecretType": lambda s: [s.secret_type],
    "DKMSInstanceId": lambda s: [s.dkms_instance_id],
    "TagKey": lambda s: [k for k, _ in s.tags],
    "TagValue": lambda s: [v for _, v in s.tags],
}


def _filters(params: Params) -> list[tuple[Callable[[Secret], list[str]], set[str]]]:
    doc = params.json_list("Filters")
    if doc is None:
        return []
    if len(doc) > MAX_FILTERS:
        raise errors.invalid_parameter("Filters", f"Up to {MAX_FILTERS} filters.")
    out = []
    for item in doc:
        if not isinstance(item, dict) or item.get("Key") not in _FILTER_KEYS:
            raise errors.invalid_parameter(
                "Filters", f'Each filter is {{"Key": one of {sorted(_FILTER_KEYS)}, "Values": [...]}}.'
            )
        values = item.get("Values")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise errors.invalid_parameter("Filters", "Values must be a non-empty array of strings.")
        out.append((_FILTER_KEYS[item["Key"]], set(values)))
    return out


def list_secrets(ctx: ActionContext, params: Params) -> dict[str, Any]:
    page = params.integer("PageNumber", 1, 1, 10**8)
    size = params.integer("PageSize", 10, 1, MAX_PAGE_SIZE)
    fetch_tags = params.boolean("FetchTags")
    filters = _filters(params)
    secrets = [] if ctx.secrets_missing else ctx.store.all()
    matching = [s for s in secrets if all(values & set(get(s)) for get, values in filters)]
    items = []
    for s in matching[(page - 1) * size : page * size]:
        item: dict[str, Any] = {
            "SecretName": s.name,
            "SecretType": s.secret_type,
            "CreateTime": iso(s.created),
            "UpdateTime": iso(s.updated),
        }
        if s.planned_delete is not None:
            item["PlannedDeleteTime"] = iso(s.planned_delete)
        if fetch_tags:
            item["Tags"] = _tags_doc(s)
        items.append(item)
    return {"PageNumber": page, "PageSize": size, "TotalCount": len(matching), "SecretList": {"Secret": items}}


def put_secret_value(ctx: ActionContext, params: Params) -> dict[str, Any]:
    params.required("SecretName")
    data, data_type = _secret_data(params)
    version_id = _version_id(params)
    stages_doc = params.json_list("VersionStages")
    if stages_doc is None:
        stages = [CURRENT]
    else:
        if not stages_doc or len(stages_doc) > MAX_STAGES:
            raise errors.invalid_parameter("VersionStages", f"Give 1 to {MAX_STAGES} stage labels.")
        if not all(isinstance(s, str) and 0 < len(s) <= 64 for s in stages_doc):
            raise errors.invalid_parameter("VersionStages", "Each stage label is a string of 1-64 characters.")
        if PREVIOUS in stages_doc:
            raise errors.invalid_parameter("VersionStages", "ACSPrevious is managed by KMS.")
        stages = [str(s) for s in stages_doc]
    secret = _lookup(ctx, params)
    version = ctx.store.put_value(secret.name, data=data, data_type=data_type, version_id=version_id, stages=stages)
    return {"SecretName": secret.name, "VersionId": version.version_id, "VersionStages": _stages_doc(version)}


def delete_secret(ctx: ActionContext, params: Params) -> dict[str, Any]:
    params.required("SecretName")
    force = params.boolean("ForceDeleteWithoutRecovery")
    days = params.integer("RecoveryWindowInDays", 30, 7, 30)
    secret = _lookup(ctx, params)
    if force:
        ctx.store.force_delete(secret.name)
        return {"SecretName": secret.name}
    planned = ctx.store.schedule_delete(secret.name, days)
    return {"SecretName": secret.name, "PlannedDeleteTime": iso(planned)}


def restore_secret(ctx: ActionContext, params: Params) -> dict[str, Any]:
    secret = _lookup(ctx, params)
    ctx.store.restore(secret.name)
    return {"SecretName": secret.name}


def list_secret_version_ids(ctx: ActionContext, params: Params) -> dict[str, Any]:
    params.required("SecretName")
    page = params.integer("PageNumber", 1, 1, 10**8)
    size = params.integer("PageSize", 10, 1, MAX_PAGE_SIZE)
    include_deprecated = params.boolean("IncludeDeprecated")
    secret = _lookup(ctx, params)
    versions = [v for v in secret.versions if include_deprecated or v.stages]
    items = [
        {"VersionId": v.version_id, "CreateTime": iso(v.created), "VersionStages": _stages_doc(v)}
        for v in versions[(page - 1) * size : page * size]
    ]
    return {
        "SecretName": secret.name,
        "PageNumber": page,
        "PageSize": size,
        "TotalCount": len(versions),
        "VersionIds": {"VersionId": items},
    }


HANDLERS: dict[str, Callable[[ActionContext, Params], dict[str, Any]]] = {
    "CreateSecret": create_secret,
    "GetSecretValue": get_secret_value,
    "DescribeSecret": describe_secret,
    "ListSecrets": list_secrets,
    "PutSecretValue": put_secret_value,
    "DeleteSecret": delete_secret,
    "RestoreSecret": restore_secret,
    "ListSecretVersionIds": list_secret_version_ids,
}
