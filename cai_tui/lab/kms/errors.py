"""KMS error codes as the cloud answers them, and the JSON error body.

The body is ``{"RequestId", "HostId", "Code", "Message", "Recommend"}``. The SDK turns a 4xx into
``ClientException`` and a 5xx into ``ServerException`` with ``.code`` and ``.status_code`` taken from
this body and the status line, so the pair (code, status) below is what callers of the SDK observe.

Codes and statuses follow the KMS 2016-01-20 API reference (the per-action error tables and the
"common errors" page) where it documents them; where the reference is silent the code follows the
POP gateway's convention (``Missing<Param>``, ``InvalidTimeStamp.Format``, ...).
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote


class KmsError(Exception):
    """An error answer: HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


def error_body(err: KmsError, request_id: str, host_id: str) -> bytes:
    recommend = f"https://api.aliyun.com/troubleshoot?q={quote(err.code, safe='.')}&product=Kms&requestId={request_id}"
    doc = {
        "RequestId": request_id,
        "HostId": host_id,
        "Code": err.code,
        "Message": err.message,
        "Recommend": recommend,
    }
    return json.dumps(doc).encode("utf-8")


# --- request shape -------------------------------------------------------------------------------


def missing_parameter(name: str) -> KmsError:
    return KmsError(400, f"Missing{name}", f"{name} is mandatory for this action.")


def invalid_parameter(name: str, why: str = "") -> KmsError:
    msg = f'The specified parameter "{name}" is not valid.'
    if why:
        msg = f"{msg} {why}"
    return KmsError(400, "InvalidParameter", msg)


def invalid_action(action: str, implemented: list[str]) -> KmsError:
    return KmsError(
        404,
        "InvalidAction.NotFound",
        f"Specified api is not found, please check your url and method. (action {action!r}; the cai-tui lab "
        f"KMS implements {', '.join(implemented)})",
    )


def api_not_found(path: str) -> KmsError:
    return KmsError(
        404, "InvalidAction.NotFound", f"Specified api is not found, please check your url and method. (path {path!r})"
    )


def invalid_version(version: str) -> KmsError:
    return KmsError(
        400, "InvalidVersion", f"Specified parameter Version is not valid. (got {version!r}, want 2016-01-20)"
    )


def unsupported_method(method: str) -> KmsError:
    return KmsError(403, "UnsupportedHTTPMethod", f"This http method is not supported. ({method})")


def malformed_request(why: str) -> KmsError:
    return KmsError(400, "MalformedRequest", f"The request could not be parsed: {why}")


def body_too_large(limit: int) -> KmsError:
    return KmsError(413, "RequestEntityTooLarge", f"The request body is larger than {limit} bytes.")


# --- authentication ------------------------------------------------------------------------------


def access_key_not_found() -> KmsError:
    return KmsError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")


def signature_mismatch(string_to_sign: str) -> KmsError:
    return KmsError(
        400,
        "SignatureDoesNotMatch",
        f"Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}",
    )


def incomplete_signature(why: str) -> KmsError:
    return KmsError(400, "IncompleteSignature", f"The request signature does not conform to Aliyun standards. {why}")


def timestamp_expired() -> KmsError:
    return KmsError(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")


def timestamp_format(value: str) -> KmsError:
    return KmsError(
        400, "InvalidTimeStamp.Format", f"Specified time stamp or date value is not well formatted. ({value!r})"
    )


def nonce_used() -> KmsError:
    return KmsError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")


def token_malformed() -> KmsError:
    return KmsError(400, "InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed.")


def token_expired() -> KmsError:
    return KmsError(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")


def token_mismatch() -> KmsError:
    return KmsError(
        400, "InvalidSecurityToken.MismatchWithAccessKey", "Specified SecurityToken mismatch with the AccessKey."
    )


def forbidden_ram(action: str) -> KmsError:
    return KmsError(
        403,
        "Forbidden.RAM",
        f"User not authorized to operate on the specified resource, or this API doesn't support RAM. (kms:{action})",
    )


# --- resources -----------------------------------------------------------------------------------


def resource_not_found() -> KmsError:
    return KmsError(404, "Forbidden.ResourceNotFound", "Resource not found.")


def resource_exists() -> KmsError:
    return KmsError(409, "Rejected.ResourceExist", "The resource already exists.")


def in_delete_window() -> KmsError:
    return KmsError(409, "Rejected.ResourceInDeleteWindow", "The secret is planned to be deleted.")


def dry_run_passed() -> KmsError:
    return KmsError(400, "DryRunOperationError", "The request passes the dry run.")


def internal_failure() -> KmsError:
    return KmsError(500, "InternalFailure", "Internal Failure.")
