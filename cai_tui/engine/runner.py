"""Apply a stage's items in order, each guarded by the checks that prove it done.

Per item (see :mod:`.plan` for the kinds):

* a step that does not apply to the recipe → ``skipped`` (why);
* ``action``: its guard passes → ``skipped`` naming the checks; every guard check waived → ``waived``; otherwise the
  command line runs on its target (a child ``cai-tui`` reports its events as JSON lines, which arrive here as events),
  then the guard runs again: ``applied``, or ``failed`` with the failing check's FAQ fix and evidence. A read-only
  doer (validate, test the handshake, ask the model) always runs, as it is the proof itself: ``skipped`` (nothing
  changed) with what it showed, or ``failed``;
* ``file``: rendered and compared with the target's copy → ``skipped`` when equal, else written (``.bak`` kept) →
  ``applied``;
* ``command`` / ``manual``: never run here (a person does them, or a doer of the same step does); a passing guard →
  ``skipped``, a failing one → ``failed`` with what to do;
* ``check``: pass/warn → ``skipped`` (nothing to do), fail → ``failed`` unless waived or optional.

The first failure stops the run (the rest stays ``planned``); in the CAI stack's stages the troubleshooter then names
the FAQ fix with the log line that proves it. Check results are reused until an item changes something.
"""

from __future__ import annotations

import difflib
import posixpath
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import events as ev
from .items import Item, ItemResult
from .plan import INSTANCE_FILES, ON_FAILURE

if TYPE_CHECKING:
    from ..checks.base import Result
    from ..targets.base import Target
    from .session import Session

ACTION_TIMEOUT_S = 24 * 3600.0
TROUBLESHOOT_STAGES = frozenset({"cai-stack", "inference", "client"})
TAIL_LINES = 8


class TargetUnreachable(Exception):
    """A target could not be reached (exit 3); the message names it and what to do. ``results``: the items of the
    stage up to the one that could not reach its target (that one ``failed``)."""

    def __init__(self, message: str, results: list[ItemResult] | None = None) -> None:
        super().__init__(message)
        self.results = results or []


@dataclass
class Verdict:
    state: str  # pass | fail | waived | unknown | none
    detail: str = ""
    faq_id: str | None = None
    evidence: list[str] = field(default_factory=list)


class Runner:
    """Applies items through a :class:`~cai_tui.engine.session.Session`, reporting to ``sink``."""

    def __init__(
        self,
        session: Session,
        sink: ev.EventSink,
        *,
        files_dir: Path,
        cancel: ev.CancelToken = ev.NEVER,
    ) -> None:
        self.session = session
        self.sink = sink
        self.files_dir = files_dir
        self.cancel = cancel
        self._results: dict[str, Result] = {}
        self._homes: dict[str, str | None] = {}

    # --- checks -------------------------------------------------------------------------------------------------------

    async def checks(self, ids: Iterable[str]) -> dict[str, Result]:
        """Results of ``ids``, run now unless known since the last change."""
        wanted = [i for i in dict.fromkeys(ids) if i not in self._results]
        if wanted:

            def report(o: Any) -> None:
                self.sink(ev.Event("check", step=o.id, status=o.result.status, text=o.result.summary))

            self._results.update(await self.session.run_checks(wanted, on_result=report))
        return {i: self._results[i] for i in ids if i in self._results}

    def preset(self, results: dict[str, Result]) -> None:
        """Take these check results as known (a fleet host ran them itself), until the next change."""
        self._results.update(results)

    def changed(self) -> None:
        self._results.clear()

    def verdict(self, ids: tuple[str, ...], results: dict[str, Result]) -> Verdict:
        if not ids:
            return Verdict("none")
        states: list[str] = []
        notes: list[str] = []
        failing: Verdict | None = None
        for cid in ids:
            r = results.get(cid)
            if r is None:  # not a check of this flow (or no target for it): it neither proves nor refutes
                notes.append(f"{cid}: not run for this flow")
                continue
            if r.status in ("pass", "warn"):
                states.append("pass")
                notes.append(f"{cid} {r.status}: {r.summary}")
            elif r.status == "fail":
                reason = self.session.waived(cid)
                if reason:
                    states.append("waived")
                    notes.append(f"{cid} waived ({reason})")
                else:
                    states.append("fail")
                    if failing is None:
                        failing = Verdict(
                            "fail",
                            f"{cid}: {r.summary}",
                            r.fix.faq_id if r.fix else None,
                            [f"{e.observed} ({e.source} @ {e.target})" for e in r.evidence],
                        )
            elif r.status == "skip":  # does not apply here (no target, not set yet): it neither proves nor refutes
                notes.append(f"{cid} skip: {r.summary}")
            else:  # unknown: the check could not tell
                reason = self.session.waived(cid)
                states.append("waived" if reason else "unknown")
                notes.append(f"{cid} unknown: {r.summary}" + (f" (waived: {reason})" if reason else ""))
        if failing is not None:
            return failing
        if not states or "unknown" in states:
            return Verdict("unknown", "; ".join(notes))
        if all(s == "waived" for s in states):
            return Verdict("waived", "; ".join(notes))
        return Verdict("pass", "; ".join(notes))

    # --- targets ------------------------------------------------------------------------------------------------------

    def target(self, role: str) -> Target | None:
        return self.session.target(role)

    async def home(self, role: str, target: Target) -> str | None:
        if role not in self._homes:
            from ..targets.home import home_of

            self._homes[role] = await home_of(target)
        return self._homes[role]

    async def remote_path(self, role: str, path: str, target: Target) -> str:
        """``path`` with a leading ``~`` as the home of the user ``target`` runs as."""
        if path.startswith("~"):
            home = await self.home(role, target)
            if home is None:
                raise TargetUnreachable(f"cannot learn $HOME on {target.name} to place {path}")
            from ..deploy.plan import DeployInputError, expand_home

            try:
                path = expand_home(path, home)  # deploy's expansion: ~ and ~/…, ~user refused with the fix
            except DeployInputError as e:
                raise FileProblem(str(e)) from None
        return path

    # --- files --------------------------------------------------------------------------------------------------------

    def _file_dest(self, item: Item) -> tuple[str, bool]:
        """(where the file goes, secrets resolved): instance files where the recipe says (their secrets resolved, as
        the instance needs them); the others into the files folder with references, never values."""
        if item.name in INSTANCE_FILES:
            return item.text, True
        return str(self.files_dir / posixpath.basename(item.text)), False

    async def file_state(self, item: Item) -> tuple[Target, str, bytes, bytes | None, int]:
        """(target, path, new bytes, current bytes or None, mode) of a file item."""
        from ..recipe import SecretUnavailable
        from ..render import RenderError, registry

        dest, resolve = self._file_dest(item)
        role = item.target if resolve else "workstation"
        target = self.target(role)
        if target is None:
            raise FileProblem(f"the recipe names no {item.target} target (targets.{item.target})")
        try:
            out = registry.get(item.name).render(self.session.recipe, resolve=resolve, prompt=self.session.prompt)
        except (RenderError, SecretUnavailable) as e:
            raise FileProblem(str(e)) from None
        path = await self.remote_path(role, dest, target)
        try:
            current: bytes | None = await target.read_file(path)
        except FileNotFoundError:
            current = None
        return target, path, out.text.encode("utf-8"), current, out.mode

    async def add_diffs(self, items: list[Item]) -> None:
        """Fill ``diff`` of the file items (redacted); a file that cannot be rendered keeps the reason in problems."""
        from ..recipe import REDACTOR

        for item in items:
            if item.kind != "file" or not item.applies or item.problems:
                continue
            try:
                _t, path, new, current, _m = await self.file_state(item)
            except FileProblem as e:
                item.problems.append(str(e))
                continue
            except TargetUnreachable as e:
                item.problems.append(str(e))
                continue
            item.text = path
            item.diff = _diff(path, current, new, REDACTOR.redact)

    # --- items --------------------------------------------------------------------------------------------------------

    async def run_items(self, items: list[Item]) -> tuple[list[ItemResult], bool]:
        """Apply ``items`` in order; (results, ok). After the first failure the rest is ``planned``."""
        results: list[ItemResult] = []
        failed = False
        for item in items:
            if failed:
                results.append(ItemResult(item, "planned", "not run: an earlier item failed"))
                continue
            self.cancel.check()
            self.sink(ev.Event("step_started", step=item.id, text=item.title, source=item.target))
            t0 = time.monotonic()
            try:
                res = await self.run_item(item)
            except TargetUnreachable as e:
                results.append(ItemResult(item, "failed", str(e)))
                self.sink(ev.Event("step_finished", step=item.id, text=str(e), status="failed"))
                raise TargetUnreachable(str(e), results) from None
            res.duration_ms = round((time.monotonic() - t0) * 1000)
            self.sink(ev.Event("step_finished", step=item.id, text=res.detail, status=res.status))
            results.append(res)
            if res.status == "failed":
                failed = True
        return results, not failed

    async def run_item(self, item: Item) -> ItemResult:
        from ..targets.base import TargetError

        try:
            return await self._run_item(item)
        except TargetError as e:
            raise TargetUnreachable(f"{item.id} on {item.target}: {e}") from None

    async def _run_item(self, item: Item) -> ItemResult:
        if not item.applies:
            return ItemResult(item, "skipped", item.not_applicable)
        if item.kind == "action":
            return await self._action(item)
        if item.kind == "file":
            return await self._file(item)
        if item.kind == "check":
            return await self._check(item)
        return await self._by_hand(item)

    async def _action(self, item: Item) -> ItemResult:
        base = item.name.split("#", 1)[0]
        if base in ON_FAILURE:
            return ItemResult(item, "skipped", "diagnoses failures: the run uses it when a stage fails")
        if not item.argv:
            return ItemResult(item, "skipped", item.changes or "nothing to do")
        if item.changing:  # a read-only doer (validate, test, ask) always runs: it is the proof itself
            v = self.verdict(item.guard, await self.checks(item.guard))
            if v.state == "pass":
                return ItemResult(item, "skipped", f"already done: {v.detail}")
            if v.state == "waived":
                return ItemResult(item, "waived", v.detail)
        if item.problems:
            return ItemResult(item, "failed", "fill in the recipe first: " + "; ".join(item.problems))
        target = self.target(item.target)
        if target is None:
            return ItemResult(item, "failed", f"the recipe names no {item.target} target (targets.{item.target})")
        unchanged: list[str] = []
        res = await self.run_argv(item, target, unchanged)
        if item.changing and not unchanged:
            self.changed()
        if res.rc != 0:
            tail = [ln for ln in (res.stdout + "\n" + res.stderr).splitlines() if ln.strip()][-TAIL_LINES:]
            after = self.verdict(item.guard, await self.checks(item.guard))
            return ItemResult(
                item,
                "failed",
                f"`{item.command_line}` exited {res.rc}" + (f"; {after.detail}" if after.state == "fail" else ""),
                after.faq_id,
                tail + after.evidence,
            )
        after = self.verdict(item.guard, await self.checks(item.guard))
        if after.state == "fail":
            return ItemResult(item, "failed", f"ran, but {after.detail}", after.faq_id, after.evidence)
        if not item.changing:
            return ItemResult(item, "skipped", f"checked, nothing changed: {last_line(res.stdout) or 'ok'}")
        if unchanged:  # the doer said it found its work done (events.report_unchanged)
            return ItemResult(item, "skipped", f"already done: {unchanged[-1]}")
        return ItemResult(item, "applied", last_line(res.stdout) or "done")

    async def run_argv(self, item: Item, target: Target, unchanged: list[str] | None = None) -> Any:
        """Run the item's argv on ``target``, its output and a child's events to the sink; the texts of the child's
        "already done" notes (:func:`cai_tui.events.report_unchanged`) are appended to ``unchanged``."""
        from ..actions.registry import local_argv
        from ..targets.base import TargetError

        argv = local_argv(list(item.argv), target)

        def sink(event: ev.Event) -> None:
            if unchanged is not None and ev.is_unchanged(event):
                unchanged.append(event.text)
            self.sink(event)

        try:
            return await target.run(
                argv,
                timeout=ACTION_TIMEOUT_S,
                on_line=ev.line_sink(sink, source=target.name, step=item.id),
                env={ev.EVENTS_ENV: "jsonl"},
            )
        except TargetError as e:
            raise TargetUnreachable(f"{target.name}: {e}") from None

    async def _file(self, item: Item) -> ItemResult:
        from ..recipe import REDACTOR

        v = self.verdict(item.guard, await self.checks(item.guard))
        if v.state == "pass" and item.name not in INSTANCE_FILES:
            return ItemResult(item, "skipped", f"not needed: the step is done ({v.detail})")
        if item.problems:
            return ItemResult(item, "failed", "; ".join(item.problems))

        try:
            target, path, new, current, mode = await self.file_state(item)
        except FileProblem as e:
            return ItemResult(item, "failed", str(e))
        if current == new:
            return ItemResult(item, "skipped", f"{path} is up to date on {target.name}")
        from ..deploy.upload import UploadError, upload_file

        try:  # as deploy puts files: parents made, a differing file kept as .bak with its mode, the mode verified
            out = await upload_file(target, path, new, mode)
        except UploadError as e:
            return ItemResult(item, "failed", str(e))
        self.changed()
        diff = _diff(path, current, new, REDACTOR.redact)
        for line in diff.splitlines():
            self.sink(ev.line(line, source=target.name, step=item.id))
        what = f"changed (the previous file kept as {out.backup})" if out.backup else "written"
        return ItemResult(item, "applied", f"{path} {what} on {target.name}, mode {mode:04o}")

    async def _check(self, item: Item) -> ItemResult:
        results = await self.checks(item.guard)
        r = results.get(item.name)
        if r is None:
            return ItemResult(item, "skipped", f"{item.name} does not run for this flow")
        evidence = [f"{e.observed} ({e.source} @ {e.target})" for e in r.evidence]
        faq = r.fix.faq_id if r.fix else None
        if r.status in ("pass", "warn", "skip"):
            return ItemResult(
                item, "skipped", f"{r.status}: {r.summary}", evidence=evidence if r.status == "warn" else []
            )
        reason = self.session.waived(item.name)
        if reason:
            return ItemResult(item, "waived", f"{r.status}: {r.summary} — waived: {reason}", faq, evidence)
        if not item.required:
            return ItemResult(item, "skipped", f"optional check {r.status}: {r.summary}", faq, evidence)
        detail = f"{r.status}: {r.summary}" + (f" — fix: {r.fix.text}" if r.fix else "")
        return ItemResult(item, "failed", detail, faq, evidence)

    async def _by_hand(self, item: Item) -> ItemResult:
        if item.covered_by:
            return ItemResult(item, "skipped", f"the documented equivalent of {item.covered_by}, which does this step")
        v = self.verdict(item.guard, await self.checks(item.guard))
        where = f" on {item.target}" if item.target != "console" else ""
        if v.state == "pass":
            return ItemResult(item, "skipped", f"done: {v.detail}")
        if v.state == "waived":
            return ItemResult(item, "waived", v.detail)
        if v.state == "fail":
            todo = f"do this by hand{where}: {item.text or item.title}"
            return ItemResult(item, "failed", f"{todo} — then {v.detail}", v.faq_id, v.evidence)
        why = v.detail or "nothing here can check it"
        return ItemResult(item, "skipped", f"done by a person{where} ({why})")

    # --- failures -----------------------------------------------------------------------------------------------------

    async def diagnose(self, result: ItemResult) -> None:
        """In the CAI stack's stages, ask the troubleshooter which FAQ fix applies and which log line proves it."""
        if result.item.stage not in TROUBLESHOOT_STAGES or self.target("instance") is None:
            return
        from ..troubleshoot import TroubleshootOptions, troubleshoot

        try:
            report = await troubleshoot(
                TroubleshootOptions(loaded=self.session.loaded, targets=self.session.targets, confirm=True)
            )
        except Exception as e:  # the run's own failure stays the message; say why no diagnosis came
            self.sink(ev.note(f"troubleshoot could not read the stack: {e}", level="warn", step=result.item.id))
            return
        known = [f for f in report.findings if f.faq_id != "unknown"]
        best = sorted(known, key=lambda f: (f.rank, -f.score))[:1]
        for f in best:
            result.faq_id = f.faq_id
            proof = f"{f.evidence.line} — {f.evidence.source}" if f.evidence else ""
            result.evidence = [e for e in (f"{f.service}: {f.title}", proof) if e] + result.evidence
            result.detail += f" — troubleshoot: [{f.faq_id}] {f.title}; fix: {f.fix}"
            self.sink(ev.note(f"troubleshoot: [{f.faq_id}] {f.title}", level="error", step=result.item.id))


class FileProblem(Exception):
    """A generated file cannot be produced (the recipe lacks a value, a secret is unavailable, no target)."""


def _diff(path: str, current: bytes | None, new: bytes, redact: Any) -> str:
    if current == new:
        return ""
    old_lines = redact(current.decode("utf-8", "replace")).splitlines(keepends=True) if current is not None else []
    new_lines = redact(new.decode("utf-8", "replace")).splitlines(keepends=True)
    return "".join(
        difflib.unified_diff(
            old_lines, new_lines, fromfile=f"{path} (current)" if current is not None else "/dev/null", tofile=path
        )
    )


def last_line(text: str) -> str:
    """The last line a person would read (JSON event lines of a child left out)."""
    for line in reversed(text.splitlines()):
        if line.strip() and not ev.parse_line(line):
            return line.strip()
    return ""


__all__ = ["FileProblem", "Runner", "TargetUnreachable"]
