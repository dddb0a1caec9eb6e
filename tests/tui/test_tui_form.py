"""The stage form: editors that follow the field kinds, write through the draft, refuse bad input without losing it,
keep typed text over a language switch, save with Ctrl+S; the side bar's statuses follow the state live."""

from __future__ import annotations

import threading

from form_testlib import SMALL, box, choice, copy_recipe, editor, message, open_flow, show_stage, type_in
from textual.message import Message
from textual.widgets import Input, OptionList, Select
from tui_testlib import CAI_RECIPE, KATA_RECIPE, texts

from cai_tui.recipe import load_recipe
from cai_tui.recipe.field_kinds import PORT, SECRET, SELECT, URL
from cai_tui.tui.app import make_app
from cai_tui.tui.screens.flow import FlowScreen
from cai_tui.tui.widgets.field_editor import FieldEditor, SecretPicker
from cai_tui.tui.widgets.field_view import FieldView


def changes(messages: list[Message]) -> list[str]:
    """The paths of the Changed messages posted (the hook sees a message at each node it bubbles through)."""
    unique = {id(m): m for m in messages if isinstance(m, FieldEditor.Changed)}
    return [m.path for m in unique.values()]


async def test_a_valid_value_changes_the_draft_marks_it_unsaved_and_fills_the_steps(tmp_path) -> None:
    recipe = copy_recipe(CAI_RECIPE, tmp_path)
    seen: list[Message] = []
    app = make_app(recipe_path=recipe)
    async with app.run_test(size=SMALL, message_hook=seen.append) as pilot:
        screen = await open_flow(pilot, "cai")
        await show_stage(pilot, "model-encrypt")
        assert "gocryptfs -init ~/mount/cipher" in texts(screen.query_one("#stage-detail"))  # filled, not {…}
        assert "unsaved" not in screen.sub_title
        cipher = editor(screen, "model.cipher_dir")
        await type_in(pilot, cipher, "/srv/cipher", then="enter")
        draft = app.state.draft
        assert draft is not None and draft.get("model.cipher_dir").text == "/srv/cipher"
        assert changes(seen) == ["model.cipher_dir"] and draft.changed == ["model.cipher_dir"]
        assert "● unsaved changes" in screen.sub_title
        assert message(cipher) == ""
        await pilot.pause()
        shown = texts(screen.query_one("#stage-detail"))
        assert "gocryptfs -init /srv/cipher" in shown and "{model.cipher_dir}" not in shown

        await show_stage(pilot, "cai-env")
        port = editor(screen, "service.port")
        assert port.kind.kind == PORT and box(port).value == "8080"
        await type_in(pilot, port, "9090", then="tab")  # leaving the field applies it
        assert draft.get("service.port").text == "9090"
        assert changes(seen) == ["model.cipher_dir", "service.port"]


async def test_invalid_port_url_and_ip_are_shown_and_the_draft_is_unchanged(tmp_path) -> None:
    recipe = copy_recipe(CAI_RECIPE, tmp_path)
    seen: list[Message] = []
    app = make_app(recipe_path=recipe)
    async with app.run_test(size=SMALL, message_hook=seen.append) as pilot:
        screen = await open_flow(pilot, "cai")
        await show_stage(pilot, "cai-env")
        draft = app.state.draft
        assert draft is not None
        port = editor(screen, "service.port")
        await type_in(pilot, port, "70000")
        assert message(port) == "… a port is a whole number 1–65535"  # while typing
        assert box(port).has_class("-invalid")
        await pilot.press("enter")
        await pilot.pause()
        assert "not applied" in message(port) and "1–65535" in message(port)  # the model's own refusal
        assert box(port).value == "70000"  # what was typed stays
        assert draft.get("service.port").text == "8080" and not draft.dirty

        url = editor(screen, "oss.endpoint")
        assert url.kind.kind == URL
        await type_in(pilot, url, "oss-cn-beijing.aliyuncs.com", then="tab")
        assert "not applied" in message(url) and "with its scheme" in message(url)
        assert box(url).value == "oss-cn-beijing.aliyuncs.com"
        assert draft.get("oss.endpoint").text == "https://oss-cn-beijing-internal.aliyuncs.com"

        ip = editor(screen, "instance.public_ip")
        await type_in(pilot, ip, "203.0.113", then="enter")
        assert "IP address" in message(ip) and draft.get("instance.public_ip").text is None
        assert changes(seen) == [] and not draft.dirty and "unsaved" not in screen.sub_title

        await type_in(pilot, port, "8081", then="enter")  # fixing it applies and clears the message
        assert message(port) == "" and draft.get("service.port").text == "8081"


async def test_leaving_a_stage_says_what_was_not_applied_and_a_revisit_still_shows_it(tmp_path) -> None:
    app = make_app(recipe_path=copy_recipe(CAI_RECIPE, tmp_path))
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_flow(pilot, "cai")
        await show_stage(pilot, "cai-env")
        port = editor(screen, "service.port")
        await type_in(pilot, port, "0")
        await pilot.press("escape")  # first escape leaves the field for the side bar (and applies it)
        await pilot.pause()
        assert isinstance(app.screen, FlowScreen) and app.screen.focused is screen.stage_list
        app.clear_notifications()
        await pilot.press("n")  # leave the stage: not blocked, but told
        await pilot.pause()
        assert screen.stage_list.highlighted == screen.stage_list.get_option_index("cai-stack")
        notes = list(app._notifications)
        assert notes and notes[-1].severity == "warning"
        assert "Write cai.env" in notes[-1].title and "answers.service.port" in notes[-1].message
        await pilot.press("p")  # stages can be revisited: the typed text and its problem are still there
        await pilot.pause()
        port = editor(screen, "service.port")
        assert box(port).value == "0" and "1–65535" in message(port)
        assert app.state.draft is not None and app.state.draft.get("service.port").text == "8080"


async def test_the_secret_picker_writes_a_reference_and_has_no_value_box(tmp_path) -> None:
    app = make_app(recipe_path=copy_recipe(CAI_RECIPE, tmp_path))
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_flow(pilot, "cai")
        await show_stage(pilot, "model-upload")
        draft = app.state.draft
        assert draft is not None
        key = editor(screen, "oss.access_key_id")
        assert key.kind.kind == SECRET
        picker = key.query_one(SecretPicker)
        boxes = list(key.query(Input))
        assert boxes == [picker.target_input] and not any(b.password for b in boxes)  # a name box, no value box
        assert choice(key).value == "env" and box(key).value == "OSS_ACCESS_KEY_ID"
        assert "env:OSS_ACCESS_KEY_ID" in message(key) and "reference" in message(key)

        await show_stage(pilot, "cai-env")
        token = editor(screen, "oss.session_token")  # unset: choose where it is kept, then its name
        assert choice(token).value == Select.NULL and box(token).value == ""
        choice(token).value = "env"
        await pilot.pause()
        assert draft.get("oss.session_token").text is None  # no name yet: nothing written
        await type_in(pilot, token, "OSS_STS_TOKEN", then="enter")
        got = draft.get("oss.session_token")
        assert got.text == "env:OSS_STS_TOKEN" and got.is_secret
        assert str(draft.value("oss.session_token")) == "env:OSS_STS_TOKEN"

        await type_in(pilot, token, "1BAD", then="enter")  # not a variable name: refused, kept
        assert "variable name" in message(token) or "malformed" in message(token)
        assert draft.get("oss.session_token").text == "env:OSS_STS_TOKEN" and box(token).value == "1BAD"

        choice(token).value = "file"
        await pilot.pause()
        await type_in(pilot, token, "~/sts-token", then="tab")
        assert draft.get("oss.session_token").text == "file:~/sts-token"

        await type_in(pilot, token, "keyring:cai/sts-token", then="enter")  # a whole reference pasted in the box
        assert draft.get("oss.session_token").text == "keyring:cai/sts-token"
        assert choice(token).value == "keyring" and box(token).value == "cai/sts-token"

        choice(token).value = "prompt"  # asked for at run time: no name needed, the box goes away
        await pilot.pause()
        assert draft.get("oss.session_token").text == "prompt" and not box(token).display

        choice(token).value = Select.NULL  # blank clears an optional secret
        await pilot.pause()
        assert draft.get("oss.session_token").text is None


async def test_select_fields_by_keyboard_and_a_choice_the_recipe_refuses(tmp_path) -> None:
    app = make_app(recipe_path=copy_recipe(CAI_RECIPE, tmp_path))
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_flow(pilot, "cai")
        await show_stage(pilot, "model-source")
        draft = app.state.draft
        assert draft is not None
        method = editor(screen, "model.encryption_method")
        assert method.kind.kind == SELECT and method.kind.choices == ("gocryptfs", "sam")
        choice(method).focus()
        await pilot.press("enter", "down", "enter")  # open the list, next choice, take it
        await pilot.pause()
        assert choice(method).value == "sam" and draft.get("model.encryption_method").text == "sam"

        await type_in(pilot, editor(screen, "model.local_dir"), "", then="tab")  # clear the optional directory
        assert draft.get("model.local_dir").text is None
        source = editor(screen, "model.source")
        choice(source).value = "local"  # the recipe's own rule: local needs a directory
        await pilot.pause()
        assert "local_dir must name the plaintext model directory" in message(source)
        assert choice(source).value == "local" and draft.get("model.source").text == "modelscope"


async def test_a_language_switch_keeps_what_is_typed(tmp_path) -> None:
    app = make_app(recipe_path=copy_recipe(CAI_RECIPE, tmp_path))
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_flow(pilot, "cai")
        await show_stage(pilot, "cai-env")
        await type_in(pilot, editor(screen, "oss.endpoint"), "not a url")  # refused later; kept now
        await type_in(pilot, editor(screen, "service.mount_point"), "/srv/model")  # still focused: not applied
        draft = app.state.draft
        assert draft is not None and draft.get("service.mount_point").text == "/tmp/model"
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.lang == "zh"
        mount = editor(screen, "service.mount_point")
        assert mount.lang == "zh" and "模型" in texts(mount)
        assert box(mount).value == "/srv/model" and box(mount).has_focus  # text and focus survive
        assert box(editor(screen, "oss.endpoint")).value == "not a url"
        endpoint = message(editor(screen, "oss.endpoint"))
        assert endpoint.startswith("✘ 未采用") and "with its scheme" in endpoint  # the refusal is kept too
        await pilot.press("tab")  # leaving applies the kept text
        await pilot.pause()
        assert draft.get("service.mount_point").text == "/srv/model"
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert box(editor(screen, "service.mount_point")).value == "/srv/model"


async def test_ctrl_s_saves_the_typed_value_with_comments_and_a_backup(tmp_path) -> None:
    recipe = copy_recipe(CAI_RECIPE, tmp_path)
    before = recipe.read_bytes()
    app = make_app(recipe_path=recipe)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_flow(pilot, "cai")
        await show_stage(pilot, "cai-env")
        await type_in(pilot, editor(screen, "service.port"), "9090")  # still in the box: ctrl+s applies it
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "unsaved" not in screen.sub_title
        assert any("Recipe saved to" in n.message for n in app._notifications)
    reloaded = load_recipe(recipe)
    assert reloaded.recipe.answers.service.port == 9090
    text = recipe.read_text(encoding="utf-8")
    assert "# CAI-1.4: the same key is stored in KMS at CAI-2.6" in text and "port: 9090" in text
    assert recipe.with_name(recipe.name + ".bak").read_bytes() == before
    assert text.replace("port: 9090", "port: 8080").encode() == before  # only that line changed


async def test_an_unchanged_save_is_byte_identical(flows, tmp_path) -> None:
    recipe = copy_recipe(CAI_RECIPE, tmp_path)
    before = recipe.read_bytes()
    app = make_app(recipe_path=recipe)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_flow(pilot, "cai")
        for stage in ("model-source", "model-upload", "cai-env", "client"):  # every editor built and left
            await show_stage(pilot, stage)
        await type_in(pilot, editor(screen, "tng.proxy_port"), "41000", then="tab")  # the same value again
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert recipe.read_bytes() == before


async def test_the_kata_flow_forms_edit_and_validate(tmp_path) -> None:
    app = make_app(recipe_path=copy_recipe(KATA_RECIPE, tmp_path))
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_flow(pilot, "kata-virtcca")
        draft = app.state.draft
        assert draft is not None
        await show_stage(pilot, "cni-network")
        subnet = editor(screen, "cni.subnet")
        await type_in(pilot, subnet, "10.88.0.1/16", then="enter")
        assert "host bits zero" in message(subnet) and draft.get("cni.subnet").text == "10.88.0.0/16"
        await type_in(pilot, subnet, "8.8.8.0/24", then="enter")
        assert "private range" in message(subnet)
        await type_in(pilot, subnet, "10.89.0.0/16", then="enter")
        assert message(subnet) == "" and draft.get("cni.subnet").text == "10.89.0.0/16"

        await show_stage(pilot, "gpu-vfio")
        group = editor(screen, "gpu.iommu_group")
        await type_in(pilot, group, "", then="enter")  # optional: clearing it is allowed
        assert draft.get("gpu.iommu_group").text is None

        await show_stage(pilot, "kata-config")
        hooks = editor(screen, "kata.guest_hook_path")  # the whole recipe's rule: the hook must lie under it
        await type_in(pilot, hooks, "/etc/hooks", then="enter")
        assert "driver.hook_path must lie under kata.guest_hook_path" in message(hooks)
        assert draft.get("kata.guest_hook_path").text == "/usr/share/oci/hooks"

        await show_stage(pilot, "confidential-container")
        util = editor(screen, "serve.gpu_memory_utilization")
        await type_in(pilot, util, "1.5", then="enter")
        assert "at most 1" in message(util) and draft.get("serve.gpu_memory_utilization").text == "0.95"
        modelscope = editor(screen, "serve.use_modelscope")
        choice(modelscope).value = "false"
        await pilot.pause()
        assert draft.get("serve.use_modelscope").text == "false"
        assert draft.changed == ["cni.subnet", "gpu.iommu_group", "serve.use_modelscope"]


async def test_the_side_bar_shows_each_stage_status_live(tmp_path) -> None:
    app = make_app(recipe_path=copy_recipe(CAI_RECIPE, tmp_path))
    async with app.run_test(size=SMALL) as pilot:
        listeners = len(app.state._listeners)
        screen = await open_flow(pilot, "cai")
        stage_list = screen.query_one("#stage-list", OptionList)

        def prompt(stage_id: str) -> str:
            return str(stage_list.get_option(stage_id).prompt)

        assert prompt("model-encrypt").startswith("○ Encrypt the model")
        app.state.set_status("model-encrypt", "passed")
        app.state.set_status("model-upload", "failed")
        await pilot.pause()
        assert prompt("model-encrypt").startswith("✔ ") and "passed" in prompt("model-encrypt")
        assert prompt("model-upload").startswith("✘ ") and "failed" in prompt("model-upload")
        worker = threading.Thread(target=app.state.set_status, args=("kms", "waived"))  # as a run worker does
        worker.start()
        worker.join()
        await pilot.pause()
        assert prompt("kms").startswith("⊘ ") and "waived" in prompt("kms")
        app.state.set_status("instance", "in-progress")
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert prompt("instance").startswith("◐ ") and "进行中" in prompt("instance")
        assert "已通过" in prompt("model-encrypt")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, FlowScreen)
        assert len(app.state._listeners) == listeners  # unsubscribed when the screen went away
        app.state.set_status("kms", "passed")  # no screen to update: nothing breaks


async def test_without_a_recipe_of_the_flow_the_fields_are_read_only_and_e_starts_one() -> None:
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        app.push_screen(FlowScreen("kata-virtcca"))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FlowScreen)
        await show_stage(pilot, "cni-network")
        assert screen.query(FieldView) and not screen.query(FieldEditor)
        assert "press e to start one" in texts(screen.query_one("#stage-detail"))
        assert "$ mkdir -p {cni.bin_dir} {cni.conf_dir}" in texts(screen.query_one("#stage-detail"))  # as written
        await pilot.press("e")
        await pilot.pause()
        assert app.state.recipe_flow == "kata-virtcca"
        assert not screen.query(FieldView) and box(editor(screen, "cni.subnet")).value == "10.88.0.0/16"
        assert "$ mkdir -p /etc/cni/net.d /etc/cni/net.d" not in texts(screen)
        assert "$ mkdir -p /opt/cni/bin /etc/cni/net.d" in texts(screen.query_one("#stage-detail"))  # filled now
        assert screen.check_action("new_recipe", ()) is False  # one of this flow is open now
