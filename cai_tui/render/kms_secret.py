"""CAI-2.6: the KMS generic secret that holds the model key — what to create, and creating it with the SDK.

Trustee (KMS backend) serves ``kbs:///<repo>/<type>/<tag>`` from the KMS secret named ``<tag>``; the secret's value
is the password the model was encrypted with. The rendering never contains the value (even when resolving).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..recipe import CaiRecipe, SecretRef, resolve_secret
from .base import Prompter, Rendered, Renderer, RenderError, placeholder

VERSION_ID = "v1"


@dataclass(frozen=True)
class SecretPlan:
    name: str
    value_ref: SecretRef
    value_field: str
    kbs_uri: str
    instance_id: str | None
    region: str


def plan(recipe: CaiRecipe) -> SecretPlan:
    a = recipe.answers
    if a.model.encryption_method == "sam":
        ref, field = a.model.sam.key, "model.sam.key"
    else:
        ref, field = a.model.password, "model.password"
    if ref is None:
        raise RenderError(f"answers.{field} is not set; the secret's value is the key the model was encrypted with")
    tag = a.trustee.model_key_id.rstrip("/").rsplit("/", 1)[-1]
    if tag != a.kms.secret_name:
        raise RenderError(
            f"MODEL_KEY_ID {a.trustee.model_key_id} asks Trustee for secret {tag!r}, but answers.kms.secret_name is "
            f"{a.kms.secret_name!r}; make them the same (kbs:///default/aliyun/<secret name>)"
        )
    return SecretPlan(a.kms.secret_name, ref, field, a.trustee.model_key_id, a.kms.instance_id, a.kms.region)


class KmsSecret(Renderer):
    kind = "kms-secret"
    title = "the KMS secret holding the model key (CAI-2.6)"
    flow = "cai"
    default_path = "~/kms-secret.txt"
    mode = 0o644

    def render(self, recipe: CaiRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        p = plan(recipe)
        lines = [
            "# CAI-2.6: create this generic secret in the KMS console (资源 > 凭据管理 > 通用凭据 > 创建凭据),",
            "# or let cai-tui create it through the KMS SDK (needs answers.kms.access_key_id/_secret).",
            f"KMS instance:        {p.instance_id or '<answers.kms.instance_id>'} ({p.region})",
            f"Secret name (凭据名称): {p.name}",
            f"Secret value (凭据值): {placeholder(p.value_ref)}   # the model's encryption key ({p.value_field})",
            "Encryption key (加密主密钥): the customer master key created in CAI-2.1",
            f"Version ID:          {VERSION_ID}",
            f"Trustee serves it as {p.kbs_uri}  (MODEL_KEY_ID in cai.env)",
        ]
        return self.done("\n".join(lines) + "\n")


def create_secret(
    recipe: CaiRecipe,
    client: Any,
    *,
    encryption_key_id: str | None = None,
    prompt: Prompter | None = None,
) -> Any:
    """``CreateSecret`` with the resolved model key; ``client`` is an ``alibabacloud_kms20160120`` Client."""
    from alibabacloud_kms20160120 import models as kms_models

    p = plan(recipe)
    value = resolve_secret(p.value_ref, field=p.value_field, prompt=prompt, what="model key")
    request = kms_models.CreateSecretRequest(
        secret_name=p.name,
        secret_data=value,
        secret_data_type="text",
        version_id=VERSION_ID,
        encryption_key_id=encryption_key_id,
        dkmsinstance_id=p.instance_id,
        description="model decryption key (cai-tui, CAI-2.6)",
    )
    return client.create_secret(request).body


def sdk_client(recipe: CaiRecipe, *, prompt: Prompter | None = None, timeout: float = 15.0) -> Any:
    """A KMS OpenAPI client from the recipe's AccessKey references."""
    from alibabacloud_kms20160120.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    k = recipe.answers.kms
    if k.access_key_id is None or k.access_key_secret is None:
        raise RenderError("creating the secret needs answers.kms.access_key_id and answers.kms.access_key_secret")
    endpoint = (k.endpoint or f"kms.{k.region}.aliyuncs.com").strip()
    plain_http = endpoint.startswith("http://")
    endpoint = endpoint.split("://", 1)[-1].rstrip("/")
    config = open_api_models.Config(
        access_key_id=resolve_secret(k.access_key_id, field="kms.access_key_id", prompt=prompt),
        access_key_secret=resolve_secret(k.access_key_secret, field="kms.access_key_secret", prompt=prompt),
        region_id=k.region,
        endpoint=endpoint,
        protocol="http" if plain_http else "https",
        connect_timeout=int(timeout * 1000),
        read_timeout=int(timeout * 1000),
    )
    return Client(config)
