"""The fleet's JUnit report: one testsuite per host, one testcase per check (an unreachable host or one whose capture
could not be taken: one erroring testcase that says why)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.exports import item_testcase, save_junit
from .doctor import FleetReport

if TYPE_CHECKING:
    from .replay import FleetReplay


def write_fleet_junit(report: FleetReport, path: Path) -> None:
    from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

    from ..recipe import REDACTOR

    xml = JUnitXml("cai-tui doctor --hosts")
    for host in report.hosts:
        suite = TestSuite(host.name)
        suite.add_property("address", host.address)
        suite.add_property("status", host.status)
        if host.error:
            case = TestCase("reach and capture", classname=f"cai-tui.{host.name}", time=host.seconds)
            err = Error(REDACTOR.redact(host.error)[:500], type_=host.status)
            err.text = REDACTOR.redact(host.error)
            case.result = [err]
            suite.add_testcase(case)
        for o in host.outcomes:
            r = o.result
            case = TestCase(o.id, classname=f"cai-tui.{host.name}.{o.spec.stage}", time=o.duration_ms / 1000)
            summary = REDACTOR.redact(r.summary)
            evidence = [REDACTOR.redact(f"{e.observed} ({e.source} @ {e.target})") for e in r.evidence]
            fix = f"fix [{r.fix.faq_id}]: {REDACTOR.redact(r.fix.text)}" if r.fix is not None else ""
            if o.id in host.waived:
                case.result = [Skipped(f"waived: {REDACTOR.redact(host.waived[o.id])} ({summary})"[:500])]
            elif r.status in ("fail", "unknown") and o.spec.required:  # an unknown required check fails the host
                failure = Failure(summary[:500], type_=r.fix.faq_id if r.fix is not None else r.status)
                failure.text = "\n".join([summary, *evidence, fix]).strip()
                case.result = [failure]
            elif r.status in ("skip", "unknown", "fail"):
                case.result = [Skipped(f"{r.status}: {summary}"[:500])]
            case.system_out = f"{r.status}: {summary}\ntarget: {o.target_name}" + ("\n" + fix if fix else "")
            suite.add_testcase(case)
        suite.update_statistics()
        xml.add_testsuite(suite)
    save_junit(xml, path)


def write_replay_junit(fleet: FleetReplay, path: Path) -> None:
    """``replay --hosts``: one testsuite per host, one testcase per item (an unreachable host: its error too)."""
    from junitparser import Error, JUnitXml, TestCase, TestSuite

    from ..recipe import REDACTOR

    xml = JUnitXml("cai-tui replay --hosts")
    for host in fleet.hosts:
        suite = TestSuite(host.name)
        suite.add_property("address", host.host.address)
        suite.add_property("status", host.status)
        if host.status == "unreachable":
            case = TestCase("reach", classname=f"cai-tui.{host.name}")
            err = Error(REDACTOR.redact(host.error)[:500], type_="unreachable")
            err.text = REDACTOR.redact(host.error)
            case.result = [err]
            suite.add_testcase(case)
        for r in host.report.results:
            suite.add_testcase(item_testcase(r, f"cai-tui.{host.name}.{r.item.stage}"))
        suite.update_statistics()
        xml.add_testsuite(suite)
    save_junit(xml, path)
