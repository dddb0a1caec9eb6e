"""``cai-tui kata vfio apply|undo`` on the kata lab's fake sysfs (its emulator running): exactly what is written where
and in which order, the audio function bound with the GPU, the guard checks passing after it, undo restoring every
previous driver (the tree as it was), a refused group writing nothing, and the undo record's life."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_tui.checks.base import CheckContext
from cai_tui.checks.registry import all_checks
from cai_tui.checks.runner import run_checks
from cai_tui.cli.main import app
from cai_tui.lab.kata.sysfs import (
    CONSUMER_AUDIO_BDF,
    CONSUMER_GPU_BDF,
    LAB_GPU_BDF,
    LAB_GPU_GROUP,
    NONVIABLE_GPU_BDF,
    FakeSysfs,
    build_fake_sysfs,
)
from cai_tui.recipe.model import KataRecipe
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.sysroot import SysrootTarget

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
GPU, AUDIO = CONSUMER_GPU_BDF, CONSUMER_AUDIO_BDF
GUARDS = ("gpu.vfio_bound", "gpu.iommu_group", "vfio.device_node")


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CAI_TUI_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def consumer(tmp_path: Path) -> Iterator[FakeSysfs]:
    with build_fake_sysfs(tmp_path / "root", "consumer") as fake:
        yield fake


def vfio(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, ["kata", "vfio", *args])
    return r.exit_code, r.output


def guards(fake: FakeSysfs, bdf: str | None) -> dict[str, str]:
    rec = KataRecipe.model_validate({"flow": "kata-virtcca", "name": "t", "answers": {"gpu": {"bdf": bdf}}})
    ctx = CheckContext(recipe=rec, targets={"host": SysrootTarget(fake.root)}, redactor=Redactor(), timeout=10.0)
    specs = [all_checks()[c] for c in GUARDS]
    return {o.id: o.result.status for o in asyncio.run(run_checks(specs, ctx, timeout=10.0))}


def test_apply_binds_the_gpu_and_its_audio_function_and_undo_gives_them_back(consumer: FakeSysfs, state: Path) -> None:
    before = consumer.snapshot()
    assert guards(consumer, GPU) == {"gpu.vfio_bound": "fail", "gpu.iommu_group": "fail", "vfio.device_node": "fail"}
    code, out = vfio("apply", "--sysroot", str(consumer.root), "--bdf", GPU, "--yes")
    assert code == 0, out
    consumer.settle()
    assert consumer.journal == [
        (f"/sys/bus/pci/devices/{GPU}/driver_override", "vfio-pci\n"),
        ("/sys/bus/pci/drivers/nvidia/unbind", f"{GPU}\n"),
        ("/sys/bus/pci/drivers_probe", f"{GPU}\n"),
        (f"/sys/bus/pci/devices/{AUDIO}/driver_override", "vfio-pci\n"),
        ("/sys/bus/pci/drivers/snd_hda_intel/unbind", f"{AUDIO}\n"),
        ("/sys/bus/pci/drivers_probe", f"{AUDIO}\n"),
    ]
    assert consumer.errors() == []
    assert (consumer.driver_of(GPU), consumer.driver_of(AUDIO)) == ("vfio-pci", "vfio-pci")
    assert (consumer.override_of(GPU), consumer.override_of(AUDIO)) == ("vfio-pci\n", "vfio-pci\n")
    assert sorted(os.listdir(consumer.root / "dev/vfio")) == ["17", "vfio"]
    lines = out.splitlines()
    assert f"[sysfs] echo {AUDIO} > /sys/bus/pci/drivers/snd_hda_intel/unbind" in lines
    assert f"→ {AUDIO} is bound to vfio-pci (was snd_hda_intel)" in lines
    assert lines[-1] == "export VFIO=/dev/vfio/17"
    record = json.loads((state / "kata-vfio.json").read_text())
    assert record == {
        "sysroot": str(consumer.root),
        "devices": [
            {"bdf": GPU, "group": 17, "previous_driver": "nvidia", "previous_override": None},
            {"bdf": AUDIO, "group": 17, "previous_driver": "snd_hda_intel", "previous_override": None},
        ],
    }
    assert (state / "kata-vfio.json").stat().st_mode & 0o777 == 0o600
    assert guards(consumer, GPU) == dict.fromkeys(GUARDS, "pass")

    # a second apply changes nothing and keeps the first record (the drivers to go back to)
    code, out = vfio("apply", "--sysroot", str(consumer.root), "--bdf", GPU, "--yes")
    assert code == 0 and "nothing to do: every member is on vfio-pci already" in out
    assert json.loads((state / "kata-vfio.json").read_text()) == record
    consumer.settle()
    assert len(consumer.journal) == 6

    code, out = vfio("undo")
    assert code == 0, out
    consumer.settle()
    assert consumer.journal[6:] == [
        (f"/sys/bus/pci/devices/{AUDIO}/driver_override", "\n"),
        ("/sys/bus/pci/drivers/vfio-pci/unbind", f"{AUDIO}\n"),
        ("/sys/bus/pci/drivers_probe", f"{AUDIO}\n"),
        (f"/sys/bus/pci/devices/{GPU}/driver_override", "\n"),
        ("/sys/bus/pci/drivers/vfio-pci/unbind", f"{GPU}\n"),
        ("/sys/bus/pci/drivers_probe", f"{GPU}\n"),
    ]
    assert f"→ {AUDIO} is back on snd_hda_intel" in out.splitlines()
    assert (consumer.driver_of(GPU), consumer.driver_of(AUDIO)) == ("nvidia", "snd_hda_intel")
    assert consumer.snapshot() == before
    assert not (state / "kata-vfio.json").exists()
    code, out = vfio("undo")
    assert (code, out.strip()) == (0, "nothing to undo: no vfio binding recorded")


def test_a_group_that_cannot_be_taken_writes_nothing(tmp_path: Path, state: Path) -> None:
    with build_fake_sysfs(tmp_path / "root", "non-viable") as fake:
        before = fake.snapshot()
        code, out = vfio("apply", "--sysroot", str(fake.root), "--yes")
        assert code == 1
        assert f"blocked: IOMMU group 40 of {NONVIABLE_GPU_BDF} holds 0000:41:00.1 [8086:1572]" in out
        fake.settle()
        assert fake.journal == [] and fake.snapshot() == before
        assert not state.exists()


def test_apply_without_yes_and_no_terminal_refuses(consumer: FakeSysfs) -> None:
    code, out = vfio("apply", "--sysroot", str(consumer.root))
    assert code == 2
    assert "error: this changes the host's drivers; give --yes (no terminal to ask on)" in out
    consumer.settle()
    assert consumer.journal == []


def test_undo_that_fails_keeps_the_record_and_succeeds_later(consumer: FakeSysfs, state: Path) -> None:
    code, out = vfio("apply", "--sysroot", str(consumer.root), "--yes")
    assert code == 0, out
    consumer.stop()  # nobody reads the pipes now: the unbind writes fail (ENXIO)
    code, out = vfio("undo", "--sysroot", str(consumer.root))
    assert code == 1
    assert "nothing reads it (the kata lab's sysfs emulator is not running)" in out
    assert f"2 function(s) not given back ({AUDIO}, {GPU}): the record keeps them" in out
    assert [d["bdf"] for d in json.loads((state / "kata-vfio.json").read_text())["devices"]] == [GPU, AUDIO]
    code, out = vfio("undo", "--sysroot", str(consumer.root.parent))
    assert code == 2 and f"the recorded binding is under {consumer.root}" in out
    consumer.start()
    code, out = vfio("undo")
    assert code == 0, out
    assert (consumer.driver_of(GPU), consumer.driver_of(AUDIO)) == ("nvidia", "snd_hda_intel")
    assert not (state / "kata-vfio.json").exists()


def test_undo_goes_back_to_a_driver_bound_by_hand_and_a_previous_override(consumer: FakeSysfs, state: Path) -> None:
    """A function that had an override and sat unbound, and one whose driver drivers_probe would not pick again."""
    code, _ = vfio("apply", "--sysroot", str(consumer.root), "--yes")
    assert code == 0
    record = json.loads((state / "kata-vfio.json").read_text())
    record["devices"][0]["previous_override"] = "none"  # opted out of binding (sysfs-bus-pci's example)
    record["devices"][0]["previous_driver"] = None
    (state / "kata-vfio.json").write_text(json.dumps(record))
    consumer.settle()
    start = len(consumer.journal)
    code, out = vfio("undo")
    assert code == 0, out
    consumer.settle()
    assert consumer.journal[start + 3 :] == [
        (f"/sys/bus/pci/devices/{GPU}/driver_override", "none\n"),
        ("/sys/bus/pci/drivers/vfio-pci/unbind", f"{GPU}\n"),
    ]
    assert consumer.driver_of(GPU) is None and consumer.override_of(GPU) == "none\n"
    assert consumer.driver_of(AUDIO) == "snd_hda_intel"


def test_lab_gpu_by_separate_processes_with_the_recipe(tmp_path: Path, state: Path) -> None:
    """The shape of the end-to-end replay: the doer is its own ``cai-tui`` process, the emulator runs here."""
    with build_fake_sysfs(tmp_path / "root", "lab") as fake:
        before = fake.snapshot()
        recipe = tmp_path / "kata.yaml"
        recipe.write_text(
            f"schema_version: 1\nflow: kata-virtcca\nname: t\nanswers:\n  gpu:\n    sysroot: {fake.root}\n"
        )
        env = {**os.environ, "CAI_TUI_STATE_DIR": str(state), "CAI_TUI_EVENTS": "jsonl"}
        cli = [sys.executable, "-m", "cai_tui.cli.main", "kata", "vfio"]
        r = subprocess.run(
            [*cli, "apply", "--recipe", str(recipe), "--yes"], env=env, cwd=REPO, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stdout + r.stderr
        events = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith('{"schema"')]
        assert [e["text"] for e in events if e["kind"] == "line"] == [
            f"echo vfio-pci > /sys/bus/pci/devices/{LAB_GPU_BDF}/driver_override",
            f"echo {LAB_GPU_BDF} > /sys/bus/pci/drivers/nvidia/unbind",
            f"echo {LAB_GPU_BDF} > /sys/bus/pci/drivers_probe",
        ]
        assert f"export VFIO=/dev/vfio/{LAB_GPU_GROUP}" in r.stdout
        assert fake.driver_of(LAB_GPU_BDF) == "vfio-pci" and fake.driver_of("0000:00:01.0") == "pcieport"
        assert (fake.root / f"dev/vfio/{LAB_GPU_GROUP}").exists()
        r = subprocess.run([*cli, "undo", "--recipe", str(recipe)], env=env, cwd=REPO, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        fake.settle()
        assert fake.snapshot() == before
        assert fake.errors() == []


def test_apply_and_undo_json(tmp_path: Path, state: Path) -> None:
    with build_fake_sysfs(tmp_path / "root", "lab") as fake:
        r = runner.invoke(app, ["kata", "vfio", "apply", "--sysroot", str(fake.root), "--yes", "--json"])
        assert r.exit_code == 0, r.output
        doc = json.loads(r.output.splitlines()[-1])
        assert doc["changed"] == [f"{LAB_GPU_BDF}: nvidia → vfio-pci"]
        assert doc["nodes"] == [f"/dev/vfio/{LAB_GPU_GROUP}"]
        assert doc["plan"]["groups"][0]["group"] == LAB_GPU_GROUP and doc["plan"]["viable"] is True
        assert "sysroot:" not in r.output  # no human plan mixed into the JSON
        r = runner.invoke(app, ["kata", "vfio", "undo", "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.output.splitlines()[-1]) == {
            "changed": [f"{LAB_GPU_BDF}: vfio-pci → nvidia"],
            "nodes": [],
            "messages": [],
        }
        assert fake.driver_of(LAB_GPU_BDF) == "nvidia"


def test_cancel_while_waiting_for_the_kernel_stops_and_undo_cleans_up(tmp_path: Path, state: Path) -> None:
    from cai_tui.events import Cancelled, CancelToken, Event
    from cai_tui.kata.vfio import survey
    from cai_tui.kata.vfio_apply import apply

    with build_fake_sysfs(tmp_path / "root", "lab") as fake:
        before = fake.snapshot()
        plan = asyncio.run(survey(str(fake.root), None))
        token = CancelToken()

        def sink(event: Event) -> None:
            if event.kind == "line" and event.text.endswith("/unbind"):
                token.cancel("SIGTERM")  # the unbind is written; its effect is what apply waits for

        with fake._lock, pytest.raises(Cancelled):  # the emulator holds still: the kernel has not reacted yet
            apply(plan, sink=sink, token=token, settle_s=30)
        fake.settle()
        assert [p for p, _ in fake.journal] == [
            f"/sys/bus/pci/devices/{LAB_GPU_BDF}/driver_override",
            "/sys/bus/pci/drivers/nvidia/unbind",
        ]
        assert fake.driver_of(LAB_GPU_BDF) is None  # half done: unbound, not yet on vfio-pci
        code, out = vfio("undo")
        assert code == 0, out
        assert fake.driver_of(LAB_GPU_BDF) == "nvidia"
        assert fake.snapshot() == before
