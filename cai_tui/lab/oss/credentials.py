"""Access keys and STS tokens the loopback OSS accepts.

An access key belongs to a principal of one of two kinds:

* ``owner`` — an Alibaba Cloud account (the bucket owner when its uid owns the bucket): everything is allowed on
  its own buckets unless a bucket policy Deny statement matches;
* ``user`` — a RAM user with no grants of its own: allowed only where a bucket policy Allow statement matches.

STS credentials (temporary AccessKeyId + secret + SecurityToken) are registered with
:meth:`OssCredentials.add_sts_token`; they act as an ``owner`` principal of uid ``1234567890`` unless told otherwise.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

Kind = Literal["owner", "user"]
DEFAULT_UID = "1234567890"


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret: str
    kind: Kind
    uid: str


@dataclass(frozen=True)
class StsCredential:
    token: str
    access_key_id: str
    secret: str
    expires_at: float
    kind: Kind
    uid: str


def _check_kind(kind: str) -> None:
    if kind not in ("owner", "user"):
        raise ValueError(f"access key kind must be 'owner' or 'user', not {kind!r}")


class OssCredentials:
    """The keys and tokens in force; safe to change while the server answers requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, AccessKey] = {}
        self._tokens: dict[str, StsCredential] = {}

    def add_key(self, access_key_id: str, secret: str, kind: Kind = "owner", uid: str = DEFAULT_UID) -> None:
        _check_kind(kind)
        if not access_key_id or not secret:
            raise ValueError("access key id and secret must not be empty")
        with self._lock:
            self._keys[access_key_id] = AccessKey(access_key_id, secret, kind, uid)

    def remove_key(self, access_key_id: str) -> None:
        with self._lock:
            self._keys.pop(access_key_id, None)

    def add_sts_token(
        self,
        token: str,
        access_key_id: str,
        secret: str,
        expires_at: float,
        *,
        kind: Kind = "owner",
        uid: str = DEFAULT_UID,
    ) -> None:
        _check_kind(kind)
        if not token or not access_key_id or not secret:
            raise ValueError("token, access key id and secret must not be empty")
        with self._lock:
            self._tokens[token] = StsCredential(token, access_key_id, secret, float(expires_at), kind, uid)

    def remove_sts_token(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def key(self, access_key_id: str) -> AccessKey | None:
        with self._lock:
            return self._keys.get(access_key_id)

    def sts_token(self, token: str) -> StsCredential | None:
        with self._lock:
            return self._tokens.get(token)

    def is_sts_access_key(self, access_key_id: str) -> bool:
        with self._lock:
            return any(t.access_key_id == access_key_id for t in self._tokens.values())
