"""The running lab's fault switches (``cai-tui --lab``): each one's id, what it does and what it breaks, on or off;
Enter or space flips the highlighted one on the lab itself, as its admin endpoint would."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static

from ..i18n import add_strings, t
from .base import LocalizedScreen

add_strings(
    {
        "lf_toggle": ("On/off", "开/关"),
        "lf_title": ("Lab fault switches", "实验环境故障开关"),
        "lf_note": (
            "Faults of the lab's Trustee, OSS and KMS. Enter or space switches the highlighted one; it takes effect at "
            "once. Then run the stage again (or deploy the stack) and press t for troubleshooting: it names the fix.",
            "实验环境中 Trustee、OSS 和 KMS 的故障开关。回车或空格切换所选开关，立即生效。然后重新执行阶段（或部署服务），"
            "再按 t 进入故障排查：它会给出解决方法。",
        ),
        "lf_no_lab": (
            "No lab is running. Start the wizard with `cai-tui --lab` to switch lab faults on and off.",
            "实验环境未运行。请用 `cai-tui --lab` 启动向导，即可开关实验环境的故障。",
        ),
        "lf_col_on": ("state", "状态"),
        "lf_col_id": ("fault", "故障"),
        "lf_col_component": ("component", "组件"),
        "lf_on": ("on", "开"),
        "lf_off": ("off", "关"),
        "lf_does": ("What it does: ", "效果："),
        "lf_affects": ("What it affects: ", "影响："),
        "lf_param": ("Parameter: {param}", "参数：{param}"),
        "lf_active": ("{n} switched on: {names}", "已开启 {n} 个：{names}"),
        "lf_none_on": ("Every fault is off.", "所有故障均已关闭。"),
        "lf_failed": ("{name} was not switched: {why}", "{name} 未能切换：{why}"),
        "lf_affects.trustee": (
            "the Trustee the instance attests to: confidential-data-hub cannot fetch the model key and tng cannot "
            "attest, so cachefs and inference never start (stages trustee-deploy, model-key, cai-stack)",
            "实例进行远程证明的 Trustee：confidential-data-hub 无法获取模型密钥，tng 无法完成证明，cachefs 和 inference "
            "因此无法启动（trustee-deploy、model-key、cai-stack 阶段）",
        ),
        "lf_affects.oss": (
            "the OSS bucket holding the encrypted model: the model upload fails and the stack's oss container cannot "
            "mount the bucket (stages model-upload, access, cai-stack)",
            "存放加密模型的 OSS 存储桶：模型上传失败，服务中的 oss 容器无法挂载存储桶（model-upload、access、cai-stack 阶段）",
        ),
        "lf_affects.kms": (
            "the KMS holding the model password: storing it fails, and Trustee's KMS backend cannot hand it to the "
            "instance (stages kms, model-key, cai-stack)",
            "存放模型密码的 KMS：写入失败，Trustee 的 KMS 后端也无法把密码交给实例（kms、model-key、cai-stack 阶段）",
        ),
    }
)

# the lab's own descriptions (cai_tui.lab.faults) are English; these are their Chinese words
ZH_DOCS: dict[str, str] = {
    "trustee-down": "Trustee 端口拒绝连接（监听已关闭）",
    "trustee-slow": "Trustee 的每个应答延迟 PARAM 秒（默认 5 秒）",
    "trustee-hang": "Trustee 接受连接并读取请求，但从不应答",
    "kbs-version-mismatch": "KBS 要求的协议版本与客户端发送的不同（真实的版本不匹配报错）",
    "kbs-policy-deny": "资源策略拒绝所有资源请求（PolicyDeny）",
    "kbs-resource-missing": "所有资源查询都失败，如同密钥不存在",
    "gateway-backend-down": "阿里云网关有应答，但其后端 KBS/AS 不可用（Failed to forward request to KBS）",
    "oss-access-denied": "所有 OSS 请求均被拒绝：AccessDenied（403）",
    "oss-no-such-bucket": "所有存储桶都报告不存在（NoSuchBucket，404）",
    "oss-bad-signature": "所有签名都被拒绝（SignatureDoesNotMatch，附 StringToSign）",
    "oss-skew": "服务器时钟快 20 分钟：RequestTimeTooSkewed",
    "oss-token-expired": "STS 令牌被报告已过期（SecurityTokenExpired）",
    "oss-stall-body": "发送响应头后对象内容停滞（GET 永远无法完成）",
    "kms-secret-missing": "所有凭据查询都失败：Forbidden.ResourceNotFound",
    "kms-bad-key": "所有 AccessKey 都无法识别（InvalidAccessKeyId.NotFound）",
}


def _doc(name: str, spec: Any, lang: str) -> str:
    return ZH_DOCS.get(name, str(spec.doc)) if lang == "zh" else str(spec.doc)


class LabFaultsScreen(LocalizedScreen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("space", "toggle_fault", "On/off", id="lf_toggle"),
    ]

    class Toggled(Message):
        """A switch was flipped on the lab (``on``: its new state)."""

        def __init__(self, name: str, on: bool) -> None:
            super().__init__()
            self.name, self.on = name, on

    def __init__(self) -> None:
        super().__init__()
        self.problem: tuple[str, str] | None = None  # (fault, why) of the last switch that failed

    @property
    def lab(self) -> Any | None:
        """The running lab, or None (not started with --lab, or stopped)."""
        lab = self.state.lab
        return lab if lab is not None and getattr(lab, "running", False) else None

    @property
    def names(self) -> list[str]:
        from ...lab.faults import FAULTS

        return list(FAULTS)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="lf-note")
        table: DataTable[Any] = DataTable(id="lf-table", cursor_type="row", zebra_stripes=True)
        yield table
        with VerticalScroll(id="lf-detail"):
            yield Static(id="lf-about")
        yield Footer()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#lf-table", DataTable)

    @property
    def highlighted(self) -> str | None:
        if self.lab is None or not self.table.row_count:
            return None
        return self.names[self.table.cursor_row]

    def prepare(self) -> None:
        self.table.display = self.lab is not None
        self.query_one("#lf-detail").display = self.lab is not None

    def apply_lang(self, lang: str) -> None:
        self.sub_title = t("lf_title", lang)
        self._fill(lang)

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self._fill(self.wizard.lang)  # switched elsewhere meanwhile (the admin endpoint)

    def _fill(self, lang: str) -> None:
        from ...lab.faults import FAULTS

        note = self.query_one("#lf-note", Static)
        lab = self.lab
        if lab is None:
            note.update(Content.styled(t("lf_no_lab", lang), "$text-warning"))
            return
        active = lab.faults.active()
        parts: list[str | tuple[str, str]] = [t("lf_note", lang), "\n"]
        if active:
            names = ", ".join(sorted(active))
            parts.append((t("lf_active", lang, n=len(active), names=names), "bold $text-error"))
        else:
            parts.append((t("lf_none_on", lang), "$text-success"))
        if self.problem is not None:
            parts += ["\n", (t("lf_failed", lang, name=self.problem[0], why=self.problem[1]), "$text-error")]
        note.update(Content.assemble(*parts))
        table = self.table
        row = table.cursor_row
        table.clear(columns=True)
        states = {True: "● " + t("lf_on", lang), False: "○ " + t("lf_off", lang)}
        widths = {
            "on": max(cell_len(t("lf_col_on", lang)), *(cell_len(s) for s in states.values())),
            "id": max(cell_len(t("lf_col_id", lang)), *(cell_len(n) for n in FAULTS)),
            "component": max(cell_len(t("lf_col_component", lang)), *(cell_len(f.component) for f in FAULTS.values())),
        }
        for key in ("on", "id", "component"):
            table.add_column(t(f"lf_col_{key}", lang), key=key, width=widths[key])
        for name, spec in FAULTS.items():
            on = name in active
            state = Content.styled(states[on], "bold $text-error") if on else Content(states[on])
            table.add_row(state, name, spec.component, key=name)
        table.move_cursor(row=min(max(row, 0), len(FAULTS) - 1), animate=False)
        self._about(lang)

    def _about(self, lang: str) -> None:
        from ...lab.faults import FAULTS

        name = self.highlighted
        about = self.query_one("#lf-about", Static)
        if name is None or self.lab is None:
            about.update("")
            return
        spec = FAULTS[name]
        on = self.lab.faults.is_on(name)
        parts: list[str | tuple[str, str]] = [
            (name, "bold $text-accent"),
            (f"  ({t('lf_on' if on else 'lf_off', lang)})", "bold $text-error" if on else "$text-muted"),
            "\n",
            (t("lf_does", lang), "bold"),
            _doc(name, spec, lang),
            "\n",
            (t("lf_affects", lang), "bold"),
            t(f"lf_affects.{spec.component}", lang),
        ]
        if spec.default_param is not None:
            param = self.lab.faults.param(name)
            parts += ["\n", (t("lf_param", lang, param=f"{param:g}" if param is not None else "-"), "$text-muted")]
        about.update(Content.assemble(*parts))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._about(self.wizard.lang)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_toggle_fault()

    def action_toggle_fault(self) -> None:
        """Flip the highlighted switch; in a thread, since a *-down fault closes or reopens a listener."""
        name = self.highlighted
        lab = self.lab
        if name is None or lab is None:
            return
        on = not lab.faults.is_on(name)

        def flip() -> None:
            try:
                lab.faults.set(name, on)
            except Exception as e:  # the lab's own failure to reopen a port: said, the switch as it is
                self.app.call_from_thread(self._failed, name, str(e).strip() or type(e).__name__)
                return
            self.app.call_from_thread(self.post_message, self.Toggled(name, on))

        self.run_worker(flip, thread=True, group="lf-toggle", exit_on_error=False)

    def _failed(self, name: str, why: str) -> None:
        self.problem = (name, why)
        self._fill(self.wizard.lang)

    def on_lab_faults_screen_toggled(self, message: Toggled) -> None:
        self.problem = None
        self._fill(self.wizard.lang)
        self.notify(f"{message.name}: {t('lf_on' if message.on else 'lf_off', self.wizard.lang)}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_fault":
            return True if self.lab is not None else None
        return True

    def action_back(self) -> None:
        self.dismiss()
