"""``cai-tui troubleshoot`` without the CLI: find the CAI stack's failing containers, say which FAQ fix applies and
show the line that proves it.

    report = await troubleshoot(TroubleshootOptions(loaded=load_recipe(path), project="cai-docker"))
    report.top("cachefs").faq_id, report.to_json(), report.exit_code

The pipeline is :mod:`.pipeline`; the containers :mod:`.collect`, the checks :mod:`.confirm`, the ranking
:mod:`.rank`, the report :mod:`.report`.
"""

from __future__ import annotations

from .collect import EngineError, InputError, TroubleshootError
from .pipeline import TroubleshootOptions, troubleshoot
from .report import SCHEMA, CheckRef, ContainerReport, EvidenceLine, ReportFinding, TroubleshootReport

__all__ = [
    "SCHEMA",
    "CheckRef",
    "ContainerReport",
    "EngineError",
    "EvidenceLine",
    "InputError",
    "ReportFinding",
    "TroubleshootError",
    "TroubleshootOptions",
    "TroubleshootReport",
    "troubleshoot",
]
