"""Who says whether TNG accepts a configuration: the installed ``tng`` binary when it is the version asked about and it
can run sandboxed here, else our models of that version. The models always add the field-level messages (JSON path
and fix) when they find the problem too."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .problems import Problem, check_supported, parse_version
from .schema import problems as model_problems

NEWEST_MODELLED = "2.8.0"  # the newest release whose src/config the 2.x models follow


@dataclass
class Verdict:
    valid: bool
    judge: Literal["binary", "models"]
    version: str  # the TNG version judged for
    judged_by: str  # one line for a person: "the tng 2.12.0 binary (/…/tng)" or "the models of TNG 1.0.3"
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _same_release(a: str, b: str) -> bool:
    return parse_version(a) == parse_version(b)


def judge(config: Any, version: str | None = None, *, use_binary: bool = True) -> Verdict:
    """Judge ``config`` for TNG ``version`` (default: the installed binary's, else the newest modelled)."""
    from ..actions.tng_client import binary_version, find_binary
    from . import binary_judge

    notes: list[str] = []
    binary = find_binary() if use_binary else None
    bin_version = binary_version(binary) if binary else None
    want = version or bin_version or NEWEST_MODELLED
    check_supported(want)
    models_found = model_problems(config, want)
    if binary and bin_version and _same_release(want, bin_version):
        if binary_judge.sandbox() is None:
            notes.append(
                f"the tng {bin_version} binary is installed but cannot run sandboxed here (unshare --net needs root or "
                "user namespaces); the models judged instead"
            )
        else:
            run, run_notes = binary_judge.judge(binary, config)
            notes.extend(run_notes)
            by = f"the tng {bin_version} binary ({binary})"
            if run.outcome == "accepted":
                if models_found:
                    notes.append("the models disagree (a defect of ours): " + "; ".join(p.line() for p in models_found))
                return Verdict(True, "binary", want, by, [], notes)
            stage = "parse error" if run.stage == "parse" else "configuration check"
            found = models_found or [Problem(run.path, run.message, "change what tng names there")]
            notes.insert(0, f"tng refused it ({stage}): {run.message}")
            return Verdict(False, "binary", want, by, found, notes)
    elif binary and bin_version:
        notes.append(f"the installed tng is {bin_version}; for TNG {want} our models judge")
    elif use_binary:
        notes.append("no tng binary here (pip install 'cai-tui[tng]' brings it); the models judged")
    return Verdict(not models_found, "models", want, f"the models of TNG {want}", models_found, notes)
