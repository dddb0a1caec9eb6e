"""The shipped FAQ knowledge base loads, validates, and holds what the doctor and the wizard refer to."""

from __future__ import annotations

import re

import pytest

from cai_tui.catalog import known_ids
from cai_tui.faq import SERVICES, Bilingual, load_kb
from cai_tui.faq.kb import default_kb
from cai_tui.resources import data_dir

REQUIRED = [
    "oss-access-denied",
    "oss-no-such-bucket",
    "oss-invalid-access-key",
    "oss-signature-mismatch",
    "oss-token-expired",
    "oss-unreachable",
    "trustee-unreachable",
    "trustee-bad-url",
    "kbs-protocol-mismatch",
    "kbs-resource-missing",
    "kbs-policy-deny",
    "tee-not-detected",
    "pccs-unreachable",
    "trustee-backend-down",
    "tng-config-invalid",
    "tng-aa-unreachable",
    "tng-attestation-rejected",
    "model-password-wrong",
    "model-not-gocryptfs",
    "model-layout-nested",
    "gpu-cc-off",
    "gpu-cc-not-ready",
    "gpu-missing-in-guest",
    "nvml-init-failed",
    "cuda-oom",
    "vfio-no-iommu-group",
    "vfio-group-not-viable",
    "vfio-device-missing",
    "vfio-probe-failed",
    "kata-hook-missing",
    "oss-clock-skew",
    "kms-secret-missing",
    "kms-client-key-invalid",
    "disk-too-small",
    "gpu-missing",
    "docker-too-old",
    "compose-too-old",
    "cai-container-unhealthy",
    "inference-unreachable",
    "model-not-served",
    "tng-proxy-down",
    "kata-config-missing",
    "kernel-config-missing",
    "host-not-arm",
    "cni-network-broken",
]

# the seed document's FAQ (常见问题): one entry per failing container, and the bug reporter
SEED = {
    "cai-oss-failed": ("oss", "CAI-F1"),
    "cai-cdh-failed": ("confidential-data-hub", "CAI-F2"),
    "cai-tng-failed": ("tng", "CAI-F3"),
    "cai-cachefs-failed": ("cachefs", "CAI-F4"),
    "cai-bug-reporter": (None, "CAI-F5"),
}
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def test_loads_from_the_shipped_folder(kb):
    assert (data_dir("assets") / "faq" / "seed.yaml").is_file()
    assert len(kb) >= len(REQUIRED) + len(SEED)
    assert default_kb() is default_kb()  # cached: the matcher does not reload per call
    assert len(default_kb()) == len(kb)


@pytest.mark.parametrize("faq_id", REQUIRED + sorted(SEED))
def test_required_entry_is_complete(kb, faq_id):
    e = kb.get(faq_id)
    for text in (e.title, e.cause, e.fix):
        assert text.en and text.zh and text.en != text.zh
        assert CJK.search(text.zh) and not CJK.search(text.en)
    assert e.source.kind in ("seed", "upstream") and e.source.ref.strip()


def test_seed_entries_follow_the_seed_faq(kb):
    for faq_id, (service, step) in SEED.items():
        e = kb.get(faq_id)
        assert e.source.kind == "seed" and e.source.ref == "seed 000 FAQ"
        assert step in e.procedure
        if service:
            assert service in e.applies_to.services
            assert {p.health for p in e.patterns if p.health} == {"unhealthy", "exited", "restarting"}
    # the seed's wording, so a user who read the document recognises the entry
    assert "cai-docker-oss容器启动失败" in kb.get("cai-oss-failed").title.zh
    assert "无法访问模型密文所在的OSS" in kb.get("cai-oss-failed").cause.zh
    assert "MODEL_ENCRYPTION_METHOD" in kb.get("cai-cachefs-failed").fix.zh
    assert "cai-diagnostic.tar.gz" in kb.get("cai-bug-reporter").fix.en


def test_chinese_text_has_no_folding_spaces(kb):
    """YAML folding puts a space where a line breaks; between Chinese characters it must go."""
    folded = Bilingual(en="a b", zh="1. 第一行\n第二行，  继续 CAI-4.1 配置 `ls -l /dev/vfio`。 2. 再试").zh
    assert folded == "1. 第一行第二行，继续CAI-4.1配置`ls -l /dev/vfio`。2. 再试"
    between = re.compile(r"[\u4e00-\u9fff，。：；（）]\s|(?<!\d\.)\s[\u4e00-\u9fff，。：；（）]")
    spaced = [(e.id, m.group()) for e in kb for t in (e.title, e.cause, e.fix) for m in between.finditer(t.zh)]
    assert spaced == []


def test_every_fix_names_something_to_change(kb):
    """A fix names a procedure step, a cai.env variable, a recipe field, or a command to run."""
    actionable = re.compile(
        r"(?<![A-Za-z0-9])(CAI|KATA)-(\d|F\d)|(?<![A-Za-z0-9_])[A-Z][A-Z0-9]*_[A-Z0-9_]+|"
        r"(?<![A-Za-z0-9_])[a-z]+\.[a-z_]+|`[^`]+`"
    )
    vague = [e.id for e in kb if not (actionable.search(e.fix.en) and actionable.search(e.fix.zh))]
    assert vague == []


def test_ids_services_and_check_ids_are_well_formed(kb):
    ids = kb.ids()
    assert len(ids) == len(set(ids)) == len(kb)
    for e in kb:
        assert set(e.applies_to.services) <= set(SERVICES)
        assert e.patterns or e.id in ("cai-bug-reporter",), e.id  # only the guide entry has nothing to match


def test_named_checks_exist_or_are_planned_by_a_stage(kb):
    """Check ids the KB names are registered checks, or checks a stage spec already plans (typos fail here)."""
    from cai_tui.stages import load_all

    planned = {c for flow in load_all().values() for s in flow.stages for c in s.checks}
    named = {c for e in kb for c in e.check_ids()}
    assert named - planned - known_ids("checks") == set()
    assert set(kb.unknown_checks) == named - known_ids("checks")


def test_lookups(kb):
    assert kb.get("oss-access-denied").id == "oss-access-denied"
    assert "oss-access-denied" in kb and "no-such-entry" not in kb
    with pytest.raises(KeyError, match="no-such-entry"):
        kb.get("no-such-entry")
    assert {"model-password-wrong", "cai-cachefs-failed"} <= {e.id for e in kb.for_check("kms.secret_matches")}
    assert "oss-access-denied" not in {e.id for e in kb.for_check("kms.secret_matches")}
    by_service = {e.id for e in kb.for_service("cachefs")}
    assert {"cai-cachefs-failed", "model-password-wrong", "model-not-gocryptfs"} <= by_service
    assert "oss-access-denied" not in by_service
    assert kb.for_service("nonexistent") == []
    assert kb.origin["oss-access-denied"].split(":")[-1].isdigit()  # file:line of the definition


def test_regexes_are_compiled_once_at_load(kb):
    for e in kb:
        for p in e.log_patterns:
            assert isinstance(p.regex, re.Pattern)
            assert p.regex.flags & re.IGNORECASE
