"""The whole lab in one object: loopback KMS, OSS, Trustee and the admin endpoint, seeded with a demo.

``cai-tui lab serve``, ``cai-tui --lab`` and the test fixtures all run this::

    with Lab(state_dir=Path("/tmp/lab"), port_base=18600, faults="trustee-slow=2") as lab:
        print(lab.ready_info())          # the ready line's document
        lab.faults.set("oss-access-denied", True)

Ports: ``port_base=None`` takes ephemeral ports; ``port_base=N`` puts Trustee on N, OSS on N+1, KMS on N+2 and the
admin endpoint on N+3 (all on 127.0.0.1; ports in use raise :class:`LabPortInUse` before anything starts).

Every start makes fresh random credentials (an OSS owner AccessKey, an OSS STS token valid for 1 h, a KMS AccessKey,
the KBS admin Ed25519 key pair) and writes into the state directory:

* ``credentials.json`` (0600) — :data:`CREDENTIAL_KEYS` and a few conveniences (endpoints, the STS pair);
* one 0600 file per secret (``oss_access_key_id``, ``kms_access_key_secret``, ``kbs-admin.pem``, ``model-password``…)
  that the recipe references as ``file:`` secrets;
* ``lab-demo.yaml`` — a valid CAI recipe (from ``recipes/lab-demo.yaml``) pointing at this lab;
* the demo seed (:mod:`.demo`): ``demo-model/``, ``demo-cipher/``, uploaded to OSS ``lab-models/demo-gocryptfs/``, its
  password in KMS as ``model-decryption-key``, which the Trustee (KMS backend) serves as
  ``kbs:///default/aliyun/model-decryption-key``;
* the services' own state: ``oss/``, ``kms-secrets.json``, ``kbs-repository/``.

``seed="bare"`` (``cai-tui lab serve --bare``) writes only ``demo-model/``: no cipherdir, no password file, the bucket
``lab-models`` empty and without a policy, no KMS secret — what a headless replay from a clean state starts from (the
replay encrypts, uploads, creates the secret and applies the bucket policy itself). The recipe is the same.

``instance=True`` (the default of ``cai-tui lab serve`` and ``cai-tui --lab``) also makes this machine's Docker
engine the lab instance (:mod:`cai_tui.labstack.instance`): the recipe then gets ``answers.service`` pointing at it,
``targets.instance``/``targets.client`` ``local`` and waivers for TDX, GPU and TNG; where it cannot (not root, no
engine, no ``docker compose``) the lab starts without it, the recipe has no instance target and ``ready_info()``'s
``instance`` says why and what to run.

With ``state_dir=None`` the lab takes the default state directory, or, while another lab holds it, the first free
``<default>-2`` … ``<default>-9`` (with ephemeral ports instead of ``preferred_port_base``), so two labs run side by
side and never overwrite each other's recipe.

Faults given at start are switched on once the seed is in place (a fault never breaks the seeding itself). The demo
prefix belongs to the seed: at every start, objects under it that are not part of the demo cipherdir are deleted, and
the KMS secret is set back to the demo password if it was changed.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import secrets
import socket
import string
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import paths
from .admin import AdminHTTPServer
from .demo import (
    DEMO_BUCKET,
    DEMO_KEY_URI,
    DEMO_PREFIX,
    DEMO_SECRET_NAME,
    DemoSeed,
    ensure_bare,
    ensure_demo,
    write_private,
)
from .faults import FAULTS, FaultSwitches, UnknownFault, parse_fault_list
from .httpbase import LOOPBACK
from .kms import KmsCredentials, KmsLab
from .oss import OssCredentials, OssLab
from .trustee import TrusteeLab, TrusteeSettings, generate_admin_keypair

log = logging.getLogger("cai_tui.lab")

DEFAULT_PORT_BASE = 18600
REGION = "cn-lab"
KMS_INSTANCE_ID = "kst-lab00000000000000000"
CREDENTIALS_FILE = "credentials.json"
RECIPE_FILE = "lab-demo.yaml"
ADMIN_KEY_FILE = "kbs-admin.pem"
LOCK_FILE = ".lab.lock"
STS_TTL_S = 3600
COMPONENTS = ("trustee", "oss", "kms", "admin")  # port offsets 0, 1, 2, 3 from the port base
COMPONENT_TITLES = {"trustee": "Trustee", "oss": "OSS", "kms": "KMS", "admin": "admin endpoint"}
CREDENTIAL_KEYS = (
    "oss_access_key_id",
    "oss_access_key_secret",
    "oss_sts_token",
    "oss_region",
    "oss_bucket",
    "model_prefix",
    "model_password_file",
    "kms_access_key_id",
    "kms_access_key_secret",
    "kms_region",
    "kms_secret_name",
    "kbs_admin_private_key_path",
)
READY_KEYS = (
    "event",
    "state_dir",
    "trustee_url",
    "oss_endpoint",
    "kms_endpoint",
    "admin_url",
    "credentials",
    "recipe",
    "seed",
    "instance",
)
SEEDS = ("demo", "bare")
SIDE_BY_SIDE = 9  # <default>, <default>-2 … <default>-9
_ALNUM = string.ascii_letters + string.digits


DEMO_ACCOUNT_UID = "1234567890"  # the lab OSS's owner UID (cai_tui.lab.oss.credentials.DEFAULT_UID)
DEMO_BUCKET_POLICY = {
    "Version": "1",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": ["*"],
            "Action": ["oss:GetObject", "oss:ListObjects", "oss:GetBucketInfo"],
            "Resource": [
                f"acs:oss:*:{DEMO_ACCOUNT_UID}:{DEMO_BUCKET}",
                f"acs:oss:*:{DEMO_ACCOUNT_UID}:{DEMO_BUCKET}/*",
            ],
            "Condition": {"IpAddress": {"acs:SourceIp": ["127.0.0.1/32"]}, "StringNotLike": {"acs:SourceVpc": "vpc-*"}},
        }
    ],
}


class LabError(RuntimeError):
    """The lab cannot start; the message says why and what to do."""


class LabPortInUse(LabError):
    def __init__(self, port: int, component: str) -> None:
        super().__init__(
            f"port {port} ({component}) on {LOOPBACK} is already in use; choose another --port-base "
            f"(the lab takes 4 consecutive ports: Trustee, OSS, KMS, admin) or stop what listens there"
        )
        self.port = port
        self.component = component


class LabBusy(LabError):
    pass


def default_state_dir() -> Path:
    return paths.state_dir() / "lab"


def check_ports_free(ports: dict[str, int]) -> None:
    """Raise :class:`LabPortInUse` for the first of ``{component: port}`` that cannot be bound on 127.0.0.1."""
    for component, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind (TIME_WAIT is no conflict)
            try:
                s.bind((LOOPBACK, port))
            except OSError as e:
                if e.errno in (errno.EADDRINUSE, errno.EACCES):
                    raise LabPortInUse(port, COMPONENT_TITLES.get(component, component)) from None
                raise


def _rand(prefix: str, n: int) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(n))


@dataclass(frozen=True)
class LabKeys:
    """The credentials of one start (all fresh, from the ``secrets`` module)."""

    oss_access_key_id: str
    oss_access_key_secret: str
    oss_sts_access_key_id: str
    oss_sts_access_key_secret: str
    oss_sts_token: str
    oss_sts_expires_at: float
    kms_access_key_id: str
    kms_access_key_secret: str
    admin_private_pem: bytes
    admin_public_pem: bytes

    @classmethod
    def fresh(cls) -> LabKeys:
        private_pem, public_pem = generate_admin_keypair()
        return cls(
            oss_access_key_id=_rand("LTAI5t", 18),
            oss_access_key_secret=_rand("", 30),
            oss_sts_access_key_id=_rand("STS.NT", 22),
            oss_sts_access_key_secret=_rand("", 44),
            oss_sts_token="CAIS" + secrets.token_urlsafe(96),
            oss_sts_expires_at=time.time() + STS_TTL_S,
            kms_access_key_id=_rand("LTAI5t", 18),
            kms_access_key_secret=_rand("", 30),
            admin_private_pem=private_pem,
            admin_public_pem=public_pem,
        )


def _initial_faults(faults: str | dict[str, float | None] | None) -> dict[str, float | None]:
    if faults is None:
        return {}
    if isinstance(faults, str):
        return parse_fault_list(faults)
    out: dict[str, float | None] = {}
    for name, param in faults.items():
        if name not in FAULTS:
            raise UnknownFault(f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULTS))}")
        out[name] = float(param) if param is not None else FAULTS[name].default_param
    return out


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _probe(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


class Lab:
    """The lab; a context manager (``start()`` on enter, ``stop()`` on exit). See the module docstring."""

    def __init__(
        self,
        state_dir: Path | str | None = None,
        port_base: int | None = None,
        faults: str | dict[str, float | None] = "",
        trustee_settings: TrusteeSettings | None = None,
        *,
        seed: str = "demo",
        instance: bool = False,
        preferred_port_base: int | None = None,
    ) -> None:
        """``seed``: ``demo`` or ``bare``; ``instance``: make the local Docker engine the lab instance when it can;
        ``preferred_port_base``: the port base while ``port_base`` is None, unless this lab had to take a side-by-side
        state directory (then ephemeral ports)."""
        for base in (port_base, preferred_port_base):
            if base is not None and not 1 <= base <= 65535 - 3:
                raise ValueError(f"port_base must be between 1 and 65532, not {base}")
        if seed not in SEEDS:
            raise ValueError(f"seed must be one of {', '.join(SEEDS)}, not {seed!r}")
        self._auto_state = state_dir is None
        self._state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self._port_base = port_base
        self._preferred_port_base = preferred_port_base
        self._seed = seed
        self._want_instance = instance
        self._instance: Any = None  # a LabInstance once prepared
        self._pending_instance: Any = None  # (LabInstance, thread, errors) while it is being prepared
        self._instance_info: dict[str, Any] = {"state": "off", "message": "the lab was started without an instance"}
        self.side_by_side_note: str | None = None
        self._start_faults = _initial_faults(faults)  # raises UnknownFault before anything starts
        if trustee_settings is None:
            trustee_settings = TrusteeSettings(
                protocol_version="0.1.0", flavour="alibaba", release="trustee", backend="kms"
            )
        trustee_settings.validate()
        self._settings = trustee_settings
        self._faults = FaultSwitches()
        self._faults.subscribe(self._log_fault)
        self._kms: KmsLab | None = None
        self._oss: OssLab | None = None
        self._trustee: TrusteeLab | None = None
        self._admin: AdminHTTPServer | None = None
        self._lock_fd: int | None = None
        self._keys: LabKeys | None = None
        self._demo: DemoSeed | None = None
        self._running = False

    # --- lifecycle ---------------------------------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Lab:
        if self._running:
            return self
        t0 = time.monotonic()
        self._claim_state_dir()
        try:
            ports = self._ports()
            if self._effective_port_base() is not None:
                check_ports_free(ports)
            self._pending_instance = instance = self._start_instance()
            self._faults.clear()
            self._keys = keys = LabKeys.fresh()
            self._write_secret_files(keys)
            bare = self._seed == "bare"
            self._demo = demo = ensure_bare(self._state_dir) if bare else ensure_demo(self._state_dir)

            kms_creds = KmsCredentials()
            kms_creds.add_key(keys.kms_access_key_id, keys.kms_access_key_secret)
            self._kms = KmsLab(
                self._state_dir, kms_creds, self._faults, port=ports["kms"], region=REGION, instance_id=KMS_INSTANCE_ID
            )
            if bare:
                if self._kms.store.find(DEMO_SECRET_NAME) is not None:
                    self._kms.store.force_delete(DEMO_SECRET_NAME)
            else:
                self._kms.put_secret(
                    DEMO_SECRET_NAME, demo.password, "cai-tui lab demo: gocryptfs password of the model"
                )
            self._kms.start()

            oss_creds = OssCredentials()
            oss_creds.add_key(keys.oss_access_key_id, keys.oss_access_key_secret, "owner")
            oss_creds.add_sts_token(
                keys.oss_sts_token, keys.oss_sts_access_key_id, keys.oss_sts_access_key_secret, keys.oss_sts_expires_at
            )
            self._oss = OssLab(self._state_dir, oss_creds, self._faults, port=ports["oss"], region=REGION)
            self._oss.create_bucket(DEMO_BUCKET)
            self._oss.start()
            uploaded = self._empty_bucket() if bare else self._upload_demo(keys, demo)

            self._trustee = TrusteeLab(
                self._state_dir,
                keys.admin_public_pem,
                self._faults,
                self._settings,
                kms_lookup=self._kms.get_secret_value,
                port=ports["trustee"],
            )
            if self._settings.backend == "local" and not bare:
                tag = DEMO_KEY_URI.rsplit("/", 1)[1]
                self._trustee.set_resource("default", "aliyun", tag, demo.password.encode("utf-8"))
            self._trustee.start()

            self._admin = AdminHTTPServer(self._faults, self.health, self.ready_info, port=ports["admin"])
            self._admin.start()
            self._running = True
            self._join_instance(instance)
            self._write_credentials(keys, demo)
            self._write_recipe(demo)
            for name, param in self._start_faults.items():
                self._faults.set(name, True, param)
        except BaseException:
            self._shutdown()
            raise
        log.info(
            "lab: up in %.2f s (%s, %d object(s) %s): Trustee %s, OSS %s, KMS %s, admin %s",
            time.monotonic() - t0,
            "bare: demo model only" if bare else f"demo {'kept' if demo.reused else 'seeded'}",
            uploaded,
            "removed" if bare else "uploaded",
            self.trustee_url,
            self.oss_endpoint,
            self.kms_endpoint,
            self.admin_url,
        )
        if self._instance is not None:
            log.info(
                "lab: instance ready: compose project %s, vLLM at 127.0.0.1:%d",
                self._instance.project,
                self._instance.port,
            )
        elif self._want_instance:
            log.warning("lab: %s", self._instance_info["message"])
        return self

    def stop(self) -> None:
        """Stop every service and release the state directory; idempotent."""
        if self._running:
            log.info("lab: stopping")
        self._shutdown()

    def _shutdown(self) -> None:
        self._running = False
        instance, self._instance = self._instance, None
        pending, self._pending_instance = self._pending_instance, None
        if pending is not None:  # start failed while the instance was being prepared
            pending[1].join()
            instance = pending[0]
        if instance is not None:
            try:
                instance.down()
            except Exception:
                log.exception("lab: taking the lab instance (compose project %s) down failed", instance.project)
        admin, self._admin = self._admin, None
        trustee, self._trustee = self._trustee, None
        oss, self._oss = self._oss, None
        kms, self._kms = self._kms, None
        for what, stop in (
            ("admin", admin.stop if admin else None),
            ("trustee", trustee.stop if trustee else None),
            ("oss", oss.close if oss else None),
            ("kms", kms.stop if kms else None),
        ):
            if stop is None:
                continue
            try:
                stop()
            except Exception:
                log.exception("lab: stopping the %s failed", what)
        self._unlock()

    def _claim_state_dir(self) -> None:
        """Lock the state directory; with ``state_dir=None`` take the next side-by-side one while it is busy."""
        first = self._state_dir
        candidates = [first]
        if self._auto_state:
            candidates += [first.with_name(f"{first.name}-{n}") for n in range(2, SIDE_BY_SIDE + 1)]
        for i, candidate in enumerate(candidates):
            candidate.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._state_dir = candidate.resolve()
            try:
                self._lock()
            except LabBusy:
                if i == len(candidates) - 1:
                    raise
                continue
            if i > 0:
                self.side_by_side_note = (
                    f"another lab holds {first}: this one uses {self._state_dir} (ephemeral ports unless --port-base)"
                )
                log.warning("lab: %s", self.side_by_side_note)
            return

    def _lock(self) -> None:
        fd = os.open(self._state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise LabBusy(
                f"another lab is running on the state directory {self._state_dir}; stop it or give another --state-dir"
            ) from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _effective_port_base(self) -> int | None:
        if self._port_base is not None:
            return self._port_base
        return self._preferred_port_base if self.side_by_side_note is None else None

    def _ports(self) -> dict[str, int]:
        base = self._effective_port_base()
        if base is None:
            return dict.fromkeys(COMPONENTS, 0)
        return {name: base + i for i, name in enumerate(COMPONENTS)}

    # --- the lab instance --------------------------------------------------------------------------------------------

    def _start_instance(self) -> Any:
        """Begin preparing the lab instance in a thread (the image's content hash takes a second or two: it runs
        while the services start); None when it is off or this machine cannot be the instance."""
        if not self._want_instance:
            return None
        from ..labstack.instance import LabInstance, unavailable

        why = unavailable()
        if why is not None:
            self._instance_info = {
                "state": "unavailable",
                "reason": why.reason,
                "todo": why.todo,
                "message": why.message,
            }
            return None
        base = self._effective_port_base()
        inst = LabInstance(self._state_dir, port=base + len(COMPONENTS) if base is not None else None)
        errors: list[BaseException] = []

        def prepare() -> None:
            try:
                inst.prepare(on_event=lambda e: log.debug("lab: %s", e.text))
            except BaseException as e:  # reported by _join_instance
                errors.append(e)

        thread = threading.Thread(target=prepare, name="lab-instance", daemon=True)
        thread.start()
        return (inst, thread, errors)

    def _join_instance(self, started: Any) -> None:
        if started is None:
            return
        inst, thread, errors = started
        thread.join()
        self._pending_instance = None
        self._instance = inst  # down() also undoes a half-prepared instance (the mount)
        if errors:
            from ..labstack.image import LabImageError
            from ..labstack.instance import BedError

            e = errors[0]
            if not isinstance(e, Exception):
                raise e
            if not isinstance(e, (BedError, LabImageError, OSError)):
                log.debug("lab: preparing the instance failed", exc_info=e)
            self._instance = None
            try:
                inst.down()
            except Exception:
                log.exception("lab: cleaning up the half-prepared instance failed")
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            self._instance_info = {
                "state": "unavailable",
                "reason": reason,
                "todo": "fix that and restart the lab",
                "message": f"no lab instance: {reason}",
            }
            return
        self._instance_info = inst.info()
        self._instance_info["message"] = (
            f"the lab provides an instance: `cai-tui deploy --recipe {self.recipe_path} --yes` starts the CAI stack "
            f"on the local Docker engine (compose project {inst.project})"
        )

    @staticmethod
    def _log_fault(name: str, on: bool) -> None:
        log.info("lab: fault %s %s", name, "on" if on else "off")

    # --- seeding -----------------------------------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self._state_dir / name

    def _write_secret_files(self, keys: LabKeys) -> None:
        for name, value in (
            ("oss_access_key_id", keys.oss_access_key_id),
            ("oss_access_key_secret", keys.oss_access_key_secret),
            ("oss_sts_access_key_id", keys.oss_sts_access_key_id),
            ("oss_sts_access_key_secret", keys.oss_sts_access_key_secret),
            ("oss_sts_token", keys.oss_sts_token),
            ("kms_access_key_id", keys.kms_access_key_id),
            ("kms_access_key_secret", keys.kms_access_key_secret),
        ):
            write_private(self._path(name), value.encode("ascii"))
        write_private(self._path(ADMIN_KEY_FILE), keys.admin_private_pem)

    def _empty_bucket(self) -> int:
        """The bare seed's bucket: no objects, no multipart uploads, no policy; returns how many objects went."""
        assert self._oss is not None
        store = self._oss.store
        removed = 0
        for upload in store.uploads(DEMO_BUCKET):
            store.abort_upload(upload.upload_id)
        while True:
            batch = [o.key for o in store.iter_objects(DEMO_BUCKET, "", "")]
            if not batch:
                break
            for key in batch:
                removed += bool(store.delete_object(DEMO_BUCKET, key))
        store.set_policy(DEMO_BUCKET, None)
        return removed

    def _upload_demo(self, keys: LabKeys, demo: DemoSeed) -> int:
        """Put the cipherdir into the lab OSS through oss2 (unchanged objects are skipped); returns the upload count."""
        import oss2

        assert self._oss is not None
        session = oss2.Session()
        session.session.trust_env = False  # loopback only: never through a proxy from the environment
        bucket = oss2.Bucket(
            oss2.Auth(keys.oss_access_key_id, keys.oss_access_key_secret),
            self._oss.endpoint,
            DEMO_BUCKET,
            session=session,
            connect_timeout=10,
            region=REGION,
        )
        existing = {o.key: o.etag for o in oss2.ObjectIterator(bucket, prefix=DEMO_PREFIX)}
        wanted = demo.cipher_files()
        uploaded = 0
        for key, path in wanted:
            data = path.read_bytes()
            if existing.get(key, "").upper() == hashlib.md5(data).hexdigest().upper():
                continue
            bucket.put_object(key, data)
            uploaded += 1
        for key in sorted(set(existing) - {k for k, _ in wanted}):
            bucket.delete_object(key)
        # CAI-4.1 as the seed does it: the bucket policy grants the "instance" (here: loopback) read access.
        bucket.put_bucket_policy(json.dumps(DEMO_BUCKET_POLICY))
        return uploaded

    def _write_credentials(self, keys: LabKeys, demo: DemoSeed) -> None:
        doc = {
            "oss_access_key_id": keys.oss_access_key_id,
            "oss_access_key_secret": keys.oss_access_key_secret,
            "oss_sts_token": keys.oss_sts_token,
            "oss_sts_access_key_id": keys.oss_sts_access_key_id,
            "oss_sts_access_key_secret": keys.oss_sts_access_key_secret,
            "oss_sts_expiration": _iso(keys.oss_sts_expires_at),
            "oss_region": REGION,
            "oss_endpoint": self.oss_endpoint,
            "oss_bucket": DEMO_BUCKET,
            "model_prefix": DEMO_PREFIX,
            "model_password_file": str(demo.password_file),
            "model_dir": str(demo.model_dir),
            "cipher_dir": str(demo.cipher_dir),
            "kms_access_key_id": keys.kms_access_key_id,
            "kms_access_key_secret": keys.kms_access_key_secret,
            "kms_region": REGION,
            "kms_endpoint": self.kms_endpoint,
            "kms_instance_id": KMS_INSTANCE_ID,
            "kms_secret_name": DEMO_SECRET_NAME,
            "kbs_admin_private_key_path": str(self._path(ADMIN_KEY_FILE)),
            "trustee_url": self.trustee_url,
            "model_key_id": DEMO_KEY_URI,
            "protocol_version": self._settings.protocol_version,
        }
        write_private(self.credentials_path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))

    def recipe_text(self, demo: DemoSeed) -> str:
        """The lab recipe: ``recipes/lab-demo.yaml`` (comments kept) with this lab's endpoints and paths."""
        from ruamel.yaml import YAML

        from ..resources import data_dir

        yaml = YAML(typ="rt")
        yaml.preserve_quotes = True
        yaml.width = 4096
        yaml.indent(mapping=2, sequence=4, offset=2)
        doc = yaml.load((data_dir("recipes") / "lab-demo.yaml").read_text("utf-8"))
        answers = doc["answers"]

        def ref(name: str | Path) -> str:
            return f"file:{self._path(str(name)) if isinstance(name, str) else name}"

        answers["model"].update(
            source="local",
            local_dir=str(demo.model_dir),
            encryption_method="gocryptfs",
            password=ref(demo.password_file),
            cipher_dir=str(demo.cipher_dir),
        )
        answers["oss"].update(
            account_uid=DEMO_ACCOUNT_UID,
            region=REGION,
            endpoint=self.oss_endpoint,
            bucket_path=f"{DEMO_BUCKET}:/{DEMO_PREFIX}",
            access_key_id=ref("oss_access_key_id"),
            access_key_secret=ref("oss_access_key_secret"),
        )
        answers["kms"].update(
            region=REGION,
            instance_id=KMS_INSTANCE_ID,
            endpoint=self.kms_endpoint,
            secret_name=DEMO_SECRET_NAME,
            access_key_id=ref("kms_access_key_id"),
            access_key_secret=ref("kms_access_key_secret"),
        )
        answers["trustee"].update(
            url=self.trustee_url,
            model_key_id=DEMO_KEY_URI,
            protocol_version=self._settings.protocol_version,
            admin_private_key=ref(ADMIN_KEY_FILE),
        )
        answers["instance"]["public_ip"] = "127.0.0.1"
        if self._instance is not None:
            service = answers["service"]
            service.ca.items.pop(list(service)[-1], None)  # the blank line before targets: would split the section
            service.update(self._instance.service_answers())
            doc["targets"]["instance"] = "local"
            doc["targets"]["client"] = "local"
            from ..labstack.instance import WAIVERS

            doc["waivers"] = [{"check": check, "reason": reason} for check, reason in WAIVERS]
        buf = io.StringIO()
        yaml.dump(doc, buf)
        return buf.getvalue()

    def _write_recipe(self, demo: DemoSeed) -> None:
        from ..recipe import loads_recipe, save_recipe

        path = self.recipe_path
        loaded = loads_recipe(self.recipe_text(demo), name=str(path), path=path)  # RecipeError if the lab broke it
        save_recipe(loaded, path, backup=False)

    # --- what the lab offers -----------------------------------------------------------------------------------------

    def _need(self, component: Any, what: str) -> Any:
        if component is None:
            raise RuntimeError(f"the lab is not running ({what} is only known while it runs)")
        return component

    @property
    def running(self) -> bool:
        return self._running

    @property
    def state_dir(self) -> Path:
        return self._state_dir

    @property
    def faults(self) -> FaultSwitches:
        return self._faults

    @property
    def settings(self) -> TrusteeSettings:
        return replace(self._settings)

    @property
    def trustee_url(self) -> str:
        """The seed-style ``TRUSTEE_URL``: ``http://127.0.0.1:PORT/trustee`` (KBS under ``…/kbs/v0``)."""
        return str(self._need(self._trustee, "trustee_url").url)

    @property
    def oss_endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` (path-style buckets, as oss2 uses for an IP endpoint)."""
        return str(self._need(self._oss, "oss_endpoint").endpoint)

    @property
    def kms_endpoint(self) -> str:
        """``127.0.0.1:PORT`` without a scheme, as the KMS SDK's ``Config(endpoint=…, protocol="http")`` wants it."""
        return str(self._need(self._kms, "kms_endpoint").endpoint)

    @property
    def admin_url(self) -> str:
        return str(self._need(self._admin, "admin_url").url)

    @property
    def credentials_path(self) -> Path:
        return self._state_dir / CREDENTIALS_FILE

    @property
    def recipe_path(self) -> Path:
        return self._state_dir / RECIPE_FILE

    @property
    def instance(self) -> Any:
        """The :class:`~cai_tui.labstack.instance.LabInstance` while the lab provides one, else None."""
        return self._instance

    @property
    def instance_info(self) -> dict[str, Any]:
        return dict(self._instance_info)

    @property
    def demo(self) -> DemoSeed:
        return self._need(self._demo, "the demo seed")

    @property
    def keys(self) -> LabKeys:
        return self._need(self._keys, "the credentials")

    @property
    def trustee_lab(self) -> TrusteeLab:
        return self._need(self._trustee, "the Trustee")

    @property
    def oss_lab(self) -> OssLab:
        return self._need(self._oss, "the OSS")

    @property
    def kms_lab(self) -> KmsLab:
        return self._need(self._kms, "the KMS")

    def ready_info(self) -> dict[str, Any]:
        """The ready line's document (``cai-tui lab serve`` prints it as one JSON line)."""
        return {
            "event": "ready",
            "state_dir": str(self._state_dir),
            "trustee_url": self.trustee_url,
            "oss_endpoint": self.oss_endpoint,
            "kms_endpoint": self.kms_endpoint,
            "admin_url": self.admin_url,
            "credentials": str(self.credentials_path),
            "recipe": str(self.recipe_path),
            "seed": self._seed,
            "instance": dict(self._instance_info),
        }

    def health(self) -> dict[str, Any]:
        """Each component up or down (listening and accepting a TCP connection), with its active faults."""
        active = self._faults.active()
        comps: dict[str, Any] = {}
        for name, server in (
            ("trustee", self._trustee),
            ("oss", self._oss),
            ("kms", self._kms),
            ("admin", self._admin),
        ):
            port = url = None
            alive = False
            if server is not None:
                if name == "trustee":
                    assert isinstance(server, TrusteeLab)
                    port, url, alive = server.port, server.url, server.listening
                elif name == "kms":
                    assert isinstance(server, KmsLab)
                    alive = server.running
                    port = server.port if alive else None
                    url = server.endpoint if alive else None
                elif name == "oss":
                    assert isinstance(server, OssLab)
                    alive = server.running
                    port, url = server.port, server.endpoint
                else:
                    assert isinstance(server, AdminHTTPServer)
                    port, url, alive = server.port, server.url, True
            up = bool(alive and port and _probe(port))
            comps[name] = {
                "up": up,
                "url": url,
                "port": port,
                "faults": sorted(f for f in active if FAULTS[f].component == name),
            }
        return {"status": "ok" if all(c["up"] for c in comps.values()) else "degraded", "components": comps}
