"""``cai-tui doctor``'s own words in en and zh (stage titles come from the stage specs, fixes from the FAQ)."""

from __future__ import annotations

LANGS = ("en", "zh")

STRINGS: dict[str, tuple[str, str]] = {
    "source": ("cai-tui doctor: {source}", "cai-tui doctor：{source}"),
    "optional": ("(optional)", "（可选）"),
    "waived": ("waived: {reason}", "已豁免：{reason}"),
    "evidence": ("evidence: {observed}  ({where})", "证据：{observed}（{where}）"),
    "fix": ("fix [{faq_id}]: {text}", "修复 [{faq_id}]：{text}"),
    "fix_check": ("{text}", "检查给出的说明：{text}"),
    "status.pass": ("pass", "通过"),
    "status.warn": ("warn", "警告"),
    "status.fail": ("fail", "失败"),
    "status.skip": ("skip", "跳过"),
    "status.unknown": ("unknown", "未知"),
    "count": ("{n} {status}", "{status} {n}"),
    "count_sep": (", ", "，"),
    "verdict_sep": (" — ", "——"),
    "tail_sep": ("; ", "；"),
    "ok": ("no required check failed", "没有必需检查失败"),
    "failed": ("{n} required check(s) failed", "{n} 项必需检查失败"),
    "unknown": (
        "{n} required check(s) unknown — required checks that could not be judged count as failures",
        "{n} 项必需检查结果未知——无法判定的必需检查按失败计",
    ),
    "nothing": ("nothing was checked", "没有检查任何内容"),
    "nothing_head": (
        "cai-tui doctor: nothing was checked — all {n} check(s) were skipped. Give what they judge:",
        "cai-tui doctor：没有检查任何内容——全部 {n} 项检查均被跳过。请提供检查所需的输入：",
    ),
    "nothing_recipe": (
        "  --recipe RECIPE          the recipe: Trustee, OSS, KMS and the model are checked from this workstation",
        "  --recipe 配方文件         配方：在本机检查 Trustee、OSS、KMS 和模型",
    ),
    "nothing_target": (
        "  --target URI             the machine to look inside (ssh://user@host[:port], docker://C, ctr://TASK, local)",
        "  --target URI             要检查的机器（ssh://user@host[:port]、docker://C、ctr://TASK、local）",
    ),
    "nothing_sysroot": (
        "  --sysroot DIR            or a mounted rootfs or capture of it (--captures of doctor --hosts)",
        "  --sysroot 目录           或该机器已挂载的根文件系统、采集结果（doctor --hosts 的 --captures）",
    ),
    "nothing_hosts": (
        "  --hosts INVENTORY        many hosts through Ansible",
        "  --hosts 清单文件          通过 Ansible 检查多台主机",
    ),
    "nothing_why": ("why they were skipped: {reasons}", "跳过原因：{reasons}"),
}


def text(key: str, lang: str, **values: object) -> str:
    en, zh = STRINGS[key]
    return (zh if lang == "zh" else en).format(**values)


__all__ = ["LANGS", "STRINGS", "text"]
