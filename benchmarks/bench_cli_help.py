"""`cai-tui --help` start-up, side by side with a bare interpreter and with importing the heavy libraries.

Run: .venv/bin/python benchmarks/bench_cli_help.py [--runs 15]
Prints the median wall time of each and the ratios; the goal is --help well under 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "cai-tui --help": [sys.executable, "-m", "cai_tui.cli.main", "--help"],
    "cai-tui --version": [sys.executable, "-m", "cai_tui.cli.main", "--version"],
    "import textual+pydantic+oss2+docker+paramiko": [
        sys.executable,
        "-c",
        "import textual.app, pydantic, oss2, docker, paramiko, alibabacloud_kms20160120.client",
    ],
}


def median_wall(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    results = {}
    # interleave rounds so machine noise hits every case alike
    for argv in CASES.values():
        median_wall(argv, 1)  # warm the page cache
    per_case: dict[str, list[float]] = {n: [] for n in CASES}
    for _ in range(args.runs):
        for name, argv in CASES.items():
            per_case[name].append(median_wall(argv, 1))
    for name, vals in per_case.items():
        results[name] = statistics.median(vals)
    base = results["python -c pass"]
    print(f"{'case':<48} {'median s':>9} {'× bare python':>14}")
    for name, value in results.items():
        print(f"{name:<48} {value:9.3f} {value / base:14.1f}")
    help_s = results["cai-tui --help"]
    heavy = results["import textual+pydantic+oss2+docker+paramiko"]
    print(
        f"--help costs {help_s / heavy:.2f} of importing the heavy libraries; goal: --help < 0.5 s -> {'met' if help_s < 0.5 else 'NOT met'}"
    )
    print(json.dumps({"bench": "cli_help", "median_s": results, "help_over_heavy": help_s / heavy}))


if __name__ == "__main__":
    main()
