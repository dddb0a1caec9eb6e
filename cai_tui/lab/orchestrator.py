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

The parts, one module each: :mod:`.lab_basics` (names, errors, keys), :mod:`.lab_state` (state and what the lab
offers), :mod:`.lab_instance`, :mod:`.lab_seed`; this module holds the lifecycle.
"""

from __future__ import annotations

import fcntl
import os
import time

from .admin import AdminHTTPServer
from .demo import (
    DEMO_BUCKET,
    DEMO_KEY_URI,
    DEMO_SECRET_NAME,
    ensure_bare,
    ensure_demo,
)
from .kms import KmsCredentials, KmsLab
from .lab_basics import (
    ADMIN_KEY_FILE,
    COMPONENT_TITLES,
    COMPONENTS,
    CREDENTIAL_KEYS,
    CREDENTIALS_FILE,
    DEFAULT_PORT_BASE,
    DEMO_ACCOUNT_UID,
    DEMO_BUCKET_POLICY,
    KMS_INSTANCE_ID,
    LOCK_FILE,
    READY_KEYS,
    RECIPE_FILE,
    REGION,
    SEEDS,
    SIDE_BY_SIDE,
    STS_TTL_S,
    LabBusy,
    LabError,
    LabKeys,
    LabPortInUse,
    check_ports_free,
    default_state_dir,
    log,
)
from .lab_instance import LabInstance
from .lab_seed import LabSeeding
from .oss import OssCredentials, OssLab
from .trustee import TrusteeLab


class Lab(LabSeeding, LabInstance):
    """The lab; a context manager (``start()`` on enter, ``stop()`` on exit). See the module docstring."""

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

    def _ports(self) -> dict[str, int]:
        base = self._effective_port_base()
        if base is None:
            return dict.fromkeys(COMPONENTS, 0)
        return {name: base + i for i, name in enumerate(COMPONENTS)}


__all__ = [
    "ADMIN_KEY_FILE",
    "COMPONENTS",
    "COMPONENT_TITLES",
    "CREDENTIALS_FILE",
    "CREDENTIAL_KEYS",
    "DEFAULT_PORT_BASE",
    "DEMO_ACCOUNT_UID",
    "DEMO_BUCKET_POLICY",
    "KMS_INSTANCE_ID",
    "LOCK_FILE",
    "READY_KEYS",
    "RECIPE_FILE",
    "REGION",
    "SEEDS",
    "SIDE_BY_SIDE",
    "STS_TTL_S",
    "Lab",
    "LabBusy",
    "LabError",
    "LabKeys",
    "LabPortInUse",
    "check_ports_free",
    "default_state_dir",
]
