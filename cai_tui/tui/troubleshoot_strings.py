"""The troubleshooting screen's words in English and Chinese (registered when imported)."""

from __future__ import annotations

from typing import Any

from .i18n import add_strings, t

add_strings(
    {
        # bindings (keys are the binding ids)
        "ts_refresh": ("Refresh", "刷新"),
        "ts_bundle": ("Support bundle", "诊断包"),
        "ts_faq": ("FAQ entry", "常见问题条目"),
        # the screen
        "ts_title": ("Troubleshooting", "故障排查"),
        "ts_reading": ("Reading the containers of {where}…", "正在读取 {where} 上的容器…"),
        "ts_where_project": ("project {project} on {engine}", "项目 {project}（{engine}）"),
        "ts_where_engine": ("the instance's Docker engine", "实例的 Docker 引擎"),
        "ts_engine_local": (
            "the local Docker engine (DOCKER_HOST or /var/run/docker.sock)",
            "本机 Docker 引擎（DOCKER_HOST 或 /var/run/docker.sock）",
        ),
        "ts_engine_ssh": (
            "the Docker engine of {name} (docker CLI over SSH)",
            "{name} 的 Docker 引擎（经 SSH 调用 docker 命令）",
        ),
        "ts_engine_url": ("the Docker engine at {url}", "Docker 引擎 {url}"),
        "ts_head": ("Project {project} on {engine}: {summary}.", "项目 {project}（{engine}）：{summary}。"),
        "ts_summary_bad": ("{n} failing", "{n} 个失败"),
        "ts_summary_ok": ("nothing failing", "没有失败的容器"),
        "ts_summary_waiting": ("{n} waiting on a dependency", "{n} 个在等待依赖"),
        "ts_no_recipe": (
            "No recipe is open, so the instance is not known. Open a recipe (or start `cai-tui --lab`), or run "
            "`cai-tui troubleshoot --target instance=ssh://root@HOST` in a terminal.",
            "尚未打开配方，无法确定实例。请打开配方（或启动 `cai-tui --lab`），或在终端中运行 "
            "`cai-tui troubleshoot --target instance=ssh://root@HOST`。",
        ),
        "ts_other_flow": (
            "The recipe {name} is for flow {flow}: its instance is shown.",
            "配方 {name} 属于流程 {flow}：显示的是该配方的实例。",
        ),
        "ts_no_project": (
            "No CAI container runs on {engine}{project}. Deploy the stack first: stage cai-stack (key r on the "
            "flow screen) or `cai-tui deploy --recipe RECIPE --yes`, then press r here.",
            "{engine}{project} 上没有运行 CAI 容器。请先部署服务：执行 cai-stack 阶段（在流程界面按 r）或运行 "
            "`cai-tui deploy --recipe 配方 --yes`，然后在此按 r 刷新。",
        ),
        "ts_project_suffix": (" (compose project {project})", "（compose 项目 {project}）"),
        "ts_engine_failed": (
            "The instance's Docker engine could not be asked: {why}. Check that the instance is up and reachable "
            "(targets.instance in the recipe: {target}) and that Docker runs there, then press r.",
            "无法访问实例的 Docker 引擎：{why}。请确认实例已启动且可访问（配方中的 targets.instance：{target}），"
            "并且其上 Docker 正在运行，然后按 r 重试。",
        ),
        "ts_input_failed": (
            "{why}. Fix the recipe's targets, then press r.",
            "{why}。请修正配方中的目标，然后按 r 重试。",
        ),
        "ts_select": ("Select a container above.", "请在上方选择一个容器。"),
        # the table
        "ts_col_service": ("service", "服务"),
        "ts_col_state": ("state", "状态"),
        "ts_col_health": ("health", "健康"),
        "ts_col_restarts": ("restarts/exit", "重启/退出码"),
        # the detail
        "ts_state": ("State: ", "状态："),
        "ts_waiting": (
            "Waiting on {deps}: not started because its dependency failed; see that container.",
            "等待 {deps}：因其依赖的服务失败而未启动，请查看该容器。",
        ),
        "ts_ok": ("No problem found in this container.", "该容器未发现问题。"),
        "ts_no_finding": ("No FAQ entry matched.", "没有匹配的常见问题条目。"),
        "ts_evidence": ("Evidence: ", "证据："),
        "ts_evidence_elsewhere": (
            "(not in the log tail below: {source})",
            "（不在下方日志中：{source}）",
        ),
        "ts_cause": ("Cause: ", "原因："),
        "ts_fix": ("Fix: ", "解决方法："),
        "ts_faq_id": ("FAQ ", "常见问题 "),
        "ts_confidence": ("confidence {c}", "置信度 {c}"),
        "ts_checks": ("Related checks:", "相关检查："),
        "ts_also": ("Also possible:", "其他可能："),
        "ts_faq_hint": ("Press f for the whole FAQ entry.", "按 f 查看完整的常见问题条目。"),
        "ts_log_head": ("Log tail ({n} lines of {source}):", "日志末尾（{source} 的 {n} 行）："),
        "ts_log_none": ("No log lines.", "没有日志。"),
        "ts_faq_head": ("FAQ entry {id}", "常见问题条目 {id}"),
        "ts_faq_procedure": ("Procedure steps: ", "对应步骤："),
        "ts_faq_source": ("Source: ", "来源："),
        "ts_faq_none": ("No FAQ entry for this container.", "该容器没有常见问题条目。"),
        # kata
        "ts_kata_head": (
            "The kata confidential container {task} on {where} (ctr namespace {ns}).",
            "kata 机密容器 {task}，位于 {where}（ctr 命名空间 {ns}）。",
        ),
        "ts_kata_absent": (
            "No task {task} in ctr namespace {ns}: start it with stage confidential-container (KATA-5.1); if ctr "
            "says the container exists, remove it first (`ctr task rm {task}`, `ctr container rm {task}`).",
            "ctr 命名空间 {ns} 中没有任务 {task}：请执行 confidential-container 阶段（KATA-5.1）启动它；若 ctr "
            "提示容器已存在，请先删除（`ctr task rm {task}`、`ctr container rm {task}`）。",
        ),
        "ts_kata_failed": (
            "ctr could not be asked on {where}: {why}. Check that the kata host is reachable (targets.host), then "
            "press r.",
            "无法在 {where} 上执行 ctr：{why}。请确认 kata 宿主机可访问（targets.host），然后按 r 重试。",
        ),
        "ts_kata_logs": (
            "A ctr session's output is on the host terminal that started it; run the stage's checks (key c on the "
            "flow screen) to find the fix.",
            "ctr 会话的输出在启动它的宿主机终端上；请运行该阶段的检查（在流程界面按 c）以找到解决方法。",
        ),
        # the bundle
        "ts_bundle_busy": ("Building the support bundle…", "正在生成诊断包…"),
        "ts_bundle_done": (
            "Support bundle written: {path} ({size} bytes, {files} files). Secrets are redacted: every file passed "
            "through the scrubber (removed: {removed}).",
            "诊断包已生成：{path}（{size} 字节，{files} 个文件）。密钥已脱敏：每个文件都经过清理（已移除：{removed}）。",
        ),
        "ts_bundle_nothing": ("nothing", "无"),
        "ts_bundle_errors": (
            "{n} item(s) not collected: see errors.txt in the bundle.",
            "{n} 项未能收集：见诊断包中的 errors.txt。",
        ),
        "ts_bundle_failed": ("The support bundle was not written: {why}", "诊断包未生成：{why}"),
    }
)


def engine_words(url: str | None, via: Any, lang: str) -> str:
    """The engine the troubleshooter asks, named in ``lang`` (as :func:`cai_tui.stackinfo.engine_name` in English):
    over SSH to ``via``, at ``url``, or this machine's."""
    if via is not None:
        return t("ts_engine_ssh", lang, name=via.name)
    if url:
        return t("ts_engine_url", lang, url=url)
    return t("ts_engine_local", lang)
