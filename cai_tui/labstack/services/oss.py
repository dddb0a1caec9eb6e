"""oss stand-in: fetch the ciphertext model from OSS into /run/cai/cipher, as CDH's Aliyun OSS mount (ossfs) would.

Like ossfs 1.x it first checks the bucket (``s3fs_check_service``: ``GET /<bucket>?max-keys=2&prefix=<path>``); an
error there makes ossfs print its check message (``ossfs: Failed to check bucket and directory for mount point :
Invalid Credentials(host=…, message=<the server's Message>)``) and exit; run in the foreground with
``dbglevel=err`` it also logs curl.cpp's ``HTTP response code 403, returning EPERM. Body Text: <the body>``. CDH then
logs ``OSS mount failed with stderr: …`` and the one-shot panics on ``SecureMount(AliyunOssError(OssfsMountFailed))``
(exit 101). A 404 that is not NoSuchBucket passes the check (a missing prefix mounts empty), as in ossfs.

Then every object under the prefix is downloaded (relative paths kept) and ``cipher.ready`` is written. Requests go
through oss2 (V1 signatures as ossfs 1.x; ``x-oss-security-token`` when MODEL_OSS_SESSION_TOKEN is set) with no
proxies from the environment.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path, PurePosixPath
from typing import Any

from . import _env
from ._lifecycle import stay_up
from ._log import RUST_PANIC_EXIT, add_secret, emit, ossfs_line, rust_panic, tracing_line

SERVICE = "oss"
PANIC_AT = "confidential-data-hub/hub/src/bin/cdh-oneshot.rs:186:18"
ALIYUN_TARGET = "confidential_data_hub::storage::volume_type::aliyun"
CURL_ERR_LINE = {400: 2416, 403: 2422}
CURLE_LINE = {"CURLE_OPERATION_TIMEDOUT": 2465, "CURLE_COULDNT_RESOLVE_HOST": 2470, "CURLE_COULDNT_CONNECT": 2475}


class OssfsFailed(Exception):
    """ossfs exited; ``stderr`` is what it printed on stderr."""

    def __init__(self, stderr: str) -> None:
        super().__init__(stderr)
        self.stderr = stderr


def parse_bucket_path(value: str) -> tuple[str, str]:
    """``bucket:/path/`` → (bucket, ``path/``); ``bucket`` alone → the whole bucket."""
    bucket, sep, path = value.partition(":")
    prefix = path.strip("/") if sep else ""
    return bucket.strip(), (prefix + "/") if prefix else ""


def _body_text(exc: Any) -> str:
    body = getattr(exc, "body", b"") or b""
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)


def _curl_code(exc: Any) -> str:
    from ._rust_http import _is_dns

    inner = getattr(exc, "exception", None) or exc
    text = str(inner).lower()
    if "timed out" in text or "timeout" in text:
        return "CURLE_OPERATION_TIMEDOUT"
    if _is_dns(inner) or "name or service not known" in text or "failed to resolve" in text:
        return "CURLE_COULDNT_RESOLVE_HOST"
    return "CURLE_COULDNT_CONNECT"


def check_service(bucket: Any, prefix: str, host: str) -> None:
    """ossfs's ``s3fs_check_service``; raises :class:`OssfsFailed` with ossfs's stderr."""
    import oss2

    try:
        bucket.list_objects(prefix=prefix, max_keys=2)
        return
    except oss2.exceptions.RequestError as exc:
        code = _curl_code(exc)
        emit(ossfs_line("ERR", "curl.cpp", "RequestPerform", CURLE_LINE[code], f"### {code}"), sys.stdout)
        emit(ossfs_line("ERR", "curl.cpp", "RequestPerform", 2592, "### giving up"), sys.stdout)
        raise OssfsFailed(
            f"ossfs: Failed to check bucket and directory for mount point : Unable to connect(host={host}, message=)"
        ) from exc
    except oss2.exceptions.OssError as exc:
        status = int(exc.status)
        body = _body_text(exc)
        message = str(getattr(exc, "message", "") or "")
        if status in CURL_ERR_LINE:
            what = "EPERM" if status == 403 else "EIO"
            emit(
                ossfs_line(
                    "ERR", "curl.cpp", "RequestPerform", CURL_ERR_LINE[status],
                    f"HTTP response code {status}, returning {what}. Body Text: {body}",
                ),
                sys.stdout,
            )  # fmt: skip
        if status == 400:
            line = f"Failed to check bucket and directory for mount point : Bad Request(host={host}, message={message})"
        elif status == 403:
            line = (
                f"Failed to check bucket and directory for mount point : Invalid Credentials(host={host}, "
                f"message={message})"
            )
        elif status == 404:
            if getattr(exc, "code", "") != "NoSuchBucket":
                return  # a missing prefix is not a failure for ossfs
            line = f"Failed to check bucket : Bucket not found(host={host}, message={message})"
        else:
            line = f"Failed to check bucket and directory for mount point : Unable to connect(host={host}, message={message})"
        raise OssfsFailed(f"ossfs: {line}") from exc


def download(bucket: Any, prefix: str, dest: Path, host: str) -> int:
    """Every object under ``prefix`` into ``dest`` (relative paths kept); returns the object count."""
    import oss2
    import requests

    count = 0
    try:
        for obj in oss2.ObjectIterator(bucket, prefix=prefix):
            rel = obj.key[len(prefix) :]
            if not rel or rel.endswith("/"):
                continue
            parts = PurePosixPath(rel).parts
            if any(p in ("..", ".") for p in parts) or rel.startswith("/"):
                emit(
                    ossfs_line("WAN", "s3fs.cpp", "s3fs_readdir", 0, f"skipping unsafe object name {obj.key!r}"),
                    sys.stdout,
                )
                continue
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.part")
            bucket.get_object_to_file(obj.key, str(tmp))
            os.replace(tmp, target)
            count += 1
    except oss2.exceptions.OssError as exc:
        status = int(exc.status)
        if status < 0:
            code = _curl_code(exc)
            emit(ossfs_line("ERR", "curl.cpp", "RequestPerform", CURLE_LINE[code], f"### {code}"), sys.stdout)
            raise OssfsFailed(f"ossfs: reading from host={host} failed: {code}") from exc
        what = "EPERM" if status == 403 else "EIO"
        emit(
            ossfs_line(
                "ERR", "curl.cpp", "RequestPerform", CURL_ERR_LINE.get(status, 2416),
                f"HTTP response code {status}, returning {what}. Body Text: {_body_text(exc)}",
            ),
            sys.stdout,
        )  # fmt: skip
        raise OssfsFailed(f"ossfs: reading from host={host} failed: HTTP response code {status} ({exc.code})") from exc
    except (requests.exceptions.RequestException, OSError) as exc:
        emit(ossfs_line("ERR", "curl.cpp", "RequestPerform", 2504, "### CURLE_RECV_ERROR"), sys.stdout)
        raise OssfsFailed(f"ossfs: reading from host={host} failed: {exc}") from exc
    return count


def main(argv: list[str]) -> int:
    try:
        bucket_path = _env.require("MODEL_OSS_BUCKET_PATH", SERVICE)
        endpoint = _env.require("MODEL_OSS_ENDPOINT", SERVICE)
        ak_id = _env.require("MODEL_OSS_ACCESS_KEY_ID", SERVICE)
        ak_secret = _env.require("MODEL_OSS_SECRET_ACCESS_KEY", SERVICE)
    except _env.EnvProblem as exc:
        return _env.report(exc)
    token = _env.optional("MODEL_OSS_SESSION_TOKEN")
    for secret in (ak_secret, token):
        add_secret(secret)
    bucket_name, prefix = parse_bucket_path(bucket_path)

    import oss2

    timeout = _env.env_float("CAI_LAB_HTTP_TIMEOUT", 3.0)
    session = oss2.Session()
    session.session.trust_env = False  # the lab is on loopback; never through a proxy from the environment
    auth: Any = oss2.StsAuth(ak_id, ak_secret, token) if token else oss2.Auth(ak_id, ak_secret)
    emit(tracing_line("INFO", "confidential_data_hub::hub", "secure mount called: volume_type alibaba-cloud-oss"))
    try:
        bucket = oss2.Bucket(auth, endpoint, bucket_name, session=session, connect_timeout=timeout)
    except oss2.exceptions.ClientError as exc:
        return _fail(f"ossfs: {bucket_path}: {exc.body if hasattr(exc, 'body') else exc}")
    dest = _env.cipher_dir()
    ready = _env.cipher_ready()
    t0 = time.monotonic()
    try:
        check_service(bucket, prefix, endpoint)
        ready.unlink(missing_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        count = download(bucket, prefix, dest, endpoint)
    except OssfsFailed as exc:
        return _fail(exc.stderr)
    except OSError as exc:
        return _fail(f"ossfs: {dest}: {exc.strerror}")
    _env.write_atomic(ready, f"{count}\n".encode(), 0o644)
    emit(
        tracing_line(
            "INFO", "cdh_oneshot",
            f"mount path: {dest} ({count} object(s) from {bucket_name}:/{prefix} in {time.monotonic() - t0:.1f} s)",
        )
    )  # fmt: skip
    return stay_up()


def _fail(stderr: str) -> int:
    emit(stderr)  # ossfs's own stderr, inherited by the container
    emit(tracing_line("ERROR", ALIYUN_TARGET, f"OSS mount failed with stderr: {stderr}"))
    emit(rust_panic(PANIC_AT, "failed to secure mount: SecureMount(AliyunOssError(OssfsMountFailed))"))
    return RUST_PANIC_EXIT
