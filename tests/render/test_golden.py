"""Every artifact kind, rendered from the seed recipes without resolving secrets, matches its golden file.

CAI kinds use recipes/cai-qwen2.5-3b-beijing.yaml plus the addresses the seed leaves to the user (documentation IPs
and an example account UID, see conftest.SEED_EXTRAS); kata kinds use recipes/kata-virtcca-qwen1.5-1.8b.yaml.
Regenerate with ``CAI_TUI_UPDATE_GOLDEN=1 pytest tests/render/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cai_tui.render import all_ids, get
from cai_tui.render.base import Rendered

GOLDEN = Path(__file__).with_name("golden")
UPDATE = os.environ.get("CAI_TUI_UPDATE_GOLDEN") == "1"


NAMES = {
    "cai-env": "cai.env",
    "compose": "docker-compose.yml",
    "bucket-policy": "bucket-policy.json",
    "kms-secret": "kms-secret.txt",
    "cni-conf": "vllmnet.conf",
}


def golden_name(kind: str) -> str:
    return NAMES.get(kind, f"{kind}.sh")


@pytest.mark.parametrize("kind", all_ids())
def test_golden(kind: str, cai_full, kata_seed) -> None:
    renderer = get(kind)
    recipe = cai_full if renderer.flow == "cai" else kata_seed
    out = renderer.render(recipe, resolve=False)
    assert isinstance(out, Rendered)
    assert not out.secrets_resolved
    path = GOLDEN / golden_name(kind)
    if UPDATE:
        path.write_text(out.text, encoding="utf-8")
    assert path.is_file(), f"no golden file for {kind}: run with CAI_TUI_UPDATE_GOLDEN=1"
    assert out.text == path.read_text(encoding="utf-8")


def test_cai_env_golden_has_placeholders_and_seed_comments() -> None:
    text = (GOLDEN / "cai.env").read_text(encoding="utf-8")
    assert 'MODEL_OSS_SECRET_ACCESS_KEY="<from env:OSS_ACCESS_KEY_SECRET>"' in text
    assert 'MODEL_OSS_ACCESS_KEY_ID="<from env:OSS_ACCESS_KEY_ID>"' in text
    assert "\nMODEL_OSS_SESSION_TOKEN=\n" in text
    assert '\n# MODEL_SHARING_PEER="172.30.xxx.xxx 172.30.xxx.xxx"\n' in text
    assert 'TRUSTEE_URL="http://alb-example.cn-hangzhou.alb.aliyuncsslb.com/trustee/"' in text
    assert "# 解密后模型明文的挂载位置,模型推理服务可以从该路径加载模型" in text


def test_modes_and_paths(cai_full) -> None:
    assert get("cai-env").render(cai_full).mode == 0o600
    assert get("cai-env").render(cai_full).path == "~/cai.env"
    assert get("compose").render(cai_full).path == "~/docker-compose.yml"
    assert get("vllm-run").render(cai_full).mode == 0o755


def test_every_stage_artifact_is_either_implemented_or_pending() -> None:
    from cai_tui.stages import load_all

    named = {a for f in load_all().values() for s in f.stages for st in s.steps for a in _artifacts(st)}
    pending = {"support-bundle", "kata-hook", "kata-config-patch", "vllm-dockerfile"}
    assert set(all_ids()) <= named
    assert named - set(all_ids()) <= pending


def _artifacts(step) -> list[str]:
    out = []
    for d in getattr(step, "do", None) or []:
        art = getattr(d, "artifact", None)
        if art:
            out.append(art)
    return out
