"""Plain mode's own words in en and zh (the stage and field texts come from the stage specs).

Kept apart from the wizard's table so that plain mode never imports Textual.
"""

from __future__ import annotations

import re
import shutil
import textwrap
import unicodedata

LANGS = ("en", "zh")

STRINGS: dict[str, dict[str, str]] = {
    "intro": {
        "en": "cai-tui init: the {flow} flow in {n} stages, asked as plain prompts.\n"
        "Starting from the documented example recipe. Enter keeps the value shown in [brackets];\n"
        "'-' clears an optional value; Ctrl-C quits without writing anything.",
        "zh": "cai-tui init：{flow} 流程共 {n} 个阶段，以纯文本提问。\n"
        "以文档中的示例配方为起点。直接回车保留 [方括号] 中的值；输入 '-' 清除可选值；Ctrl-C 退出且不写入任何文件。",
    },
    "exists_note": {
        "en": "note: {path} exists; you will be asked before it is overwritten.",
        "zh": "注意：{path} 已存在；覆盖前会先询问。",
    },
    "stage_head": {"en": "Stage {i}/{n}: {title}", "zh": "阶段 {i}/{n}：{title}"},
    "stage_what": {"en": "{title}: what now? (questions here: {k})", "zh": "{title}：接下来？（本阶段问题数：{k}）"},
    "stage_answer": {"en": "Answer its questions", "zh": "回答本阶段的问题"},
    "stage_skip": {"en": "Skip this stage (keep its current values)", "zh": "跳过本阶段（保留当前值）"},
    "stage_finish": {
        "en": "Keep the current values of every remaining stage and save",
        "zh": "其余阶段全部保留当前值，直接保存",
    },
    "stage_none": {
        "en": "(no questions here: its fields were asked in an earlier stage or do not apply)",
        "zh": "（此处没有问题：本阶段的字段已在前面询问过，或与目前的回答无关）",
    },
    "not_applicable": {
        "en": "not asked here (they do not apply to the answers so far): {paths}",
        "zh": "此处不询问（与目前的回答无关）：{paths}",
    },
    "only_choice": {"en": "{label}: {value} (the only choice)", "zh": "{label}：{value}（唯一选项）"},
    "unset": {"en": "unset", "zh": "未设置"},
    "empty": {"en": "empty", "zh": "空"},
    "example": {"en": "e.g. {example}", "zh": "例如 {example}"},
    "list_hint": {"en": "a, b, c; [] for none", "zh": "a, b, c；[] 表示无"},
    "select_hint": {"en": "(arrow keys, then Enter)", "zh": "（方向键选择，回车确认）"},
    "line_select_hint": {"en": "number 1-{n}, Enter for *:", "zh": "输入序号 1-{n}，回车选 *："},
    "line_select_again": {
        "en": "give a number from 1 to {n}, or Enter for *",
        "zh": "请输入 1 到 {n} 的序号，或回车选 *",
    },
    "line_confirm_again": {"en": "answer y or n", "zh": "请回答 y 或 n"},
    "line_mode": {
        "en": "(no terminal: one question per line; Enter keeps the value shown, end of input aborts)",
        "zh": "（无终端：逐行提问；回车保留所示的值，输入结束则中止）",
    },
    "secret_keep": {"en": "keep {ref}", "zh": "保留 {ref}"},
    "secret_unset": {"en": "leave it unset", "zh": "不设置"},
    "secret_env": {"en": "env:NAME (an environment variable)", "zh": "env:NAME（环境变量）"},
    "secret_file": {"en": "file:PATH (a file only you can read)", "zh": "file:PATH（仅本人可读的文件）"},
    "secret_keyring": {"en": "keyring:SERVICE/NAME (the system keyring)", "zh": "keyring:SERVICE/NAME（系统密钥环）"},
    "secret_prompt": {"en": "prompt (ask for it when it is needed)", "zh": "prompt（需要时再询问）"},
    "secret_note": {
        "en": "a secret: give where it is kept (a reference), never the value itself",
        "zh": "这是密钥：请填写它的存放位置（引用），不要填写密钥本身",
    },
    "ask_env": {"en": "Environment variable name", "zh": "环境变量名"},
    "ask_file": {"en": "File path", "zh": "文件路径"},
    "ask_keyring": {"en": "Keyring SERVICE/NAME", "zh": "密钥环 SERVICE/NAME"},
    "ask_target_hint": {"en": "empty: choose again", "zh": "留空：重新选择"},
    "problem": {"en": "  ! {field}: {message}", "zh": "  ! {field}：{message}"},
    "invalid_recipe": {
        "en": "the recipe is not valid; nothing was written:",
        "zh": "配方无效，未写入任何文件：",
    },
    "overwrite": {
        "en": "{path} exists. Overwrite it? (the old file is kept as {bak})",
        "zh": "{path} 已存在，是否覆盖？（旧文件保留为 {bak}）",
    },
    "other_file": {
        "en": "Save to another file (empty: quit without saving)",
        "zh": "另存为其他文件（留空：不保存并退出）",
    },
    "is_dir": {"en": "  ! {path} is a directory; give a file name", "zh": "  ! {path} 是目录，请给出文件名"},
    "save_failed": {"en": "  ! cannot save: {error}", "zh": "  ! 无法保存：{error}"},
    "not_saved": {"en": "not saved; nothing was written.", "zh": "未保存，未写入任何文件。"},
    "saved": {"en": "Saved {path}", "zh": "已保存 {path}"},
    "note": {"en": "note: {text}", "zh": "提示：{text}"},
    "next": {"en": "Next:", "zh": "下一步："},
    "aborted": {"en": "aborted; nothing was written.", "zh": "已中止，未写入任何文件。"},
}


def say(key: str, lang: str, **values: object) -> str:
    text = STRINGS[key].get(lang) or STRINGS[key]["en"]
    return text.format(**values) if values else text


def _width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    return sum(_width(c) for c in text)


def wrap(text: str, indent: str = "") -> str:
    """Re-wrap a spec's paragraphs to the terminal (at most 100 columns), CJK characters counting as two."""
    width = max(min(shutil.get_terminal_size((80, 24)).columns, 100) - len(indent) - 1, 20)
    out: list[str] = []
    for para in text.strip().split("\n\n"):
        lines = [line.strip() for line in para.splitlines() if line.strip()]
        if not lines:
            continue
        if any(_width(c) == 2 for c in para):
            out.extend(_wrap_wide(_join_wide(lines), width))
        else:
            out.extend(textwrap.wrap(" ".join(lines), width) or [""])
    return "\n".join(indent + line for line in out)


def _join_wide(lines: list[str]) -> str:
    """CJK lines join without a space; a Latin word at both ends of a break keeps one."""
    text = lines[0]
    for line in lines[1:]:
        text += (" " if text[-1].isascii() and line[0].isascii() else "") + line
    return text


def _wrap_wide(text: str, width: int) -> list[str]:
    """Greedy fill by display width; a run of Latin letters (a word, a path) is not split unless it cannot fit."""
    lines, line, used = [], "", 0
    for token in re.findall(r"[!-~]+| +|.", text):
        w = sum(_width(c) for c in token)
        if used + w > width and line:
            lines.append(line.rstrip())
            line, used = "", 0
            if token.isspace():
                continue
        while w > width:  # a word longer than a line
            lines.append(token[:width])
            token = token[width:]
            w = len(token)
        line += token
        used += w
    if line.strip():
        lines.append(line.rstrip())
    return lines
