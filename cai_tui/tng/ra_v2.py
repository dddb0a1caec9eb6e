"""TNG 2.x ``attest`` and ``verify`` (tng/src/config/ra.rs): internally tagged enums read after defaults are filled in.

TNG fills in ``model: background_check``, ``aa_provider``/``as_provider: coco``, then ``aa_type: uds`` and
``as_type: restful`` for coco, and picks the variant by those tags. The variants are flattened, so serde ignores keys
it does not know here (``as_is_grpc`` is ignored, not refused). Checks that need this machine (the AA socket, a
certificate file existing) are TNG's start-up business, not the schema's; they are left out.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

from .rules import rule

MODELS = ("passport", "background_check")
AA_PROVIDERS = ("coco", "ita", "coco_asr", "ita_asr")
AS_PROVIDERS = ("coco", "ita")
AS_TYPES = ("restful", "grpc", "builtin")


def _defaults(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    out.setdefault("model", "background_check")
    out.setdefault("aa_provider", "coco")
    out.setdefault("as_provider", "coco")
    if out.get("aa_provider") == "coco":
        out.setdefault("aa_type", "uds")
    if out.get("as_provider") == "coco":
        out.setdefault("as_type", "restful")
    return out


def _variant(obj: dict[str, Any], tag: str, allowed: tuple[str, ...]) -> str:
    value = obj[tag]
    if not isinstance(value, str) or value not in allowed:
        raise rule(
            f"unknown variant `{value}`, expected one of {', '.join(f'`{a}`' for a in allowed)}",
            f"set `{tag}` to one of {', '.join(allowed)}",
            tag,
        )
    return value


def _str(obj: dict[str, Any], key: str, *, required: bool) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            raise rule(f"missing field `{key}`", f"add `{key}`", key)
        return None
    if not isinstance(obj[key], str):
        raise rule(f"invalid type for `{key}`: expected a string", f"write `{key}` as a JSON string", key)
    return str(obj[key])


def _str_list(obj: dict[str, Any], key: str, *, required: bool) -> list[str] | None:
    if key not in obj:
        if required:
            raise rule(f"missing field `{key}`", f'add `{key}`, e.g. "{key}": ["default"]', key)
        return None
    value = obj[key]
    if value is None and not required:
        return None
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise rule(f"invalid type for `{key}`: expected a sequence of strings", f"write `{key}` as a list", key)
    return list(value)


def _str_map(obj: dict[str, Any], key: str) -> dict[str, str]:
    value = obj.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(x, str) for x in value.values()):
        raise rule(f"invalid type for `{key}`: expected a map of strings", f'write `{key}` as {{"name": "value"}}', key)
    return dict(value)


def _url(text: str, key: str, what: str) -> None:
    u = urlparse(text)
    if not u.scheme or not (u.netloc or u.path) or " " in text:
        raise rule(f"Invalid {what}: {text}", f"write `{key}` as a URL such as http://127.0.0.1:8080/", key)


def _u64(obj: dict[str, Any], key: str) -> None:
    value = obj.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise rule(f"invalid type for `{key}`: expected u64", f"write `{key}` as a whole number of seconds", key)


def _coco_converter(obj: dict[str, Any]) -> dict[str, Any]:
    as_type = _variant(obj, "as_type", AS_TYPES)
    if as_type == "builtin":
        return {"as_type": as_type}
    as_addr = _str(obj, "as_addr", required=True)
    _str_list(obj, "policy_ids", required=False)
    _str_map(obj, "as_headers")
    return {"as_type": as_type, "as_addr": as_addr}


def _converter(obj: dict[str, Any]) -> dict[str, Any]:
    provider = _variant(obj, "as_provider", AS_PROVIDERS)
    if provider == "coco":
        return {"provider": provider, **_coco_converter(obj)}
    as_addr = _str(obj, "as_addr", required=False) or "https://api.trustauthority.intel.com"
    _str(obj, "api_key", required=False)
    _str_list(obj, "policy_ids", required=False)
    return {"provider": provider, "as_addr": as_addr}


def _verifier(obj: dict[str, Any]) -> dict[str, Any]:
    provider = _variant(obj, "as_provider", AS_PROVIDERS)
    if provider == "ita":
        _str(obj, "ita_jwks_addr", required=False)
        _str_list(obj, "policy_ids", required=False)
        return {"provider": provider}
    as_type = _variant(obj, "as_type", AS_TYPES)
    if as_type == "builtin":
        return {"provider": provider, "as_type": as_type}
    out = {
        "provider": provider,
        "as_type": as_type,
        "as_addr": _str(obj, "as_addr", required=False),
        "policy_ids": _str_list(obj, "policy_ids", required=True),
        "as_headers": _str_map(obj, "as_headers"),
        "trusted_certs_paths": _str_list(obj, "trusted_certs_paths", required=False),
        "skip": obj.get("skip_as_token_cert_verify", False),
    }
    for flag in ("verify_signer_transparency", "skip_as_token_cert_verify"):
        if not isinstance(obj.get(flag, False), bool):
            raise rule(f"invalid type for `{flag}`: expected a boolean", f"write `{flag}` as true or false", flag)
    return out


def _ita_api_key(obj: dict[str, Any]) -> None:
    key = obj.get("api_key") or os.environ.get("ITA_API_KEY")  # TNG reads the variable where it runs
    if not key:
        raise rule(
            "ITA api_key is required: set it in config or via $ITA_API_KEY env var",
            "add `api_key` (or set ITA_API_KEY where tng runs)",
            "api_key",
        )


def check_attest(raw: Any) -> None:
    """Raise a rule error when TNG 2.x would refuse this ``attest`` object."""
    if not isinstance(raw, dict):
        raise rule(
            "invalid type: expected an object", 'write `attest` as {"aa_addr": "unix:///run/…/attestation-agent.sock"}'
        )
    obj = _defaults(raw)
    model = _variant(obj, "model", MODELS)
    provider = _variant(obj, "aa_provider", AA_PROVIDERS)
    if provider == "coco":
        if _variant(obj, "aa_type", ("uds", "builtin")) == "uds":
            aa = _str(obj, "aa_addr", required=True) or ""
            if not aa.startswith("unix:///"):
                raise rule(
                    "AA address must start with unix:///", "write `aa_addr` as unix:///path/to/aa.sock", "aa_addr"
                )
    elif provider == "ita":
        aa = _str(obj, "aa_addr", required=True) or ""
        if not aa.startswith("unix:///"):
            raise rule("AA address must start with unix:///", "write `aa_addr` as unix:///path/to/aa.sock", "aa_addr")
    else:
        _url(_str(obj, "asr_addr", required=True) or "", "asr_addr", "ASR address")
    _u64(obj, "refresh_interval")
    if model == "passport":
        conv = _converter(obj)
        if conv["provider"] == "ita":
            _url(conv["as_addr"], "as_addr", "ITA API address")
            _ita_api_key(obj)


def check_verify(raw: Any, *, remote_grpc_refused: bool = True) -> None:
    """Raise a rule error when TNG 2.x would refuse this ``verify`` object (``remote_grpc_refused``: from 2.6.0 the
    token verifier fetches the AS certificates over REST only and refuses a gRPC ``as_addr``)."""
    if not isinstance(raw, dict):
        raise rule("invalid type: expected an object", 'write `verify` as {"as_addr": "…", "policy_ids": ["default"]}')
    obj = _defaults(raw)
    model = _variant(obj, "model", MODELS)
    conv = _converter(obj) if model == "background_check" else None
    ver = _verifier(obj)
    if ver["provider"] == "coco" and ver.get("as_type") != "builtin":
        if remote_grpc_refused and ver["as_type"] == "grpc" and ver["as_addr"] is not None:
            raise rule(
                "Remote AS gRPC is not supported",
                'use "as_type": "restful" (TNG fetches the AS token certificates over REST), or give '
                "`trusted_certs_paths` in passport mode instead of a gRPC `as_addr`",
                "as_type",
            )
        if ver["as_addr"] is None and ver["as_headers"]:
            raise rule(
                "'as_headers' cannot be set without 'as_addr'", "add `as_addr` or remove `as_headers`", "as_headers"
            )
        if ver["skip"]:
            if ver["trusted_certs_paths"] is not None:
                raise rule(
                    "'trusted_certs_paths' cannot be set when 'skip_as_token_cert_verify' is true",
                    "remove one of `trusted_certs_paths` and `skip_as_token_cert_verify`",
                    "trusted_certs_paths",
                )
            if model == "passport" and ver["as_addr"] is not None:
                raise rule(
                    "'as_addr' cannot be set in Passport mode when 'skip_as_token_cert_verify' is true",
                    "remove `as_addr` or `skip_as_token_cert_verify`",
                    "as_addr",
                )
        elif model == "passport" and ver["as_addr"] is None and ver["trusted_certs_paths"] is None:
            raise rule(
                "At least one of 'as_addr' or 'trusted_certs_paths' must be set to verify attestation token",
                "add `as_addr` (the AS that signed the token) or `trusted_certs_paths`",
            )
    if conv is not None:
        if conv["provider"] == "coco" and conv.get("as_type") != "builtin":
            _url(conv["as_addr"], "as_addr", "attestation service address")
        elif conv["provider"] == "ita":
            _url(conv["as_addr"], "as_addr", "ITA API address")
            _ita_api_key(obj)
