"""The fleet's JUnit report: one testsuite per host, one testcase per check (an unreachable host or one whose capture
could not be taken: one erroring testcase that says why)."""

from __future__ import annotations

from pathlib import Path

from .doctor import FleetReport


def write_fleet_junit(report: FleetReport, path: Path) -> None:
    from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

    from ..recipe import REDACTOR
    from ..recipe.yaml_io import atomic_write

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
            elif r.status == "fail" and o.spec.required:
                failure = Failure(summary[:500], type_=r.fix.faq_id if r.fix is not None else "fail")
                failure.text = "\n".join([summary, *evidence, fix]).strip()
                case.result = [failure]
            elif r.status in ("skip", "unknown") or (r.status == "fail" and not o.spec.required):
                case.result = [Skipped(f"{r.status}: {summary}"[:500])]
            case.system_out = f"{r.status}: {summary}\ntarget: {o.target_name}" + ("\n" + fix if fix else "")
            suite.add_testcase(case)
        suite.update_statistics()
        xml.add_testsuite(suite)
    xml.update_statistics()
    tmp = path.with_name(path.name + ".tmp-junit")
    xml.write(str(tmp), pretty=True)
    try:
        atomic_write(path, tmp.read_bytes(), mode=0o644)
    finally:
        tmp.unlink(missing_ok=True)
