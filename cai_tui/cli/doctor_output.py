"""``cai-tui doctor``'s human output, printed as the results land.

Results are printed in stage order (the order of the flow's stages, then the registry's within a stage): a result
that lands early is printed as soon as every check before it in that order has landed, so a hung check holds back
only what comes after it, and the output reads the same whatever order the checks finish in. Each row is flushed as
it is printed (on a terminal and in a pipe); the summary comes last. Light imports only: rich is imported when the
printer is made.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from .doctor_texts import text

if TYPE_CHECKING:
    from ..checks.base import CheckSpec
    from ..checks.runner import CheckOutcome
    from ..engine.session import DoctorVerdict

SYMBOLS = {"pass": "✓", "fail": "✗", "warn": "!", "skip": "–", "unknown": "?"}
STYLES = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim", "unknown": "magenta"}
STATUS_ORDER = ("pass", "warn", "fail", "skip", "unknown")
CHECK_MIN_WIDTH = 22


def stage_order(flow: str | None, lang: str = "en") -> dict[str, tuple[int, str]]:
    """stage id → (its number in the flow, its title in ``lang``); every flow's stages without a flow."""
    from ..stages import StageSpecError, load_all

    try:
        flows = load_all()
    except StageSpecError:
        return {}
    out: dict[str, tuple[int, str]] = {}
    for name in [flow] if flow else list(flows):
        if name not in flows:
            continue
        for s in flows[name].stages:
            out.setdefault(s.id, (s.order, s.title.get(lang)))
    return out


def in_stage_order(specs: list[CheckSpec], order: dict[str, tuple[int, str]]) -> list[CheckSpec]:
    """``specs`` by stage number (stages the flow does not know last), then as given within a stage."""
    ranked = sorted(enumerate(specs), key=lambda p: (order.get(p[1].stage, (999, p[1].stage))[0], p[1].stage, p[0]))
    return [s for _, s in ranked]


def faq_fix(faq_id: str, lang: str) -> str | None:
    """The shipped FAQ entry's fix in ``lang`` (None when there is no such entry or the FAQ cannot be read)."""
    from ..faq.kb import FaqError, default_kb

    try:
        kb = default_kb()
    except FaqError:
        return None
    return kb.get(faq_id).fix.get(lang) if faq_id in kb else None


class LivePrinter:
    """Prints each check's row when every check before it (in stage order) has landed, then the summary.

    ``waiver``: check id → the waiver reason covering it when it fails or is unknown (None when none does)."""

    def __init__(
        self,
        specs: list[CheckSpec],
        *,
        flow: str | None,
        target_names: dict[str, str],
        waiver: Callable[[str], str | None],
        lang: str = "en",
        out: IO[str] | None = None,
        redact: Callable[[str], str] = lambda s: s,
    ) -> None:
        import io

        from rich.cells import cell_len
        from rich.console import Console

        self.out = out if out is not None else sys.stdout
        self.lang = lang
        self.redact = redact
        self.waiver = waiver
        self.order = stage_order(flow, lang)
        self.specs = in_stage_order(specs, self.order)
        self.landed: dict[str, CheckOutcome] = {}
        self.printed = 0
        self.stage: str | None = None
        self.broken = False  # the reader went away (a closed pipe): stop writing, keep judging
        tty = self.out.isatty()
        self.buf = io.StringIO()
        self.console = Console(
            file=self.buf,
            width=max(100, Console().width) if tty else 120,
            force_terminal=tty,
            highlight=False,
            soft_wrap=False,
        )
        optional = 1 + cell_len(text("optional", lang))  # terminal cells: a CJK character takes two
        self.check_width = max(
            [CHECK_MIN_WIDTH, *(cell_len(s.id) + (0 if s.required else optional) for s in self.specs)]
        )
        self.target_width = max([1, *(cell_len(target_names.get(s.id, "")) for s in self.specs)])

    # ------------------------------------------------------------------------------------------------- writing

    def _flush(self) -> None:
        """Hand what the console rendered to the output now, redacted."""
        chunk = self.buf.getvalue()
        self.buf.seek(0)
        self.buf.truncate()
        if self.broken or not chunk:
            return
        try:
            self.out.write(self.redact(chunk))
            self.out.flush()
        except (BrokenPipeError, ValueError):  # the reader closed the pipe (or the stream): the verdict still counts
            self.broken = True

    def header(self, source: str | None) -> None:
        from rich.markup import escape

        if source:
            self.console.print(escape(text("source", self.lang, source=source)))
            self._flush()

    def land(self, outcome: CheckOutcome) -> None:
        """A check finished (the runner's ``on_result``): print it and whatever it was holding back."""
        self.landed[outcome.id] = outcome
        while self.printed < len(self.specs) and self.specs[self.printed].id in self.landed:
            self._row(self.landed[self.specs[self.printed].id])
            self.printed += 1
        self._flush()

    def _row(self, o: CheckOutcome) -> None:
        from rich.markup import escape
        from rich.table import Table

        if o.spec.stage != self.stage:
            if self.stage is not None:
                self.console.print()
            self.stage = o.spec.stage
            num, title = self.order.get(o.spec.stage, (0, o.spec.stage))
            heading = f"{num:02d} {o.spec.stage} — {title}" if num else o.spec.stage
            self.console.print(escape(heading), style="bold")
        r = o.result
        lang = self.lang
        lines = [escape(r.summary)]
        reason = self.waiver(o.id) if r.status in ("fail", "unknown") else None
        if reason is not None:
            lines.append(f"[cyan]{escape(text('waived', lang, reason=reason))}[/]")
        if r.status in ("fail", "warn", "unknown"):
            for e in r.evidence:
                where = f"{e.source} @ {e.target}" if e.target else e.source
                lines.append(f"[dim]{escape(text('evidence', lang, observed=e.observed, where=where))}[/]")
            if r.fix is not None:
                translated = faq_fix(r.fix.faq_id, lang) if lang != "en" else None
                lines.append(escape(text("fix", lang, faq_id=r.fix.faq_id, text=translated or r.fix.text)))
                if translated:  # the check's own words (specific to this run) follow the FAQ's
                    lines.append(f"[dim]{escape(text('fix_check', lang, text=r.fix.text))}[/]")
        optional = "" if o.spec.required else f" [dim]{escape(text('optional', lang))}[/]"
        table = Table(show_header=False, expand=True, box=None, pad_edge=False)
        table.add_column("", width=1, no_wrap=True)
        table.add_column("check", style="bold", no_wrap=True, width=self.check_width)
        table.add_column("result", ratio=1, overflow="fold")  # a long word (a URL, a CJK run) folds, never cut
        table.add_column("target", style="dim", no_wrap=True, width=self.target_width)
        table.add_row(
            f"[{STYLES.get(r.status, '')}]{SYMBOLS.get(r.status, '?')}[/]",
            escape(o.id) + optional,
            "\n".join(lines),
            escape(o.target_name),
        )
        self.console.print(table)

    def summary(self, outcomes: list[CheckOutcome], verdict: DoctorVerdict) -> None:
        """The counts and the verdict (after every row: anything never landed is printed first)."""
        for o in outcomes:
            if o.id not in self.landed:
                self.land(o)
        if self.stage is not None:
            self.console.print()
        self.console.print(summary_line(outcomes, verdict, self.lang), markup=False, soft_wrap=True)  # one line
        self._flush()


def summary_line(outcomes: list[CheckOutcome], verdict: DoctorVerdict, lang: str) -> str:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.result.status] = counts.get(o.result.status, 0) + 1
    parts = [text("count", lang, n=counts[s], status=text(f"status.{s}", lang)) for s in STATUS_ORDER if counts.get(s)]
    if verdict.state == "nothing-checked":
        tails = [text("nothing", lang)]
    elif verdict.failed or verdict.unknown:
        tails = []
        if verdict.failed:
            tails.append(text("failed", lang, n=len(verdict.failed)))
        if verdict.unknown:
            tails.append(text("unknown", lang, n=len(verdict.unknown)))
    else:
        tails = [text("ok", lang)]
    return text("count_sep", lang).join(parts) + text("verdict_sep", lang) + text("tail_sep", lang).join(tails)


__all__ = ["STYLES", "SYMBOLS", "LivePrinter", "faq_fix", "in_stage_order", "stage_order", "summary_line"]
