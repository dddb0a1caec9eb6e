"""`cai-tui doctor` wall time: hung endpoints cost their own timeout, not the sum; and a healthy run's cost.

1. The lab with `trustee-hang` on, and the recipe's OSS endpoint pointed at a silent listener (accepts TCP, never
   answers), doctor --timeout 3: total wall time vs the sum of the individual check durations of the same run
   (goal: wall ≤ timeout + 1 s).
2. doctor --json on the healthy lab: wall time and peak RSS of the doctor process.

Run: .venv/bin/python benchmarks/bench_doctor.py [--timeout 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def start_lab(state: Path, faults: str) -> tuple[subprocess.Popen, dict]:
    argv = [sys.executable, "-m", "cai_tui.cli.main", "lab", "serve", "--state-dir", str(state)]
    if faults:
        argv += ["--faults", faults]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    return proc, json.loads(line)


def run_doctor(recipe: str, timeout: float) -> tuple[float, dict, int]:
    argv = [sys.executable, "-m", "cai_tui.cli.main", "doctor", "--recipe", recipe, "--json", "--timeout", str(timeout)]
    with tempfile.TemporaryFile("w+") as out:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(proc.pid, 0)  # this child's own rusage (not the lab's)
        wall = time.perf_counter() - t
        proc.returncode = 0
        out.seek(0)
        return wall, json.loads(out.read()), usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args()
    os.environ.setdefault("CAI_TUI_HOME", tempfile.mkdtemp(prefix="cai-bench-home-"))
    with tempfile.TemporaryDirectory() as tmp:
        # 1. two hung endpoints
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # never accepted: connections complete, requests are never answered
        proc, ready = start_lab(Path(tmp) / "lab-hang", "trustee-hang")
        try:
            text = Path(ready["recipe"]).read_text()
            hung_recipe = Path(tmp) / "hung.yaml"
            hung_recipe.write_text(text.replace(ready["oss_endpoint"], f"http://127.0.0.1:{silent.getsockname()[1]}"))
            wall, doc, _ = run_doctor(str(hung_recipe), args.timeout)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
            silent.close()
        total = sum(c["duration_ms"] for c in doc["checks"]) / 1000
        hung = [c["id"] for c in doc["checks"] if c["duration_ms"] >= args.timeout * 1000 * 0.9]
        # 2. healthy lab
        proc, ready = start_lab(Path(tmp) / "lab-ok", "")
        try:
            healthy_wall, healthy_doc, peak_kib = run_doctor(ready["recipe"], 10.0)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    statuses: dict[str, int] = {}
    for c in healthy_doc["checks"]:
        statuses[c["status"]] = statuses.get(c["status"], 0) + 1
    print(f"hung endpoints (trustee-hang + silent OSS), --timeout {args.timeout:g}:")
    print(
        f"  wall {wall:.2f} s; sum of check durations {total:.2f} s; wall/sum {wall / total:.2f}; "
        f"goal wall ≤ {args.timeout + 1:g} s -> {'met' if wall <= args.timeout + 1 else 'NOT met'}"
    )
    print(f"  checks that ran into the timeout: {', '.join(hung) or 'none'}")
    slow = sorted(doc["checks"], key=lambda c: -c["duration_ms"])[:5]
    print("  slowest: " + ", ".join(f"{c['id']} {c['duration_ms'] / 1000:.2f}s {c['status']}" for c in slow))
    failing = [f"{c['id']}: {c['evidence'][:1]}" for c in healthy_doc["checks"] if c["status"] == "fail"]
    print(f"healthy lab: wall {healthy_wall:.2f} s, peak RSS {peak_kib / 1024:.1f} MiB, statuses {statuses} {failing}")
    print(
        json.dumps(
            {
                "bench": "doctor",
                "hung_wall_s": wall,
                "hung_sum_s": total,
                "timeout_s": args.timeout,
                "hung_checks": hung,
                "healthy_wall_s": healthy_wall,
                "healthy_peak_rss_mib": peak_kib / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
