"""Pseudonyms: consistent, loopback kept, versions and timestamps left alone, the recipe's hosts found."""

from __future__ import annotations

from pathlib import Path

from cai_tui.bundle.facts import EXTRA_FACTS, FACTS
from cai_tui.bundle.pseudonymize import Pseudonymizer, hosts_of_recipe
from cai_tui.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]


def test_consistent_pseudonyms_and_kept_addresses() -> None:
    p = Pseudonymizer(["gpu-box-7.internal"])
    a = p.apply("ssh root@203.0.113.7 (gpu-box-7.internal) → oss-cn-beijing-internal.aliyuncs.com; peer 198.51.100.2")
    b = p.apply("again 203.0.113.7 and GPU-BOX-7.internal, fe80::1ff:fe23:4567:890a, 127.0.0.1, ::1, localhost")
    assert a == "ssh root@10.0.0.1 (host-1) → host-2; peer 10.0.0.2"
    assert b == "again 10.0.0.1 and host-1, fd00::1, 127.0.0.1, ::1, localhost"
    assert p.mapping() == {
        "ipv4": {"203.0.113.7": "10.0.0.1", "198.51.100.2": "10.0.0.2"},
        "ipv6": {"fe80::1ff:fe23:4567:890a": "fd00::1"},
        "hosts": {"gpu-box-7.internal": "host-1", "oss-cn-beijing-internal.aliyuncs.com": "host-2"},
    }


def test_versions_times_masks_and_macs_are_not_addresses() -> None:
    p = Pseudonymizer()
    text = "driver 550.127.08, kernel 5.10.134-16.al8, v1.2.3.4, 12:34:56, 255.255.255.0, 0.0.0.0, aa:bb:cc:dd:ee:ff"
    assert p.apply(text) == text and p.count == 0


def test_hosts_of_the_seed_recipe() -> None:
    rec = load_recipe(REPO / "recipes/cai-qwen2.5-3b-beijing.yaml").recipe
    hosts = hosts_of_recipe(rec)
    assert "oss-cn-beijing-internal.aliyuncs.com" in hosts and "oss-cn-beijing.aliyuncs.com" in hosts
    assert "alb-example.cn-hangzhou.alb.aliyuncsslb.com" in hosts
    assert not any(h.startswith(("~", "/")) or "Qwen" in h for h in hosts), hosts


def test_facts_agree_with_the_capture_script() -> None:
    """facts/ uses scripts/capture-machine.sh's names and commands, so the two stay interchangeable."""
    import shlex

    script = (REPO / "scripts/capture-machine.sh").read_text().splitlines()
    listed = [shlex.split(line)[1:] for line in script if line.startswith("c ")]
    assert len(listed) > 15
    assert [(n, list(argv)) for n, argv in FACTS] == [(args[0], args[1:]) for args in listed]
    names = [n for n, _ in (*FACTS, *EXTRA_FACTS)]
    assert len(names) == len(set(names))
