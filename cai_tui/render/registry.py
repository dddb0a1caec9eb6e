"""The artifact kinds that stage specs name (``artifacts:``), each with its renderer."""

from __future__ import annotations

from .alb import AlbAcl
from .base import Renderer
from .bucket_policy import BucketPolicy
from .cai_env import CaiEnv
from .compose import Compose, VllmRun
from .helm import HelmInstall
from .kata import CniConf, CtrRun, GpuBindScript, VllmServe
from .kata_config import KataConfigPatch
from .kata_hook import KataHook
from .kms_secret import KmsSecret
from .tng import TngClient
from .vllm_dockerfile import VllmDockerfile

_RENDERERS: dict[str, Renderer] = {
    r.kind: r
    for r in (
        CaiEnv(),
        Compose(),
        VllmRun(),
        TngClient(),
        HelmInstall(),
        KmsSecret(),
        BucketPolicy(),
        AlbAcl(),
        CniConf(),
        GpuBindScript(),
        CtrRun(),
        VllmServe(),
        KataHook(),
        KataConfigPatch(),
        VllmDockerfile(),
    )
}


def all_ids() -> list[str]:
    return list(_RENDERERS)


def get(kind: str) -> Renderer:
    try:
        return _RENDERERS[kind]
    except KeyError:
        raise KeyError(f"unknown artifact {kind!r}; known: {', '.join(_RENDERERS)}") from None


def for_flow(flow: str) -> list[Renderer]:
    return [r for r in _RENDERERS.values() if r.flow == flow]
