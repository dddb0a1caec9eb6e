"""The fault matrix: each fault the lab stack can be given, how it is injected, and which FAQ entry is the right fix.

A fault is injected through the lab (a fault switch, or a change to what the lab stores) and/or through wrong
``cai.env`` values or lab-only container settings, exactly as a user's mistake or a broken cloud service would
present itself. ``expect`` names, per compose service, the FAQ id whose fix is the right one; the first entry is
the service where the fault starts (the one that is measured for "right fix first"). ``also`` lists ids that are
not wrong for this fault (a more generic entry of the seed FAQ, or a consequence further down the stack), so that
a high-confidence finding outside ``expect`` ∪ ``also`` counts as a confident wrong answer.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Prepare = Callable[[Any, Path], dict[str, str]]  # (lab, tmp dir) → extra cai.env overrides


@dataclass(frozen=True)
class Fault:
    name: str
    how: str  # what was done, for the report
    expect: Mapping[str, str]  # service → the right FAQ id; the first item is the root service
    lab_faults: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # cai.env overrides ({PORT} etc. filled in by fill_env)
    service_env: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    mem_limit: Mapping[str, str] = field(default_factory=dict)  # service → compose mem_limit (swap included)
    prepare: Prepare | None = None
    also: frozenset[str] = frozenset()

    @property
    def root(self) -> str:
        return next(iter(self.expect))


def creds(lab: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(lab.credentials_path).read_text("utf-8"))
    return data


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill_env(values: Mapping[str, str], lab: Any) -> dict[str, str]:
    """Placeholders: {TRUSTEE_HOSTPORT} (127.0.0.1:port of the lab Trustee), {CLOSED} (a dead port)."""
    trustee = lab.trustee_url.split("://", 1)[1].split("/", 1)[0]
    out = {}
    for k, v in values.items():
        out[k] = v.replace("{TRUSTEE_HOSTPORT}", trustee).replace("{CLOSED}", str(closed_port()))
    return out


def _sts(lab: Any, _tmp: Path) -> dict[str, str]:
    c = creds(lab)
    return {
        "MODEL_OSS_ACCESS_KEY_ID": c["oss_sts_access_key_id"],
        "MODEL_OSS_SECRET_ACCESS_KEY": c["oss_sts_access_key_secret"],
        "MODEL_OSS_SESSION_TOKEN": c["oss_sts_token"],
    }


def _wrong_secret_value(lab: Any, _tmp: Path) -> dict[str, str]:
    """The KMS secret gets a new current version holding another password (the model stays as it was)."""
    from alibabacloud_kms20160120 import models as kms_models

    from tests.conftest import LabClients

    c = creds(lab)
    LabClients(lab.credentials_path).kms().put_secret_value(
        kms_models.PutSecretValueRequest(
            secret_name=c["kms_secret_name"], version_id="v-wrong", secret_data="not-the-model-password"
        )
    )
    return {}


def _nested_model(lab: Any, tmp: Path) -> dict[str, str]:
    """The demo model encrypted one folder too deep (cipher root holds ``demo-model/``), uploaded under nested/."""
    from cai_tui.gocryptfs import encrypt_tree
    from tests.conftest import LabClients

    plain = tmp / "nested-plain"
    shutil.copytree(lab.demo.model_dir, plain / "demo-model")
    cipher = tmp / "nested-cipher"
    encrypt_tree(plain, cipher, lab.demo.password.encode("utf-8"), creator="cai-tui fault matrix")
    bucket = LabClients(lab.credentials_path).oss_bucket()
    for path in sorted(cipher.rglob("*")):
        if path.is_file():
            bucket.put_object_from_file(f"nested/{path.relative_to(cipher).as_posix()}", str(path))
    return {"MODEL_OSS_BUCKET_PATH": f"{bucket.bucket_name}:/nested/"}


OSS = "oss"
CDH = "confidential-data-hub"
TNG = "tng"
AA = "attestation-agent"
CACHEFS = "cachefs"
INFERENCE = "inference"

FAULTS: list[Fault] = [
    # --- OSS (CAI-F1) ------------------------------------------------------------------------------------------------
    Fault("oss-access-denied", "lab switch oss-access-denied", {OSS: "oss-access-denied"}, ("oss-access-denied",)),
    Fault("oss-no-such-bucket", "lab switch oss-no-such-bucket", {OSS: "oss-no-such-bucket"}, ("oss-no-such-bucket",)),
    Fault("oss-bad-signature", "lab switch oss-bad-signature", {OSS: "oss-signature-mismatch"}, ("oss-bad-signature",)),
    Fault("oss-clock-skew", "lab switch oss-skew (server 20 min ahead)", {OSS: "oss-clock-skew"}, ("oss-skew",)),
    Fault(
        "oss-sts-expired",
        "cai.env carries STS credentials; lab switch oss-token-expired",
        {OSS: "oss-token-expired"},
        ("oss-token-expired",),
        prepare=_sts,
    ),
    Fault(
        "env-oss-wrong-secret",
        "cai.env MODEL_OSS_SECRET_ACCESS_KEY wrong",
        {OSS: "oss-signature-mismatch"},
        env={"MODEL_OSS_SECRET_ACCESS_KEY": "WrongSecretWrongSecretWrongSe"},
    ),
    Fault(
        "env-oss-unknown-key",
        "cai.env MODEL_OSS_ACCESS_KEY_ID unknown to OSS",
        {OSS: "oss-invalid-access-key"},
        env={"MODEL_OSS_ACCESS_KEY_ID": "LTAI5tNoSuchKeyIdAtAll00"},
    ),
    Fault(
        "env-oss-wrong-bucket",
        "cai.env MODEL_OSS_BUCKET_PATH names a bucket that does not exist",
        {OSS: "oss-no-such-bucket"},
        env={"MODEL_OSS_BUCKET_PATH": "no-such-models:/demo-gocryptfs/"},
    ),
    Fault(
        "env-oss-endpoint-dead",
        "cai.env MODEL_OSS_ENDPOINT points at a closed port",
        {OSS: "oss-unreachable"},
        env={"MODEL_OSS_ENDPOINT": "http://127.0.0.1:{CLOSED}"},
    ),
    # --- Trustee / KBS (CAI-F2, CAI-F3) ------------------------------------------------------------------------------
    Fault(
        "trustee-down",
        "lab switch trustee-down (the Trustee port refuses connections)",
        {CDH: "trustee-unreachable"},  # tng (background check) does not call Trustee; its client does
        ("trustee-down",),
    ),
    Fault(
        "trustee-hang",
        "lab switch trustee-hang (accepts, never answers)",
        {CDH: "trustee-unreachable"},  # likewise
        ("trustee-hang",),
    ),
    Fault(
        "kbs-version-mismatch",
        "lab switch kbs-version-mismatch (KBS speaks another protocol version)",
        {CDH: "kbs-protocol-mismatch"},
        ("kbs-version-mismatch",),
    ),
    Fault("kbs-policy-deny", "lab switch kbs-policy-deny", {CDH: "kbs-policy-deny"}, ("kbs-policy-deny",)),
    Fault(
        "kbs-resource-missing",
        "lab switch kbs-resource-missing",
        {CDH: "kbs-resource-missing"},
        ("kbs-resource-missing",),
    ),
    Fault(
        "kms-secret-missing",
        "lab switch kms-secret-missing (Trustee's KMS backend finds no secret)",
        {CDH: "kbs-resource-missing"},
        ("kms-secret-missing",),
        also=frozenset({"kms-secret-missing"}),
    ),
    Fault(
        "trustee-backend-down",
        "lab switch gateway-backend-down (the gateway answers, KBS/AS behind it do not)",
        {CDH: "trustee-backend-down"},  # tng (background check) does not call Trustee; its client does
        ("gateway-backend-down",),
    ),
    Fault(
        "env-trustee-dead-port",
        "cai.env TRUSTEE_URL points at a closed port",
        {CDH: "trustee-unreachable"},
        env={"TRUSTEE_URL": "http://127.0.0.1:{CLOSED}/trustee/"},
    ),
    Fault(
        "env-trustee-no-scheme",
        "cai.env TRUSTEE_URL without http://",
        {CDH: "trustee-bad-url"},
        env={"TRUSTEE_URL": "{TRUSTEE_HOSTPORT}/trustee/"},
        also=frozenset({"trustee-bad-url", "tng-config-invalid"}),
    ),
    Fault(
        "env-trustee-wrong-path",
        "cai.env TRUSTEE_URL with the wrong path (/kbs instead of /trustee)",
        {CDH: "trustee-bad-url"},
        env={"TRUSTEE_URL": "http://{TRUSTEE_HOSTPORT}/kbs/"},
        also=frozenset({"trustee-bad-url"}),
    ),
    Fault(
        "env-key-id-unknown",
        "cai.env MODEL_KEY_ID names a secret that does not exist",
        {CDH: "kbs-resource-missing"},
        env={"MODEL_KEY_ID": "kbs:///default/aliyun/no-such-model-key"},
    ),
    Fault(
        "env-key-id-malformed",
        "cai.env MODEL_KEY_ID is not a kbs:/// URI",
        {CDH: "kbs-resource-uri-invalid"},
        env={"MODEL_KEY_ID": "model-decryption-key"},
    ),
    Fault(
        "env-trustee-policy-unknown",
        "cai.env TRUSTEE_POLICY names a policy Trustee does not have (tng in the passport model, which asks the AS)",
        {TNG: "tng-attestation-rejected"},
        env={"TRUSTEE_POLICY": "no-such-policy"},
        service_env={TNG: {"CAI_LAB_TNG_MODEL": "passport"}},
    ),
    Fault(
        "env-service-port-invalid",
        "cai.env MODEL_SERVICE_PORT is not a port number",
        {TNG: "tng-config-invalid"},
        env={"MODEL_SERVICE_PORT": "80a"},
    ),
    Fault(
        "no-tee",
        "attestation-agent on a machine without a TEE (the lab's sample attester switched off)",
        {AA: "tee-not-detected"},
        service_env={AA: {"CAI_LAB_ATTESTER": None}},
        also=frozenset({"aa-unreachable", "tng-aa-unreachable"}),
    ),
    # --- model (CAI-F4) ----------------------------------------------------------------------------------------------
    Fault(
        "kms-wrong-password",
        "the KMS secret's current version holds another password than the model's",
        {CACHEFS: "model-password-wrong"},
        prepare=_wrong_secret_value,
    ),
    Fault(
        "env-oss-path-too-high",
        "cai.env MODEL_OSS_BUCKET_PATH points at the bucket root, one level above the cipher directory",
        {CACHEFS: "model-not-gocryptfs"},
        env={"MODEL_OSS_BUCKET_PATH": "lab-models:/"},
    ),
    Fault(
        "model-nested",
        "the model was encrypted with its parent folder (config.json one level down after decryption)",
        {INFERENCE: "model-layout-nested"},
        prepare=_nested_model,
    ),
    Fault(
        "no-gpu",
        "inference started without a GPU (the lab's CPU switch removed)",
        {INFERENCE: "gpu-missing"},
        service_env={INFERENCE: {"CAI_LAB_DEVICE": None}},
        also=frozenset({"docker-nvidia-runtime-missing", "nvml-init-failed"}),
    ),
    Fault(
        "inference-oom",
        "inference given a 6 MiB memory limit without swap (compose mem_limit): the kernel's OOM killer ends it as "
        "it starts, as it ends a vLLM whose weights outgrow the instance's memory",
        {INFERENCE: "container-oom-killed"},
        mem_limit={INFERENCE: "6m"},
    ),
]
