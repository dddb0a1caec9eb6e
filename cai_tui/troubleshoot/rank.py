"""The order findings are shown in, per container.

Findings backed by evidence (a log line, a health-probe line, a failing check, or a related check that failed)
come first, best score first (ties by id); then ``unknown`` with the most telling lines; then the findings that rest
only on a state or an exit code. So when nothing proves a cause, the first answer is ``unknown`` and its lines,
never a guess from an exit code.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ..faq.matcher import UNKNOWN_ID, Finding


def rank(findings: Sequence[Finding], confirmed: Collection[str] = ()) -> list[Finding]:
    """``findings`` in report order; ``confirmed``: the ids a failing related check backs."""

    def group(f: Finding) -> int:
        if f.faq_id == UNKNOWN_ID:
            return 1
        return 0 if f.has_direct_evidence or f.faq_id in confirmed else 2

    return sorted(findings, key=lambda f: (group(f), -f.score, f.faq_id))
