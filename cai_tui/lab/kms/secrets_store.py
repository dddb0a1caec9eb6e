"""Secrets of the lab KMS, their versions and stages, persisted in one JSON file.

The file (``<state_dir>/kms-secrets.json``, mode 0600) is rewritten atomically on every change: a temp file
in the same directory, fsync, rename, fsync of the directory. Changes are copy-on-write: the new state is
saved first and only then becomes the one served, so a failed write leaves both the file and the memory
as they were. Secret names never become paths.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cai_tui.lab.kms import errors

log = logging.getLogger("cai_tui.lab.kms")

FILENAME = "kms-secrets.json"
_TMP_PREFIX = ".kms-secrets."
_TMP_SUFFIX = ".tmp"
FORMAT = "cai-tui-lab-kms-secrets/1"
CURRENT = "ACSCurrent"
PREVIOUS = "ACSPrevious"
MAX_DEPRECATED_VERSIONS = 10  # versions without a stage kept per secret, oldest dropped first


class KmsStateError(RuntimeError):
    """The state file exists but cannot be used."""


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass
class SecretVersion:
    version_id: str
    data: str  # text as given; binary as base64
    data_type: str  # "text" | "binary"
    created: float
    stages: list[str] = field(default_factory=list)

    def value_bytes(self) -> bytes:
        if self.data_type == "binary":
            return base64.b64decode(self.data)
        return self.data.encode("utf-8")


@dataclass
class Secret:
    name: str
    description: str
    secret_type: str
    encryption_key_id: str
    dkms_instance_id: str
    tags: list[list[str]]  # [[key, value], ...]
    created: float
    updated: float
    planned_delete: float | None
    versions: list[SecretVersion]

    def by_stage(self, stage: str) -> SecretVersion | None:
        return next((v for v in self.versions if stage in v.stages), None)

    def by_id(self, version_id: str) -> SecretVersion | None:
        return next((v for v in self.versions if v.version_id == version_id), None)


def encode_value(value: bytes | str) -> tuple[str, str]:
    """``(data, data_type)`` for a value given in-process: text when it is (UTF-8) text, else binary."""
    if isinstance(value, str):
        return value, "text"
    try:
        return value.decode("utf-8"), "text"
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), "binary"


def _secret_from_json(doc: Any) -> Secret:
    if not isinstance(doc, dict):
        raise ValueError("a secret entry is not an object")
    versions = []
    for v in doc["versions"]:
        if v["data_type"] not in ("text", "binary"):
            raise ValueError(f"unknown data_type {v['data_type']!r}")
        if v["data_type"] == "binary":
            binascii.a2b_base64(v["data"], strict_mode=True)
        versions.append(
            SecretVersion(
                str(v["version_id"]),
                str(v["data"]),
                v["data_type"],
                float(v["created"]),
                [str(s) for s in v["stages"]],
            )
        )
    planned = doc.get("planned_delete")
    return Secret(
        name=str(doc["name"]),
        description=str(doc.get("description", "")),
        secret_type=str(doc.get("secret_type", "Generic")),
        encryption_key_id=str(doc.get("encryption_key_id", "")),
        dkms_instance_id=str(doc.get("dkms_instance_id", "")),
        tags=[[str(k), str(v)] for k, v in doc.get("tags", [])],
        created=float(doc["created"]),
        updated=float(doc["updated"]),
        planned_delete=float(planned) if planned is not None else None,
        versions=versions,
    )


class SecretsStore:
    """Thread-safe secret store. ``clock()`` is the lab's notion of now (seconds since the epoch)."""

    def __init__(self, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = self.state_dir / FILENAME
        self._clock = clock
        self._lock = threading.RLock()
        self._remove_stale_temps()
        self._secrets: dict[str, Secret] = self._load()

    # --- persistence ---------------------------------------------------------------------------

    def _remove_stale_temps(self) -> None:
        for p in self.state_dir.glob(f"{_TMP_PREFIX}*{_TMP_SUFFIX}"):
            try:
                p.unlink()
            except OSError:
                log.debug("could not remove stale temp file %s", p, exc_info=True)

    def _load(self) -> dict[str, Secret]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError(f"format is not {FORMAT!r}")
            secrets = [_secret_from_json(s) for s in doc["secrets"]]
        except (ValueError, KeyError, TypeError, binascii.Error) as e:
            raise KmsStateError(
                f"{self.path}: not a usable lab KMS state file ({type(e).__name__}: {e}); "
                "move it away to start with no secrets"
            ) from None
        if self.path.stat().st_mode & 0o077:
            os.chmod(self.path, 0o600)
        return {s.name: s for s in secrets}

    def _save(self, secrets: dict[str, Secret]) -> None:
        doc = {"format": FORMAT, "secrets": [asdict(s) for s in sorted(secrets.values(), key=lambda s: s.name)]}
        data = json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX, dir=self.state_dir)
        try:
            with os.fdopen(fd, "wb") as f:  # mkstemp creates the file 0600
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        dfd = os.open(self.state_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _commit(self, secrets: dict[str, Secret]) -> None:
        self._save(secrets)
        self._secrets = secrets

    def _live(self) -> dict[str, Secret]:
        """The current secrets, after purging those whose recovery window has ended."""
        now = self._clock()
        expired = [n for n, s in self._secrets.items() if s.planned_delete is not None and s.planned_delete <= now]
        if expired:
            self._commit({n: s for n, s in self._secrets.items() if n not in expired})
        return self._secrets

    def _edit(self, name: str) -> tuple[dict[str, Secret], Secret]:
        """A copy of the state and of one secret in it, to change and commit."""
        live = self._live()
        if name not in live:
            raise errors.resource_not_found()
        new = dict(live)
        secret = copy.deepcopy(live[name])
        new[name] = secret
        return new, secret

    # --- queries -------------------------------------------------------------------------------

    def get(self, name: str) -> Secret:
        """The secret, pending deletion or not; Forbidden.ResourceNotFound when absent. Do not mutate it."""
        with self._lock:
            secret = self._live().get(name)
        if secret is None:
            raise errors.resource_not_found()
        return secret

    def find(self, name: str) -> Secret | None:
        with self._lock:
            return self._live().get(name)

    def all(self) -> list[Secret]:
        with self._lock:
            return sorted(self._live().values(), key=lambda s: (s.created, s.name))

    # --- changes -------------------------------------------------------------------------------

    def create(
        self,
        *,
        name: str,
        data: str,
        data_type: str,
        version_id: str,
        description: str = "",
        encryption_key_id: str = "",
        dkms_instance_id: str = "",
        tags: list[list[str]] | None = None,
    ) -> Secret:
        with self._lock:
            live = self._live()
            existing = live.get(name)
            if existing is not None:
                raise errors.in_delete_window() if existing.planned_delete is not None else errors.resource_exists()
            now = self._clock()
            secret = Secret(
                name=name,
                description=description,
                secret_type="Generic",
                encryption_key_id=encryption_key_id,
                dkms_instance_id=dkms_instance_id,
                tags=[list(t) for t in tags or []],
                created=now,
                updated=now,
                planned_delete=None,
                versions=[SecretVersion(version_id, data, data_type, now, [CURRENT])],
            )
            new = dict(live)
            new[name] = secret
            self._commit(new)
            return secret

    def put_value(self, name: str, *, data: str, data_type: str, version_id: str, stages: list[str]) -> SecretVersion:
        """Add a version carrying ``stages``; ACSCurrent moves there and the old current becomes ACSPrevious."""
        with self._lock:
            new, secret = self._edit(name)
            if secret.planned_delete is not None:
                raise errors.in_delete_window()
            if secret.by_id(version_id) is not None:
                raise errors.resource_exists()
            version = self._add_version(secret, data, data_type, version_id, stages)
            self._commit(new)
            return version

    def _add_version(
        self, secret: Secret, data: str, data_type: str, version_id: str, stages: list[str]
    ) -> SecretVersion:
        now = self._clock()
        stages = list(dict.fromkeys(stages))
        old_current = secret.by_stage(CURRENT)
        for v in secret.versions:
            v.stages = [s for s in v.stages if s not in stages]
        if CURRENT in stages and old_current is not None:
            for v in secret.versions:
                v.stages = [s for s in v.stages if s != PREVIOUS]
            old_current.stages.append(PREVIOUS)
        version = SecretVersion(version_id, data, data_type, now, stages)
        secret.versions.append(version)
        deprecated = [v for v in secret.versions if not v.stages]
        for v in deprecated[: max(0, len(deprecated) - MAX_DEPRECATED_VERSIONS)]:
            secret.versions.remove(v)
        secret.updated = now
        return version

    def schedule_delete(self, name: str, days: int) -> float:
        with self._lock:
            new, secret = self._edit(name)
            if secret.planned_delete is not None:
                raise errors.in_delete_window()
            now = self._clock()
            secret.planned_delete = now + days * 86400
            secret.updated = now
            self._commit(new)
            return secret.planned_delete

    def force_delete(self, name: str) -> None:
        with self._lock:
            live = self._live()
            if name not in live:
                raise errors.resource_not_found()
            self._commit({n: s for n, s in live.items() if n != name})

    def restore(self, name: str) -> None:
        with self._lock:
            new, secret = self._edit(name)
            if secret.planned_delete is None:
                raise errors.invalid_parameter("SecretName", "The secret is not planned to be deleted.")
            secret.planned_delete = None
            secret.updated = self._clock()
            self._commit(new)

    def seed(self, name: str, value: bytes | str, description: str = "", dkms_instance_id: str = "") -> None:
        """In-process seeding: create the secret, or make ``value`` its ACSCurrent version.

        Seeding is authoritative: a scheduled deletion is cancelled. Seeding the value that is already
        current adds no version, so a lab that seeds at every start does not pile versions up.
        """
        data, data_type = encode_value(value)
        with self._lock:
            live = self._live()
            if name not in live:
                self.create(
                    name=name,
                    data=data,
                    data_type=data_type,
                    version_id="lab-v1",
                    description=description,
                    dkms_instance_id=dkms_instance_id,
                )
                return
            new, secret = self._edit(name)
            changed = False
            if secret.planned_delete is not None:
                secret.planned_delete = None
                changed = True
            if description and description != secret.description:
                secret.description = description
                changed = True
            current = secret.by_stage(CURRENT)
            if current is None or (current.data, current.data_type) != (data, data_type):
                n = len(secret.versions) + 1
                while secret.by_id(f"lab-v{n}") is not None:
                    n += 1
                self._add_version(secret, data, data_type, f"lab-v{n}", [CURRENT])
                changed = True
            if changed:
                secret.updated = self._clock()
                self._commit(new)
