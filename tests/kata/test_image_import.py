"""KATA-2.4 ``cai-tui kata image import|undo-import`` against the lab's private containerd (real ctr, a real
``docker save`` archive of a tiny image); the plan of ``image.import``; the disk-space refusal."""

from __future__ import annotations

import gzip
import json
import secrets
import shutil
from pathlib import Path

from cai_tui.actions import registry
from cai_tui.recipe import load_recipe
from tests.kata.test_container_lab import Lab, cli, kata_lab, kata_net, tiny_archive, write_recipe  # noqa: F401


def ns() -> str:
    return f"imp{secrets.token_hex(3)}"


def test_plan_names_the_ctr_line_and_the_undo(tmp_path: Path, kata_lab: Lab) -> None:  # noqa: F811
    recipe = write_recipe(tmp_path / "r.yaml", kata_lab, "plans", tmp_path / "vllm.tar", "docker.io/library/x:1")
    (step,) = registry.get("image.import").plan(load_recipe(recipe))  # type: ignore[union-attr]
    assert step.argv == ["cai-tui", "kata", "image", "import", "--recipe", str(recipe)]
    assert step.undo == ("cai-tui", "kata", "image", "undo-import", "--recipe", str(recipe))
    assert step.where == "host" and step.changes.startswith("adds the image docker.io/library/x:1 to containerd")
    assert f"runs: ctr -a {kata_lab.ctrd.address} -n plans images import {tmp_path}/vllm.tar" in step.notes[0]
    out = cli("kata", "image", "import", "--recipe", str(recipe), "--plan", state=tmp_path / "state")
    assert out.returncode == 0, out.stderr
    assert f"cai-tui kata image import --recipe {recipe}\n" in out.stdout
    assert not (tmp_path / "state").exists()  # the plan changes nothing


def test_import_then_undo_leaves_containerd_as_before(
    tmp_path: Path,
    kata_lab: Lab,  # noqa: F811
    tiny_archive: tuple[Path, str],  # noqa: F811
) -> None:
    archive, ref = tiny_archive
    space = ns()
    recipe = str(write_recipe(tmp_path / "r.yaml", kata_lab, space, archive, ref))
    state = tmp_path / "state"
    before = kata_lab.snapshot(space)
    out = cli("kata", "image", "import", "--recipe", recipe, state=state)
    assert out.returncode == 0, out.stderr
    assert f"$ ctr -a {kata_lab.ctrd.address} -n {space} images import {archive}" in out.stderr
    assert f"unpacking {ref} (sha256:" in out.stderr  # ctr's own line, streamed
    assert out.stdout == f"{ref} is in containerd ({kata_lab.ctrd.address}, namespace {space})\n"
    assert "GiB free" in out.stderr or "GiB (about" in out.stderr
    assert kata_lab.listing(space, "images") == [ref]
    record = json.loads((state / "kata-image-import.json").read_text())
    assert record == {"address": kata_lab.ctrd.address, "namespace": space, "ref": ref, "refs": [ref]}
    # a second import adds nothing and keeps the record: the undo still removes the image
    again = cli("kata", "image", "import", "--recipe", recipe, state=state)
    assert again.returncode == 0 and "it was there before the import" in again.stdout
    assert json.loads((state / "kata-image-import.json").read_text())["refs"] == [ref]
    undo = cli("kata", "image", "undo-import", "--recipe", recipe, state=state)
    assert undo.returncode == 0, undo.stderr
    assert undo.stdout.startswith(f"removed {ref} from containerd")
    assert kata_lab.snapshot(space) == before
    assert not (state / "kata-image-import.json").exists()
    twice = cli("kata", "image", "undo-import", "--recipe", recipe, state=state)
    assert twice.returncode == 0 and twice.stdout == "nothing to undo: no image import recorded\n"


def test_gzip_archive_goes_through_gunzip(tmp_path: Path, kata_lab: Lab, tiny_archive: tuple[Path, str]) -> None:  # noqa: F811
    archive, ref = tiny_archive
    gz = tmp_path / "vllm.tar.gz"
    with open(archive, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    space = ns()
    recipe = str(write_recipe(tmp_path / "r.yaml", kata_lab, space, gz, ref))
    out = cli("kata", "image", "import", "--recipe", recipe, state=tmp_path / "state")
    assert out.returncode == 0, out.stderr
    assert f"{gz} is gzip-compressed: streamed through gunzip -c into ctr" in out.stderr
    assert f"-n {space} images import -\n" in out.stderr
    assert kata_lab.listing(space, "images") == [ref]
    assert cli("kata", "image", "undo-import", "--recipe", recipe, state=tmp_path / "state").returncode == 0
    assert kata_lab.listing(space, "images") == []


def test_a_ref_the_archive_does_not_hold_is_named(
    tmp_path: Path,
    kata_lab: Lab,  # noqa: F811
    tiny_archive: tuple[Path, str],  # noqa: F811
) -> None:
    archive, ref = tiny_archive
    space = ns()
    recipe = str(write_recipe(tmp_path / "r.yaml", kata_lab, space, archive, "docker.io/library/vllm-cvm:latest"))
    out = cli("kata", "image", "import", "--recipe", recipe, state=tmp_path / "state")
    assert out.returncode == 1
    assert f"the archive did not give docker.io/library/vllm-cvm:latest in containerd (namespace {space}); it " \
        f"imported: {ref}" in out.stderr  # fmt: skip
    assert "Traceback" not in out.stderr
    # what it did import is recorded, so the undo takes it away
    assert cli("kata", "image", "undo-import", "--recipe", recipe, state=tmp_path / "state").returncode == 0
    assert kata_lab.listing(space, "images") == []


def test_missing_archive_is_an_input_error(tmp_path: Path, kata_lab: Lab) -> None:  # noqa: F811
    recipe = str(write_recipe(tmp_path / "r.yaml", kata_lab, ns(), tmp_path / "none.tar", "docker.io/library/x:1"))
    out = cli("kata", "image", "import", "--recipe", recipe, state=tmp_path / "state")
    assert out.returncode == 2
    assert f"answers.image.archive: {tmp_path}/none.tar does not exist; build and save the image first" in out.stderr
    assert "Traceback" not in out.stderr


def test_not_enough_space_refuses_before_importing(tmp_path: Path, kata_lab: Lab) -> None:  # noqa: F811
    big = tmp_path / "huge.tar"
    with open(big, "wb") as f:  # sparse: claims far more than any test disk has
        f.truncate(8 * 2**40)
    space = ns()
    recipe = str(write_recipe(tmp_path / "r.yaml", kata_lab, space, big, "docker.io/library/x:1"))
    out = cli("kata", "image", "import", "--recipe", recipe, state=tmp_path / "state")
    assert out.returncode == 1
    assert f"not enough space for the import: {kata_lab.work}/ctrd/root has" in out.stderr
    assert "the image needs about 16384.0 GiB" in out.stderr
    assert "images import" not in out.stderr  # nothing ran
    assert not (tmp_path / "state/kata-image-import.json").exists()
