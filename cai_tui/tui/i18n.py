"""The interface's own strings in English and Chinese.

Stage texts come from the stage specs (``Text.get``); only the words of the shell itself live here.
Binding descriptions are translated by binding id, so the footer follows the language too.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

LANGS = ("en", "zh")

STRINGS: dict[str, tuple[str, str]] = {
    # bindings (keys are the binding ids)
    "quit": ("Quit", "退出"),
    "back": ("Back", "返回"),
    "lang": ("中文", "English"),
    "next": ("Next stage", "下一阶段"),
    "prev": ("Previous stage", "上一阶段"),
    "run_stage": ("Run stage", "执行阶段"),
    "checks": ("Checks", "检查"),
    "troubleshoot": ("Troubleshoot", "故障排查"),
    "save": ("Save", "保存"),
    "palette": ("Commands", "命令"),
    "theme": ("Light/dark", "明/暗主题"),
    "lab_faults": ("Lab faults", "实验环境故障开关"),
    "saved": ("Recipe saved to {path}", "配方已保存到 {path}"),
    "save_failed": ("Not saved", "未保存"),
    "save_nothing": (
        "No recipe is open: choose a flow or open a recipe first.",
        "尚未打开配方：请先选择流程或打开配方。",
    ),
    # start screen
    "app_title": ("cai-tui", "cai-tui"),
    "app_subtitle": ("confidential LLM inference, step by step", "机密计算大模型推理部署向导"),
    "choose_flow": ("Choose the procedure to follow (Enter opens it):", "选择要执行的部署流程（回车打开）："),
    "flow.cai": (
        "Alibaba Cloud heterogeneous confidential instance + Confidential AI (gn8v-tee)",
        "阿里云异构机密计算实例 + 可信 AI 推理（gn8v-tee）",
    ),
    "flow.kata-virtcca": (
        "openEuler kata-virtcca confidential container with GPU passthrough",
        "openEuler kata-virtcca 机密容器 GPU 直通",
    ),
    "flow_meta": ("{count} stages · {first} … {last} · flow {flow}", "{count} 个阶段 · {first} … {last} · 流程 {flow}"),
    "stage_meta": ("stage {order} · {ids}", "阶段 {order} · {ids}"),
    "your_recipe": ("  ◀ your recipe", "  ◀ 当前配方"),
    "recipe_loaded": ("Recipe {name} (flow {flow}) from {path}", "配方 {name}（流程 {flow}），文件 {path}"),
    "recipe_none": (
        "No recipe loaded: the stages are shown without values (start with --recipe FILE to see yours).",
        "未加载配方：仅显示各阶段说明（使用 --recipe 文件 启动可显示配置值）。",
    ),
    "recipe_failed": ("The recipe could not be loaded:", "配方加载失败："),
    "lab_running": ("Lab running on this machine", "本机实验环境已启动"),
    "lab_trustee": ("Trustee  ", "Trustee  "),
    "lab_oss": ("OSS      ", "OSS      "),
    "lab_kms": ("KMS      ", "KMS      "),
    "lab_recipe": ("Recipe   ", "配方     "),
    # flow screen
    "stages": ("Stages", "阶段"),
    "recipe_other_flow": (
        "The recipe {name} is for flow {flow}; its values are not shown in this flow.",
        "配方 {name} 属于流程 {flow}，本流程中不显示其配置值。",
    ),
    # stage detail
    "stage_n": ("Stage {order} of {count}", "第 {order} 阶段，共 {count} 个"),
    "covers": ("Covers: ", "对应步骤："),
    "fields": ("Fields", "配置项"),
    "no_fields": ("This stage asks for no input.", "本阶段无需填写配置项。"),
    "steps": ("Steps", "步骤"),
    "input": ("Input: ", "输入："),
    "input_none": ("none", "无"),
    "do": ("Do:", "执行："),
    "verify": ("Verify: ", "验证："),
    "manual": ("manual — ", "手动确认——"),
    "action": ("action", "操作"),
    "artifact": ("generates", "生成文件"),
    "command": ("run", "运行"),
    "command_on": ("run on {where}", "在{where}上运行"),
    "runs": ("runs: ", "执行："),
    "step_not_applicable": (
        "not for this recipe: this step is for {wanted} ({path} is {value}); nothing of it is run",
        "不适用于本配方：此步骤仅用于 {wanted}（{path} 为 {value}），不会执行",
    ),
    "unset": ("unset", "未设置"),
    # target roles (the recipe's targets: keys) as the stage texts name them
    "role.workstation": ("workstation", "工作站"),
    "role.instance": ("instance", "实例"),
    "role.client": ("client", "客户端"),
    "role.trustee_admin": ("trustee_admin", "Trustee 管理机"),
    "role.host": ("host", "宿主机"),
    "role.guest": ("guest", "机密虚拟机"),
    "role.console": ("console", "控制台"),
    "list_sep": (", ", "、"),
    "not_set": ("not set", "未设置"),
    "default": ("default", "默认值"),
    "secret_ref": ("secret reference; the value is read only when used", "密钥引用，仅在使用时读取其值"),
}


def add_strings(table: dict[str, tuple[str, str]]) -> None:
    """A screen module's own (en, zh) strings, merged at import; a key defined twice with other words is a bug."""
    for key, pair in table.items():
        if key in STRINGS and STRINGS[key] != pair:
            raise ValueError(f"i18n: {key!r} is already defined as {STRINGS[key]!r}")
        STRINGS[key] = pair


def t(key: str, lang: str, **fmt: Any) -> str:
    en, zh = STRINGS[key]
    text = zh if lang == "zh" else en
    return text.format(**fmt) if fmt else text


def role(name: str, lang: str) -> str:
    """A target role (``workstation``, ``instance`` …) in ``lang``; in English the recipe's own key, so it can be
    looked up in ``targets:``; a role this table does not know is shown as it is."""
    key = f"role.{name}"
    return t(key, lang) if key in STRINGS else name


def flow_title(flow: str, lang: str) -> str:
    """A flow's name; a flow this table does not know yet is shown by its id rather than failing."""
    return t(f"flow.{flow}", lang) if f"flow.{flow}" in STRINGS else flow


def other_lang(lang: str) -> str:
    return "en" if lang == "zh" else "zh"


def relabel_bindings(node: Any, lang: str) -> None:
    """Rewrite the footer descriptions of ``node``'s bindings that have an id in STRINGS.

    Textual has keymaps for keys but nothing for descriptions, so the node's BindingsMap
    (copied per instance from BINDINGS) is rewritten in place.
    """
    table = node._bindings.key_to_bindings
    for key, bindings in table.items():
        table[key] = [replace(b, description=t(b.id, lang)) if b.id in STRINGS else b for b in bindings]
    node.refresh_bindings()
