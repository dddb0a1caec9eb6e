"""`cai-tui doctor --hosts` wall time vs its floor (plain ssh) and vs plain Ansible, on a fleet of real sshd.

One run starts 16 OpenSSH servers on 127.0.0.1 (cai_tui.lab.fleet.start_fleet) and, for N in 1, 4, 8, 16 hosts,
measures the wall time (what a user waits for, whole commands as subprocesses) of:

1. ours: ``python -m cai_tui.cli.main doctor --hosts INV --forks N --json -l host01,…,hostNN --only <instance checks>``
   (only checks a capture answers, so no network check costs time). Exit 0 or 1, and N hosts in the JSON, none of
   them unreachable nor without a usable capture — else the benchmark crashes.
2. the floor: ``ssh host true`` to the same N hosts, all started together, waited for together.
3. plain Ansible: ``ansible-playbook -i INV -f N -l …`` of a hand-written playbook doing the same capture (one play,
   hosts all, gather_facts false, one ``script`` task running the same capture script from a file).

Machines are shared and noisy: the measurements are interleaved (each repetition runs every size, each size every
contender, the contenders' order rotated per repetition) and the medians of R repetitions are reported. Every
Ansible run (ours and plain) gets a fresh ssh ControlPath directory, so no run reuses another's connections.

Goals (reported, not asserted):
- scaling: (ours(16) / ours(1)) / (floor(16) / floor(1)) ≤ 1.5
- overhead vs Ansible itself: ours(16) / ansible-playbook(16) ≤ 1.2

Besides the wall time, ours is split with its own figures: its JSON's ``seconds`` (run_fleet_doctor's time, from
before ansible-runner starts) and the mtime of the last capture file (``--captures DIR``: each host's capture is
written the moment Ansible's result for it arrives): start = wall - seconds (interpreter, imports, inventory,
--only), ansible = last capture written - start (ansible-runner + ansible-playbook until the last host's result),
tail = wall - last capture written (judging it, ansible-playbook's exit, the JSON, the interpreter's exit).

Run: .venv/bin/python benchmarks/bench_fleet_doctor.py [--reps 3] [--sizes 1,4,8,16] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cai_tui.lab.fleet import Fleet

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
ONLY = "gpu.*,docker.*,host.*,disk.*"  # the instance checks: every one is answered by a host's capture
GOAL_SCALING = 1.5
GOAL_VS_ANSIBLE = 1.2


class BenchError(RuntimeError):
    """A contender did not do its job (hosts not reached, a bad exit): the figures would be meaningless."""


def limit_of(n: int) -> str:
    return ",".join(f"host{i:02d}" for i in range(1, n + 1))


def ansible_env(tmp: Path, run: str) -> dict[str, str]:
    """A private Ansible home/temp and a fresh ssh ControlPath dir for one run (no connection reuse across runs)."""
    home = tmp / "runs" / run
    (home / "cp").mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_HOME": str(home / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(home / "ansible-tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(home / "cp"),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
    }


def close_masters(env: dict[str, str]) -> None:
    """End the ControlPersist masters a run left behind (outside the timed part), so they don't load later runs."""
    cp = Path(env["ANSIBLE_SSH_CONTROL_PATH_DIR"])
    for sock in cp.iterdir() if cp.is_dir() else []:
        subprocess.run(
            ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "cai-tui-bench"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )


def run_ours(inv: Path, n: int, tmp: Path, run: str) -> tuple[float, dict, tuple[float, float, float]]:
    """(wall, the JSON, (start, capture, judge)): the split from the run's own figures (see the module's doc)."""
    env = ansible_env(tmp, run)
    captures = tmp / "runs" / run / "captures"
    argv = [sys.executable, "-m", "cai_tui.cli.main", "doctor", "--hosts", str(inv), "--forks", str(n), "--json"]
    argv += ["-l", limit_of(n), "--only", ONLY, "--captures", str(captures)]
    try:
        t0 = time.time()
        t = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=300, check=False)
        wall = time.perf_counter() - t
    finally:
        close_masters(env)
    if proc.returncode not in (0, 1):
        raise BenchError(f"ours N={n}: exit {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    doc = json.loads(proc.stdout)
    hosts = doc["hosts"]
    bad = [
        f"{h['name']}: {h['status']} {h.get('error', '')}"
        for h in hosts
        if h["status"] == "unreachable" or h.get("error")
    ]
    if len(hosts) != n or bad:
        raise BenchError(f"ours N={n}: {len(hosts)} host(s) in the JSON, not reached/judged: {bad}")
    # each host's capture is written (--captures) the moment its result arrives: the last one ends Ansible's part
    arrived = max(f.stat().st_mtime for f in captures.glob("*/*.txt")) - t0
    inner = float(doc["seconds"])  # run_fleet_doctor: from before ansible-runner starts to the last host judged
    return wall, doc, (wall - inner, arrived - (wall - inner), wall - arrived)


def run_floor(fleet: Fleet, n: int) -> float:
    t = time.perf_counter()
    procs = [
        subprocess.Popen(
            [*fleet.ssh_argv(h), "true"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for h in fleet.hosts[:n]
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    wall = time.perf_counter() - t
    bad = [
        f"{h.name}: rc {p.returncode} {o.decode(errors='replace').strip()}"
        for h, p, o in zip(fleet.hosts[:n], procs, outs, strict=True)
        if p.returncode != 0
    ]
    if bad:
        raise BenchError(f"floor N={n}: ssh failed: {bad}")
    return wall


def write_playbook(path: Path, script: Path) -> Path:
    """The hand-written equivalent of doctor --hosts' play (cai_tui.fleet.doctor._capture_play)."""
    path.write_text(
        "- name: plain Ansible, the same capture\n"
        "  hosts: all\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: capture\n"
        "      script:\n"
        f"        cmd: {json.dumps(str(script))}\n"
        "        executable: /bin/sh\n"
        "      changed_when: false\n"
    )
    return path


def run_ansible(inv: Path, playbook: Path, n: int, tmp: Path, run: str) -> float:
    env = ansible_env(tmp, run)
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(inv), "-f", str(n), "-l", limit_of(n), str(playbook)]
    try:
        t = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp, env=env, timeout=300, check=False)
        wall = time.perf_counter() - t
    finally:
        close_masters(env)
    recap = [ln for ln in proc.stdout.splitlines() if ln.startswith("host") and "ok=" in ln]
    good = [ln for ln in recap if " ok=1 " in ln and "unreachable=0" in ln and "failed=0" in ln]
    if proc.returncode != 0 or len(good) != n:
        raise BenchError(f"ansible-playbook N={n}: rc {proc.returncode}, recap {recap}: {proc.stdout[-2000:]}")
    return wall


def verdict(value: float, goal: float) -> str:
    return "PASS" if value <= goal else "MISS"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3, help="repetitions (medians are reported)")
    ap.add_argument("--sizes", default="1,4,8,16", help="host counts (forks = N)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    os.environ.setdefault("CAI_TUI_HOME", tempfile.mkdtemp(prefix="cai-bench-home-"))

    from cai_tui.fleet.capture import capture_script
    from cai_tui.lab.fleet import start_fleet

    contenders = ["ours", "floor", "ansible"]
    walls: dict[str, dict[int, list[float]]] = {c: {n: [] for n in sizes} for c in contenders}
    splits: dict[int, list[tuple[float, float, float]]] = {n: [] for n in sizes}
    statuses: dict[int, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="cai-bench-fleet-") as tmp_s:
        tmp = Path(tmp_s)
        fleet = None
        try:
            t = time.perf_counter()
            fleet = start_fleet(tmp / "fleet", max(sizes))
            print(f"{max(sizes)} sshd on 127.0.0.1 up in {time.perf_counter() - t:.2f} s; {os.cpu_count()} CPU(s)")
            inv = fleet.write_inventory(tmp / "hosts.ini")
            script = tmp / "capture.sh"
            script.write_text(capture_script()[0])
            script.chmod(0o700)
            playbook = write_playbook(tmp / "capture.yml", script)
            # warm-up (not timed into the figures): imports' bytecode, the page cache, sshd's first forks
            run_ours(inv, 1, tmp, "warm-ours")
            run_ansible(inv, playbook, 1, tmp, "warm-ansible")
            run_floor(fleet, 1)
            for rep in range(args.reps):
                for n in sizes:
                    order = contenders[rep % 3 :] + contenders[: rep % 3]
                    for c in order:
                        run = f"r{rep}-n{n}-{c}"
                        if c == "ours":
                            wall, doc, split = run_ours(inv, n, tmp, run)
                            splits[n].append(split)
                            statuses[n] = doc["summary"]
                        elif c == "floor":
                            wall = run_floor(fleet, n)
                        else:
                            wall = run_ansible(inv, playbook, n, tmp, run)
                        walls[c][n].append(wall)
                    print(
                        f"  rep {rep + 1}/{args.reps} N={n:2d}: "
                        + ", ".join(f"{c} {walls[c][n][-1]:.2f}s" for c in contenders),
                        flush=True,
                    )
        finally:
            if fleet is not None:
                fleet.stop()

    med = {c: {n: statistics.median(walls[c][n]) for n in sizes} for c in contenders}
    msplit = {n: tuple(statistics.median(s[i] for s in splits[n]) for i in range(3)) for n in sizes}
    print()
    print(f"median of {args.reps} (seconds); ours split: start | ansible (to the last capture) | tail")
    print(f"{'N':>3} {'ours':>7} {'floor':>7} {'ansible-pb':>10}   {'start':>6} {'ansible':>7} {'tail':>6}  statuses")
    for n in sizes:
        s = msplit[n]
        print(
            f"{n:>3} {med['ours'][n]:>7.2f} {med['floor'][n]:>7.2f} {med['ansible'][n]:>10.2f}   "
            f"{s[0]:>6.2f} {s[1]:>7.2f} {s[2]:>6.2f}  {statuses.get(n)}"
        )
    lo, hi = min(sizes), max(sizes)
    ours_ratio = med["ours"][hi] / med["ours"][lo]
    floor_ratio = med["floor"][hi] / med["floor"][lo]
    pb_ratio = med["ansible"][hi] / med["ansible"][lo]
    scaling = ours_ratio / floor_ratio
    vs_pb = med["ours"][hi] / med["ansible"][hi]
    print()
    print(f"wall({hi})/wall({lo}): ours {ours_ratio:.2f}, floor {floor_ratio:.2f}, ansible-playbook {pb_ratio:.2f}")
    print(f"ours-ratio / floor-ratio = {scaling:.2f} (goal ≤ {GOAL_SCALING}) -> {verdict(scaling, GOAL_SCALING)}")
    print(
        f"ours({hi}) / ansible-playbook({hi}) = {vs_pb:.2f} (goal ≤ {GOAL_VS_ANSIBLE}) -> {verdict(vs_pb, GOAL_VS_ANSIBLE)}"
    )
    figures = {
        "bench": "fleet_doctor",
        "reps": args.reps,
        "sizes": sizes,
        "cpus": os.cpu_count(),
        "only": ONLY,
        "walls_s": {c: {str(n): walls[c][n] for n in sizes} for c in contenders},
        "median_s": {c: {str(n): med[c][n] for n in sizes} for c in contenders},
        "ours_split_median_s": {str(n): dict(zip(("start", "ansible", "tail"), msplit[n], strict=True)) for n in sizes},
        "ratio_ours": ours_ratio,
        "ratio_floor": floor_ratio,
        "ratio_ansible": pb_ratio,
        "scaling": scaling,
        "scaling_goal": GOAL_SCALING,
        "scaling_pass": scaling <= GOAL_SCALING,
        "ours_vs_ansible": vs_pb,
        "ours_vs_ansible_goal": GOAL_VS_ANSIBLE,
        "ours_vs_ansible_pass": vs_pb <= GOAL_VS_ANSIBLE,
    }
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if k not in ("walls_s",)}))


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()
