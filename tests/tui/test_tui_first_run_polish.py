"""What a newcomer on the lab saw (issue 15, points 8 and 9), read from the rendered wizard: a step that does not
apply to the recipe offers nothing to run; a field's label and value never run together at 80 columns; the
"Covers:" list is in procedure order; the Chinese screens leave no English behind in "runs:", the target roles and
the troubleshooting screen's engine; a transfer is never shown past its total, and the encryption's rate is real."""

from __future__ import annotations

import re

from form_testlib import SMALL, copy_recipe, editor, open_flow, show_stage
from tui_testlib import KATA_RECIPE, ROOT, texts

from cai_tui import events as ev
from cai_tui.actions import human_rate
from cai_tui.actions.model_encrypt import EncryptResult
from cai_tui.stages.spec import procedure_key
from cai_tui.tui.app import make_app
from cai_tui.tui.i18n import t
from cai_tui.tui.troubleshoot_strings import engine_words
from cai_tui.tui.widgets.step_view import StepView
from cai_tui.tui.widgets.transfer_bar import TransferBar, shown_total

LAB_RECIPE = ROOT / "recipes" / "lab-demo.yaml"  # model.source: local


def screen_lines(app) -> list[str]:  # type: ignore[no-untyped-def]
    """The characters on the terminal now, a line per row."""
    return ["".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips()]


def step_view(screen, covers: str) -> StepView:  # type: ignore[no-untyped-def]
    return next(v for v in screen.query(StepView) if v.step.covers == covers)


async def test_a_step_that_does_not_apply_offers_nothing_to_run(tmp_path) -> None:
    recipe = copy_recipe(LAB_RECIPE, tmp_path)
    app = make_app(recipe_path=recipe)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_flow(pilot, "cai")
        await show_stage(pilot, "model-source")
        public = texts(step_view(screen, "CAI-1.0"))  # when: model.source public-encrypted
        assert "use-public" not in public and "runs:" not in public
        assert "not for this recipe" in public and "model.source is local" in public
        local = texts(step_view(screen, "CAI-1.1"))  # when: modelscope or local: its doer is offered
        assert "runs: cai-tui model download" in local and "not for this recipe" not in local


async def test_label_and_value_stay_apart_at_80_columns(tmp_path) -> None:
    recipe = copy_recipe(LAB_RECIPE, tmp_path)
    app = make_app(recipe_path=recipe)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_flow(pilot, "cai")
        await show_stage(pilot, "model-source")
        field = editor(screen, "model.model_id")
        screen.query_one("#stage-detail").scroll_to_widget(field, animate=False, top=True)
        await pilot.pause()
        lines = screen_lines(app)
        label = next(i for i, line in enumerate(lines) if "modelscope model ID" in line)  # whole, not folded
        assert "Qwen/Qwen2.5-3B-Instruct" not in lines[label]
        assert "Qwen/Qwen2.5-3B-Instruct" in lines[label + 1]
        assert not any(re.search(r"[A-Za-z]Qwen/", line) for line in lines), "\n".join(lines)
        short = editor(screen, "model.source")  # a label that fits its column stays beside the value
        assert not short.has_class("-stacked") and field.has_class("-stacked")


async def test_covers_are_listed_in_procedure_order() -> None:
    app = make_app(recipe_path=KATA_RECIPE)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_flow(pilot, "kata-virtcca")
        await show_stage(pilot, "guest-rootfs")  # its steps run KATA-1.3 first
        shown = texts(screen.query_one("#stage-detail"))
        assert "Covers: KATA-1.1 · KATA-1.2 · KATA-1.3 · KATA-1.4" in shown
    ids = ["KATA-1.10", "CAI-F2", "KATA-1.9", "CAI-6.1", "CAI-F1", "CAI-0", "KATA-0", "KATA-1.1"]
    assert sorted(ids, key=procedure_key) == [
        "CAI-0", "CAI-6.1", "CAI-F1", "CAI-F2", "KATA-0", "KATA-1.1", "KATA-1.9", "KATA-1.10",
    ]  # fmt: skip


async def test_zh_stage_steps_say_runs_and_roles_in_chinese(tmp_path) -> None:
    recipe = copy_recipe(LAB_RECIPE, tmp_path)
    app = make_app(lang="zh", recipe_path=recipe)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_flow(pilot, "cai")
        await show_stage(pilot, "model-source")
        shown = texts(step_view(screen, "CAI-1.1"))
        assert "执行：cai-tui model download" in shown and "在工作站上运行" in shown
        assert "runs:" not in shown and "workstation" not in shown
        assert "不适用于本配方" in texts(step_view(screen, "CAI-1.0"))
        await show_stage(pilot, "access")
        shown = texts(screen.query_one("#stage-detail"))
        roles = re.findall(r"在(.+?)上运行", shown)
        assert roles and not any(re.search(r"(?<![A-Za-z])[a-z_]{3,}", r) for r in roles), (
            roles
        )  # trustee_admin, instance …


def test_zh_troubleshooting_names_the_engine_in_chinese() -> None:
    class Via:
        name = "instance"

    local, ssh = engine_words(None, None, "zh"), engine_words(None, Via(), "zh")
    for words in (local, ssh):
        english = set(re.findall(r"[A-Za-z_]{2,}", words)) - {"Docker", "DOCKER_HOST", "var", "run", "docker", "sock"}
        assert english <= {"instance", "SSH"}, words  # names only, no English sentence
    assert "本机" in local and "instance 的 Docker 引擎" in ssh
    head = t("ts_head", "zh", project="cai", engine=local, summary=t("ts_summary_ok", "zh"))
    assert "the local" not in head and "engine" not in head
    assert engine_words(None, None, "en") == "the local Docker engine (DOCKER_HOST or /var/run/docker.sock)"


async def test_a_transfer_is_never_shown_past_its_total() -> None:
    # the lab's demo model: 331,477 plaintext bytes, then the 942-byte manifest encrypted after it
    bar = TransferBar()
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await app.screen.mount(bar)
        await pilot.pause()
        bar.update_from(ev.progress(331_477, 331_477, text="tokenizer_config.json", source="encrypt"))
        bar.update_from(ev.progress(332_419, 331_477, text=".cai-manifest.json", source="encrypt"))
        shown = bar.describe()
    assert "324.6 KiB / 324.6 KiB" in shown and "323.7" not in shown and "done" in shown
    assert shown_total(ev.progress(332_419, 331_477)) == 332_419
    assert shown_total(ev.progress(10, 331_477)) == 331_477 and shown_total(ev.progress(5, None)) is None


def test_the_encryption_reports_its_real_average_rate() -> None:
    result = EncryptResult("native", "src", "dst", files=6, plain_bytes=331_477, seconds=0.8)
    assert result.rate == "404.6 KiB/s"  # was "0 MB/s"
    assert human_rate(8 << 30, 16.0) == "512.0 MiB/s" and human_rate(100, 0.0) == "? B/s"
