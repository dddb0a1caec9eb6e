#!/usr/bin/env python3
"""Upload throughput of the lab OSS against a plain local copy, with the lab server's CPU share and memory.

    .venv/bin/python benchmarks/bench_lab_upload.py --size-mib 1024

One run, in one temporary directory (the data file, its copy and the lab's state all on the same disk):

1. start ``cai-tui lab serve`` as a subprocess (its own state directory, a free port base) and wait for its ready line;
2. write a SIZE MiB file of random bytes;
3. time ``shutil.copyfile`` of it (the disk's baseline) and ``oss2.resumable_upload`` of it to the lab
   (multipart, ``--part-size-mib`` parts, ``--threads`` threads; oss2 checks every part's CRC-64), side by side;
4. read the lab process's ``/proc/<pid>/stat`` (utime + stime) before and after the upload: CPU seconds / wall seconds
   is its CPU share (1.0 = one core busy); and its peak RSS (``VmHWM`` in ``/proc/<pid>/status``) before and after
   the upload: a streaming server's peak stays flat whatever the object size. The peak is first reset to the current
   RSS (``/proc/<pid>/clear_refs``), because the seeding's scrypt (64 MiB) already set a peak that would hide growth.

Prints a small table and one JSON line (``{"event": "bench_lab_upload", …}``). The page cache is not dropped: both
the copy and the upload read a file that was just written, so they compare like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def free_port_base(count: int = 4) -> int:
    rng = random.SystemRandom()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - count)
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no 4 consecutive free ports")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/<pid>/clear_refs``, Linux ≥ 4.0); False when not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def write_random_file(path: Path, size: int) -> None:
    chunk = 4 * MIB
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n


def start_lab(root: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any], Path]:
    repo = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(repo), *filter(None, [env.get("PYTHONPATH")])])
    err_path = root / "lab-serve.stderr"
    argv = [sys.executable, "-m", "cai_tui.cli.main", "lab", "serve", "--state-dir", str(root / "lab-state")]
    argv += ["--port-base", str(free_port_base())]
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env)
    assert proc.stdout is not None
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(30)
    if not lines or not lines[0]:
        proc.kill()
        raise SystemExit(f"the lab did not get ready:\n{err_path.read_text(errors='replace')}")
    return proc, json.loads(lines[0]), err_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--size-mib", type=int, default=1024, help="size of the test file in MiB (default 1024)")
    ap.add_argument("--part-size-mib", type=int, default=10, help="multipart part size in MiB (default 10)")
    ap.add_argument("--threads", type=int, default=4, help="oss2 upload threads (default 4)")
    ap.add_argument("--work-dir", default=None, help="where the temporary directory goes (default: the system's)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    if args.size_mib < 1:
        ap.error("--size-mib must be at least 1")

    import oss2

    size = args.size_mib * MIB
    root = Path(tempfile.mkdtemp(prefix="cai-lab-bench-", dir=args.work_dir))
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc, info, err_path = start_lab(root)
        creds = json.loads(Path(info["credentials"]).read_text())
        src = root / "data.bin"
        t = time.perf_counter()
        write_random_file(src, size)
        write_s = time.perf_counter() - t

        # Baseline: a plain local copy on the same disk.
        t = time.perf_counter()
        shutil.copyfile(src, root / "copy.bin")
        copy_s = time.perf_counter() - t
        (root / "copy.bin").unlink()

        # The upload to the lab, with the server's CPU time and peak RSS around it.
        session = oss2.Session()
        session.session.trust_env = False
        bucket = oss2.Bucket(
            oss2.Auth(creds["oss_access_key_id"], creds["oss_access_key_secret"]),
            creds["oss_endpoint"],
            creds["oss_bucket"],
            session=session,
            region=creds["oss_region"],
        )
        key = "bench/data.bin"
        hwm_start = status_kib(proc.pid, "VmHWM")  # includes the seeding's scrypt (64 MiB)
        peak_reset = reset_peak_rss(proc.pid)
        hwm_before = status_kib(proc.pid, "VmHWM")
        rss_before = status_kib(proc.pid, "VmRSS")
        cpu_before = cpu_seconds(proc.pid)
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        t = time.perf_counter()
        oss2.resumable_upload(
            bucket,
            key,
            str(src),
            store=oss2.ResumableStore(root=str(root)),
            multipart_threshold=args.part_size_mib * MIB,
            part_size=args.part_size_mib * MIB,
            num_threads=args.threads,
        )
        upload_s = time.perf_counter() - t
        cpu_after = cpu_seconds(proc.pid)
        self_after = resource.getrusage(resource.RUSAGE_SELF)
        hwm_after = status_kib(proc.pid, "VmHWM")
        rss_after = status_kib(proc.pid, "VmRSS")
        head = bucket.head_object(key)
        if head.content_length != size:
            raise SystemExit(f"uploaded object has {head.content_length} bytes, expected {size}")

        copy_mbs = size / copy_s / 1e6
        upload_mbs = size / upload_s / 1e6
        server_cpu = (cpu_after - cpu_before) / upload_s
        client_cpu = (
            self_after.ru_utime + self_after.ru_stime - self_before.ru_utime - self_before.ru_stime
        ) / upload_s
        result = {
            "event": "bench_lab_upload",
            "size_mib": args.size_mib,
            "part_size_mib": args.part_size_mib,
            "threads": args.threads,
            "parts": -(-size // (args.part_size_mib * MIB)),
            "write_s": round(write_s, 3),
            "copy_s": round(copy_s, 3),
            "copy_mb_s": round(copy_mbs, 1),
            "upload_s": round(upload_s, 3),
            "upload_mb_s": round(upload_mbs, 1),
            "upload_to_copy_ratio": round(upload_mbs / copy_mbs, 3),
            "server_cpu_share": round(server_cpu, 3),
            "client_cpu_share": round(client_cpu, 3),
            "server_vmhwm_kib_at_start": hwm_start,
            "server_vmhwm_reset": peak_reset,
            "server_vmhwm_kib_before": hwm_before,
            "server_vmhwm_kib_after": hwm_after,
            "server_vmhwm_growth_kib": hwm_after - hwm_before,
            "server_vmrss_kib_before": rss_before,
            "server_vmrss_kib_after": rss_after,
            "cpus": os.cpu_count(),
            "work_dir": str(root),
        }
        rows = [
            ("plain copy (shutil.copyfile)", f"{copy_s:8.2f} s", f"{copy_mbs:8.1f} MB/s"),
            (
                f"oss2.resumable_upload ({args.part_size_mib} MiB parts, {args.threads} threads)",
                f"{upload_s:8.2f} s",
                f"{upload_mbs:8.1f} MB/s",
            ),
        ]
        width = max(len(r[0]) for r in rows)
        print(f"{args.size_mib} MiB file in {root} ({os.cpu_count()} CPUs)")
        for name, secs, rate in rows:
            print(f"  {name:<{width}}  {secs}  {rate}")
        print(f"  {'upload / copy':<{width}}  {upload_mbs / copy_mbs:10.3f}")
        print(f"  {'lab server CPU during upload':<{width}}  {server_cpu * 100:8.1f} % of one core")
        print(f"  {'client (oss2) CPU during upload':<{width}}  {client_cpu * 100:8.1f} % of one core")
        print(
            f"  {'lab server peak RSS (VmHWM)':<{width}}  {hwm_before / 1024:8.1f} MiB before, "
            f"{hwm_after / 1024:.1f} MiB after (+{(hwm_after - hwm_before) / 1024:.1f} MiB)"
            + ("" if peak_reset else f"; not reset, {hwm_start / 1024:.1f} MiB at start")
        )
        print(
            f"  {'lab server RSS (VmRSS)':<{width}}  {rss_before / 1024:8.1f} MiB before, {rss_after / 1024:.1f} MiB after"
        )
        print(json.dumps(result))
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        if rc != 0:
            raise SystemExit(f"lab serve exited {rc} on SIGTERM:\n{err_path.read_text(errors='replace')}")
        proc = None
        return 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
