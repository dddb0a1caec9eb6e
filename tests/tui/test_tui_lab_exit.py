"""`cai-tui --lab` tells the terminal the truth about its lab (issue 15, point 9): the endpoints while it runs, and
"lab stopped" once the wizard has closed it (the "lab running" lines stay on the terminal after the wizard)."""

from __future__ import annotations

from pathlib import Path

from cai_tui.cli.wizard_cmd import lab_status
from cai_tui.lab.orchestrator import Lab


def test_the_lab_is_said_running_while_it_runs_and_stopped_after(tmp_path: Path) -> None:
    lab = Lab(state_dir=tmp_path / "lab", seed="bare")
    with lab:
        running = lab_status(lab)
        trustee = lab.trustee_url
        assert running.startswith(f"lab running: Trustee {trustee}, OSS {lab.oss_endpoint}")
        assert "stopped" not in running
    stopped = lab_status(lab)
    assert not lab.running
    assert stopped.startswith("lab stopped:") and "lab running" not in stopped and trustee not in stopped
    assert str(lab.recipe_path) in stopped
