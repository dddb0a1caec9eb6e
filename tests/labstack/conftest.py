"""Fixtures of the labstack tests (and of the fault matrix beside them): the image, built once per session, and a
:class:`~cai_tui.labstack.bed.StackBed` on the ``lab`` fixture, always taken down afterwards."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cai_tui.labstack.bed import StackBed
from tests.targets.docker_lab import ensure_engine


@pytest.fixture(scope="session")
def labstack_image() -> str:
    """The labstack image's tag (built when its content changed, reused otherwise); older builds are pruned."""
    from cai_tui.labstack.image import LabImageError, build_image, prune_images

    ensure_engine()
    lines: list[Any] = []
    t0 = time.monotonic()
    try:
        tag = build_image(on_event=lines.append)
    except LabImageError as e:
        pytest.fail(str(e), pytrace=False)
    print(f"labstack image {tag} ready in {time.monotonic() - t0:.1f} s")
    prune_images(keep=tag)
    return tag


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "the labstack tests bind-mount MODEL_MOUNT_POINT and run FUSE in containers: run them as root",
            pytrace=False,
        )


StackBedFactory = Callable[..., StackBed]


@pytest.fixture
def stack_bed_factory(lab: Any, labstack_image: str, tmp_path: Path) -> Iterator[StackBedFactory]:
    """``factory(**kwargs)`` → a :class:`StackBed` (kwargs as its constructor: port, env_overrides, env_drop,
    service_env…) in a fresh folder; every bed made is taken down at the end. One stack runs at a time (project
    cai-docker), so ``up()`` one bed at a time."""
    _need_root()
    made: list[StackBed] = []

    def factory(**kwargs: Any) -> StackBed:
        bed = StackBed(tmp_path / f"bed-{len(made)}", lab, labstack_image, **kwargs)
        made.append(bed)
        return bed

    yield factory
    errors = []
    for bed in reversed(made):
        try:
            bed.down()
        except Exception as e:  # every bed is taken down even when one fails
            errors.append(f"{bed.workdir}: {e}")
    assert not errors, "; ".join(errors)


@pytest.fixture
def stack_bed(stack_bed_factory: StackBedFactory) -> StackBed:
    """A :class:`StackBed` on the ``lab`` fixture with a free MODEL_SERVICE_PORT (files written, not up yet)."""
    return stack_bed_factory()
