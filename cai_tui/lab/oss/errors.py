"""OSS error answers: the code, HTTP status, message and EC that real OSS sends, raised as one exception type.

The EC values are the ones OSS documents (help.aliyun.com/.../<EC>) where known; the rest follow the same scheme.
"""

from __future__ import annotations


class OssError(Exception):
    """An answer of the form ``<Error><Code/><Message/><RequestId/><HostId/><EC/>…</Error>``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        ec: str = "",
        extra: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.ec = ec
        self.extra: dict[str, str] = dict(extra or {})
        self.headers: dict[str, str] = dict(headers or {})


# --- the errors the lab answers, one constructor each so the wording stays in one place ---------------------------


def access_denied(
    message: str = "You have no right to access this object because of bucket acl.", ec: str = "0003-00000001"
) -> OssError:
    return OssError(403, "AccessDenied", message, ec)


def policy_denied() -> OssError:
    return OssError(
        403, "AccessDenied", "You have no right to access this object because of bucket policy.", "0003-00000201"
    )


def no_such_bucket(bucket: str) -> OssError:
    return OssError(
        404, "NoSuchBucket", "The specified bucket does not exist.", "0015-00000101", {"BucketName": bucket}
    )


def no_such_key(key: str) -> OssError:
    return OssError(404, "NoSuchKey", "The specified key does not exist.", "0026-00000001", {"Key": key})


def no_such_upload(upload_id: str) -> OssError:
    return OssError(
        404,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, "
        "or the upload may have been aborted or completed.",
        "0042-00000002",
        {"UploadId": upload_id},
    )


def no_such_policy(bucket: str) -> OssError:
    return OssError(
        404, "NoSuchBucketPolicy", "The bucket policy does not exist.", "0031-00000001", {"BucketName": bucket}
    )


def invalid_access_key_id(access_key_id: str, ec: str = "0002-00000902") -> OssError:
    return OssError(
        403,
        "InvalidAccessKeyId",
        "The OSS Access Key Id you provided does not exist in our records.",
        ec,
        {"OSSAccessKeyId": access_key_id},
    )


def invalid_security_token(ec: str = "0002-00000006") -> OssError:
    return OssError(403, "InvalidSecurityToken", "The security token you provided is invalid.", ec)


def security_token_expired() -> OssError:
    return OssError(403, "SecurityTokenExpired", "The security token you provided has expired.", "0002-00000007")


def time_too_skewed(request_time: str, server_time: str) -> OssError:
    return OssError(
        403,
        "RequestTimeTooSkewed",
        "The difference between the request time and the current time is too large.",
        "0002-00000504",
        {"RequestTime": request_time, "ServerTime": server_time, "MaxAllowedSkewMilliseconds": "900000"},
    )


def signature_mismatch(
    access_key_id: str, string_to_sign: str, provided: str, canonical_request: str | None = None, message: str = ""
) -> OssError:
    extra = {
        "OSSAccessKeyId": access_key_id,
        "SignatureProvided": provided,
        "StringToSign": string_to_sign,
        "StringToSignBytes": " ".join(f"{b:02x}" for b in string_to_sign.encode("utf-8")),
    }
    if canonical_request is not None:
        extra["CanonicalRequest"] = canonical_request
    return OssError(
        403,
        "SignatureDoesNotMatch",
        message
        or "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        "0002-00000040",
        extra,
    )


def invalid_argument(message: str, name: str = "", value: str = "", ec: str = "0016-00000001") -> OssError:
    extra = {"ArgumentName": name, "ArgumentValue": value} if name else {}
    return OssError(400, "InvalidArgument", message, ec, extra)


def invalid_bucket_name(bucket: str) -> OssError:
    return OssError(
        400, "InvalidBucketName", "The specified bucket is not valid.", "0015-00000001", {"BucketName": bucket}
    )


def invalid_object_name(message: str = "The specified object is not valid.") -> OssError:
    return OssError(400, "InvalidObjectName", message, "0016-00000005")


def invalid_uri() -> OssError:
    return OssError(400, "InvalidURI", "Couldn't parse the specified URI.", "0016-00000002")


def malformed_xml() -> OssError:
    return OssError(
        400,
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema.",
        "0016-00000602",
    )


def invalid_digest() -> OssError:
    return OssError(400, "InvalidDigest", "The Content-MD5 you specified was invalid.", "0016-00000008")


def not_implemented(
    what: str = "A header or parameter you provided implies functionality that is not implemented.",
) -> OssError:
    return OssError(501, "NotImplemented", what, "0017-00000001")


def method_not_allowed(method: str) -> OssError:
    return OssError(
        405,
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
        "0017-00000002",
        {"Method": method},
    )


def missing_content_length() -> OssError:
    return OssError(411, "MissingContentLength", "You must provide the Content-Length HTTP header.", "0016-00000101")


def entity_too_large() -> OssError:
    return OssError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.", "0016-00000010")


def internal_error() -> OssError:
    return OssError(500, "InternalError", "We encountered an internal error. Please try again.", "0000-00000001")
