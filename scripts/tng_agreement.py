"""Print the agreement of our TNG models with the oracle on TNG's doc examples, per version (tests/fixtures/tng/).

Usage: .venv/bin/python scripts/tng_agreement.py [-v]   (from the repository root; needs the tng binary of the
tng-sdk wheel for the 2.x oracle: pip install 'cai-tui[tng]'). -v lists each example with both verdicts.
What the oracle is per version: tests/tng/agreement.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cai_tui.actions.tng_client import binary_version, find_binary
from tests.tng.agreement import VERSIONS, cases, judge_case, table


def main() -> None:
    binary = find_binary()
    if binary is None:
        sys.exit("the tng binary is missing (pip install 'cai-tui[tng]'): it is the oracle for the 2.x examples")
    outcomes = [judge_case(c, binary) for v in VERSIONS for c in cases(v)]
    if "-v" in sys.argv:
        for o in outcomes:
            mark = "agree" if o.agreed else "DISAGREE"
            models = "valid" if o.models_valid else "invalid: " + "; ".join(o.models_problems)
            oracle = "valid" if o.oracle_valid else "invalid"
            print(f"{mark:8} {o.case.version} {o.case.file} {o.case.source}: oracle {oracle}; models {models}")
            print(f"{'':8} tng {binary_version(binary)} binary: {o.binary_note}")
    print(f"Oracle binary: {binary} (tng {binary_version(binary)})")
    print(table(outcomes))


if __name__ == "__main__":
    main()
