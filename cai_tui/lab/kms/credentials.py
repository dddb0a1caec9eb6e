"""The AccessKeys and STS tokens the lab KMS accepts."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who signed a request: the AccessKey, its secret and the actions it may call (None: all)."""

    access_key_id: str
    secret: str
    actions: frozenset[str] | None = None
    expires_at: float | None = None  # STS tokens only

    def may(self, action: str) -> bool:
        return self.actions is None or action in self.actions


def _check(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in value):
        raise ValueError(f"{name} must be printable ASCII without spaces")
    return value


class KmsCredentials:
    """Thread-safe registry: long-term AccessKeys and STS tokens (each bound to its temporary AccessKey).

    ``actions`` limits what a key may call (RAM in miniature): a call outside it answers Forbidden.RAM.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, Principal] = {}
        self._tokens: dict[str, Principal] = {}

    def add_key(self, access_key_id: str, secret: str, *, actions: Iterable[str] | None = None) -> None:
        principal = Principal(
            _check("access_key_id", access_key_id),
            _check("secret", secret),
            frozenset(actions) if actions is not None else None,
        )
        with self._lock:
            self._keys[access_key_id] = principal

    def add_sts_token(
        self,
        token: str,
        access_key_id: str,
        secret: str,
        expires_at: float,
        *,
        actions: Iterable[str] | None = None,
    ) -> None:
        if not isinstance(token, str) or not token or any(ord(c) < 0x20 or ord(c) > 0x7E for c in token):
            raise ValueError("token must be a non-empty printable ASCII string")
        principal = Principal(
            _check("access_key_id", access_key_id),
            _check("secret", secret),
            frozenset(actions) if actions is not None else None,
            float(expires_at),
        )
        with self._lock:
            self._tokens[token] = principal

    def remove_key(self, access_key_id: str) -> None:
        """Forget a long-term key and every STS token issued for it (a revoked AccessKey)."""
        with self._lock:
            self._keys.pop(access_key_id, None)
            for tok in [t for t, p in self._tokens.items() if p.access_key_id == access_key_id]:
                del self._tokens[tok]

    def key(self, access_key_id: str) -> Principal | None:
        with self._lock:
            return self._keys.get(access_key_id)

    def token(self, token: str) -> Principal | None:
        with self._lock:
            return self._tokens.get(token)
