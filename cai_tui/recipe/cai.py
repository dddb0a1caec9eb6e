"""Answers of the ``cai`` flow: Alibaba Cloud gn8v-tee + Confidential AI (seed 000, procedure CAI-*)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Section
from .secrets import SecretField
from .types import (
    AbsPath,
    BucketPath,
    HttpUrl,
    InstanceType,
    IpAddress,
    K8sName,
    KbsUri,
    KmsInstanceId,
    KmsSecretName,
    Port,
    Region,
    SamKeyId,
    Version,
)

SEED_VLLM_IMAGE = (
    "egslingjun-registry.cn-wulanchabu.cr.aliyuncs.com/egslingjun/llm-inference:"
    "vllm0.5.4-deepgpu-llm24.7-pytorch2.4.0-cuda12.4-ubuntu22.04"
)
SEED_TNG_IMAGE = "confidential-ai-registry.cn-shanghai.cr.aliyuncs.com/product/tng"


class SamSettings(Section):
    """CAI-1.6: the Sam packager (RAI_SAM_SDK) and its key."""

    sdk_dir: AbsPath | None = Field(None, description="unpacked RAI_SAM_SDK_2.1.0-20240731 directory")
    key: SecretField | None = Field(None, description="plaintext Sam key, 4–128 bytes (a reference)")
    key_id: SamKeyId | None = Field(None, description="Sam key ID, 8–48 bytes; the output lands in ./<key ID>/")


class ModelAnswers(Section):
    """CAI-1.x: where the model comes from and how it is encrypted."""

    source: Literal["modelscope", "local", "public-encrypted"] = Field(
        "modelscope",
        description="download with modelscope, use a local directory, or the seed's pre-encrypted model (CAI-1.0)",
    )
    model_id: str = Field("Qwen/Qwen2.5-3B-Instruct", min_length=3, description="modelscope model ID")
    local_dir: AbsPath | None = Field(None, description="plaintext model directory (config.json, tokenizer, weights)")
    encryption_method: Literal["gocryptfs", "sam"] = Field("gocryptfs", description="MODEL_ENCRYPTION_METHOD")
    password: SecretField | None = Field(
        None, description="gocryptfs password (a reference), e.g. file:~/cachefs-password"
    )
    cipher_dir: AbsPath | None = Field(None, description="where the ciphertext is written, e.g. ~/mount/cipher")
    gocryptfs_engine: Literal["native", "fuse"] = Field("native", description="native writer, or the seed's FUSE copy")
    sam: SamSettings = Field(default_factory=SamSettings)

    @model_validator(mode="after")
    def _method_inputs(self) -> ModelAnswers:
        if self.source == "local" and self.local_dir is None:
            raise ValueError("source is local, so local_dir must name the plaintext model directory")
        return self


class OssAnswers(Section):
    """CAI-1.7 / CAI-4.1 / CAI-5.1: the bucket holding the ciphertext."""

    region: Region = Field("cn-beijing", description="OSS region; same as the instance's")
    endpoint: HttpUrl = Field(
        "https://oss-cn-beijing-internal.aliyuncs.com", description="MODEL_OSS_ENDPOINT as the instance reaches it"
    )
    upload_endpoint: HttpUrl | None = Field(
        None, description="endpoint for uploads from outside the VPC (the public one); -internal only resolves inside"
    )
    bucket_path: BucketPath = Field(description="MODEL_OSS_BUCKET_PATH, <bucket>:/<path>")
    access_key_id: SecretField | None = Field(None, description="MODEL_OSS_ACCESS_KEY_ID (a reference)")
    access_key_secret: SecretField | None = Field(None, description="MODEL_OSS_SECRET_ACCESS_KEY (a reference)")
    session_token: SecretField | None = Field(None, description="MODEL_OSS_SESSION_TOKEN, STS only (a reference)")
    account_uid: str | None = Field(None, pattern=r"^\d{6,20}$", description="account UID for bucket-policy resources")


class KmsAnswers(Section):
    """CAI-2.1 / CAI-2.6: the KMS instance Trustee uses, and the model key's secret."""

    region: Region = Field("cn-hangzhou", description="the ACK cluster's region (KMS must be in it)")
    instance_id: KmsInstanceId | None = Field(None, description="KMS instance ID, kst-…")
    client_key_file: AbsPath | None = Field(None, description="clientKey_*.json from the application access point")
    password_file: AbsPath | None = Field(None, description="clientKey_*_Password.txt")
    ca_file: AbsPath | None = Field(None, description="PrivateKmsCA_kst-*.pem, the instance CA certificate")
    secret_name: KmsSecretName = Field("model-decryption-key", description="generic secret holding the model password")
    endpoint: str | None = Field(
        None, description="KMS OpenAPI endpoint (host[:port], no scheme); default kms.<region>.aliyuncs.com"
    )
    access_key_id: SecretField | None = Field(None, description="AccessKey ID for creating the secret via the API")
    access_key_secret: SecretField | None = Field(
        None, description="AccessKey secret for creating the secret via the API"
    )


class HelmAnswers(Section):
    """CAI-2.3: the Trustee chart install."""

    release: K8sName = Field("trustee", description="DEPLOY_RELEASE_NAME")
    namespace: K8sName = Field("default", description="DEPLOY_NAMESPACE")
    chart_version: Version = Field("1.0.0", description="TRUSTEE_CHART_VERSION")
    region: Region = Field("cn-hangzhou", description="REGION_ID of the ACK cluster")


class TrusteeAnswers(Section):
    """CAI-2.4..2.6 / CAI-5.1: where the instance and client reach Trustee."""

    url: HttpUrl | None = Field(None, description="TRUSTEE_URL, e.g. http://alb-….alb.aliyuncsslb.com/trustee")
    policy: str = Field("default", min_length=1, description="TRUSTEE_POLICY")
    model_key_id: KbsUri = Field("kbs:///default/aliyun/model-decryption-key", description="MODEL_KEY_ID")
    protocol_version: Version = Field(
        "0.1.0", description="KBS protocol version the client speaks (the seed's test: 0.1.0)"
    )
    verify_tls: bool = Field(True, description="verify Trustee's TLS certificate (the seed's curl -k does not)")
    ca_file: AbsPath | None = Field(None, description="CA bundle for Trustee's certificate")
    admin_private_key: SecretField | None = Field(None, description="Ed25519 admin key (PEM) for setting resources")
    helm: HelmAnswers = Field(default_factory=HelmAnswers)


class InstanceAnswers(Section):
    """CAI-3 / CAI-4 / CAI-6.1: the gn8v-tee instance and the client."""

    type: InstanceType = Field("ecs.gn8v-tee.4xlarge", description="instance type")
    image: str = Field(
        "Alibaba Cloud Linux 3.2104 LTS 64-bit single-GPU Confidential AI", description="marketplace image"
    )
    system_disk_gib: int = Field(1024, ge=20, le=32768, description="system disk size in GiB (≥ 1 TiB and > 2 × model)")
    public_ip: IpAddress | None = Field(None, description="the instance's public IP (bucket policy, ACL, client)")
    vpc_egress_ip: IpAddress | None = Field(None, description="the instance VPC's public egress IP (Trustee ACL)")
    client_ip: IpAddress | None = Field(None, description="the inference client's egress IP (Trustee ACL)")


class ServiceAnswers(Section):
    """CAI-5.x: cai.env and the inference container."""

    port: Port = Field(8080, description="MODEL_SERVICE_PORT; traffic on it is protected by TNG")
    mount_point: AbsPath = Field("/tmp/model", description="MODEL_MOUNT_POINT")
    sharing_peers: list[IpAddress] = Field(
        default_factory=list, description="MODEL_SHARING_PEER; empty disables sharing"
    )
    deploy_with: Literal["docker", "compose"] = Field(
        "compose", description="docker run (CAI-5.3) or compose (CAI-5.4)"
    )
    vllm_image: str = Field(SEED_VLLM_IMAGE, min_length=1, description="inference image")
    cai_compose_file: AbsPath = Field("/opt/alibaba/cai-docker/docker-compose.yml", description="the image's CAI stack")
    env_file: AbsPath = Field("~/cai.env", description="where cai.env is written on the instance")
    compose_file: AbsPath = Field("~/docker-compose.yml", description="where the including compose file is written")
    compose_overrides: list[AbsPath] = Field(
        default_factory=list, description="extra compose files passed with -f after the main file"
    )


class TngAnswers(Section):
    """CAI-6.2..6.4: the TNG client on the inference client."""

    version: Version = Field("1.0.3", description="TNG image tag; the generated config follows its schema")
    image: str = Field(SEED_TNG_IMAGE, min_length=1, description="TNG image (without tag)")
    proxy_host: IpAddress = Field("127.0.0.1", description="where the HTTP CONNECT proxy listens")
    proxy_port: Port = Field(41000, description="proxy port")
    prompt: str = Field("Do you know the book Traction by Gino Wickman", description="the test prompt")
    max_tokens: int = Field(132, ge=1, le=32768)


class CaiAnswers(Section):
    model: ModelAnswers = Field(default_factory=ModelAnswers)
    oss: OssAnswers
    kms: KmsAnswers = Field(default_factory=KmsAnswers)
    trustee: TrusteeAnswers = Field(default_factory=TrusteeAnswers)
    instance: InstanceAnswers = Field(default_factory=InstanceAnswers)
    service: ServiceAnswers = Field(default_factory=ServiceAnswers)
    tng: TngAnswers = Field(default_factory=TngAnswers)

    @model_validator(mode="after")
    def _cross_checks(self) -> CaiAnswers:
        if self.oss.access_key_secret is not None and self.oss.access_key_id is None:
            raise ValueError("oss.access_key_secret is set but oss.access_key_id is not; give both or neither")
        return self
