"""The lab's names and numbers (ports, files, credential keys, the demo bucket policy), its errors, fresh random
credentials (:class:`LabKeys`) and the port helpers."""

from __future__ import annotations

import errno
import logging
import secrets
import socket
import string
import time
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from .demo import (
    DEMO_BUCKET,
)
from .faults import FAULTS, UnknownFault, parse_fault_list
from .httpbase import LOOPBACK
from .trustee import generate_admin_keypair

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
