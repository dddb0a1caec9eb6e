#!/usr/bin/env python3
"""Model encryption throughput: the native engine against the seed's FUSE copy and the machine's limits, in one run.

    .venv/bin/python benchmarks/bench_model_encrypt.py --size-gib 2     (as root: the FUSE rows mount)

One synthetic model directory (3 safetensors shards of random data + 500 small files + config/tokenizer/index;
SIZE GiB in all) in a temporary directory; then, side by side, each run writing its output to a tmpfs (``--out
tmpfs``, the default as root: what the engines themselves cost, not the disk's write-back) or to the model's disk
(``--out disk``):

1. ``cp -r SRC/. OUT/`` — a plain copy of the tree (the copy baseline);
2. ``openssl speed -evp aes-256-gcm -bytes 4096 -seconds 3`` × cores — AES-GCM at gocryptfs' block size (CPU limit);
3. the seed's CAI-1.5: ``gocryptfs -init``, mount, ``cp -r SRC/. PLAIN/``, ``fusermount -u`` (whole job, timed);
4. ``cai-tui`` native engine with 1 worker and with one per core (:func:`encrypt_native`: scrypt, encryption, the
   SHA-256 manifest) — each in a child process: its peak RSS (``ru_maxrss`` of the main process and of its largest
   worker) and the sampled peak of the whole process tree's RSS;
5. ``cai-tui`` FUSE engine (the seed's method + the manifest) and ``cai-tui model verify`` of the native output.

``sync`` runs before each timed step (untimed); the source stays in the page cache for all of them, so they compare
like with like. Prints a table (MB/s = 10^6 bytes of plaintext per second) with the ratios, and one JSON line
(``{"event": "bench_model_encrypt", …}``). Goals: native ≥ 1.5 × the seed's FUSE copy; peak RSS ≤ 200 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
GIB = 1 << 30
PASSWORD = b"bench-password-1688"
SMALL_FILES = 500


# ------------------------------------------------------------------------------------------------- the model
def write_shard(path: Path, n: int) -> None:
    header = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        left = n
        while left:
            chunk = min(left, 8 << 20)
            f.write(os.urandom(chunk))
            left -= chunk


def make_model(root: Path, size: int) -> int:
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"]}))
    (root / "tokenizer.json").write_bytes(os.urandom(7 << 20).hex().encode()[: 7 << 20])
    small = 0
    for i in range(SMALL_FILES):  # 1 KiB – 64 KiB, in a few sub-folders
        d = root / "extra" / f"part{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        data = os.urandom(1024 * (1 + (i * 37) % 64))
        (d / f"file{i:03d}.bin").write_bytes(data)
        small += len(data)
    shard = (size - small - (7 << 20)) // 3
    names = [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    for name in names:
        write_shard(root / name, shard)
    weight_map = {f"layer{i}.weight": name for i, name in enumerate(names)}
    (root / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------------- helpers
def sync() -> None:
    subprocess.run(["sync"], check=True)


def timed(argv: list[str], **kw: Any) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, **kw)
    return time.perf_counter() - t


def tree_rss_kib(pid: int) -> int:
    """Sum of VmRSS of ``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def run_child(argv: list[str]) -> tuple[dict[str, Any], int]:
    """Run a child that prints one JSON line; sample its process tree's RSS every 20 ms. → (its JSON, peak KiB)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=REPO)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, tree_rss_kib(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {' '.join(argv)}")
    return json.loads(out.strip().splitlines()[-1]), peak


def openssl_limit(cores: int) -> float:
    out = subprocess.run(
        ["openssl", "speed", "-evp", "aes-256-gcm", "-bytes", "4096", "-seconds", "3"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"^aes-256-gcm\s+([\d.]+)k\s*$", out, re.IGNORECASE | re.MULTILINE)
    if m is None:
        raise SystemExit(f"cannot parse openssl speed output:\n{out}")
    return float(m.group(1)) * 1000 * cores


def seed_fuse_copy(src: Path, work: Path, pwfile: Path) -> tuple[float, float]:
    """The seed's commands, timed as a whole and for the copy alone; the mount is always undone."""
    cipher, plain = work / "seed-cipher", work / "seed-plain"
    cipher.mkdir()
    plain.mkdir()
    log = open(work / "seed-gocryptfs.log", "wb")  # noqa: SIM115 (never a pipe: the daemon inherits it)
    fusermount = shutil.which("fusermount3") or "fusermount"
    t0 = time.perf_counter()
    subprocess.run(
        ["gocryptfs", "-init", "-q", "-passfile", str(pwfile), "--", str(cipher)], stdout=log, stderr=log, check=True
    )
    subprocess.run(
        ["gocryptfs", "-q", "-passfile", str(pwfile), "--", str(cipher), str(plain)], stdout=log, stderr=log, check=True
    )
    try:
        copy = timed(["cp", "-r", f"{src}/.", str(plain)])
    finally:
        subprocess.run([fusermount, "-u", str(plain)], check=True)
    total = time.perf_counter() - t0
    log.close()
    shutil.rmtree(cipher)
    return total, copy


# ------------------------------------------------------------------------------------------------- children
def child(mode: str, workers: int, src: str, dst: str, pwfile: str) -> None:
    from cai_tui.actions.model_encrypt import encrypt_fuse, encrypt_native
    from cai_tui.actions.model_manifest import verify_cipherdir

    t = time.perf_counter()
    if mode == "native":
        r = encrypt_native(src, dst, PASSWORD, workers=workers)
        extra = {"files": r.files, "bytes": r.plain_bytes}
    elif mode == "fuse":
        r = encrypt_fuse(src, dst, pwfile)
        extra = {"files": r.files, "bytes": r.plain_bytes}
    else:
        v = verify_cipherdir(dst, PASSWORD)
        assert v.ok, v.bad
        extra = {"files": v.checked, "bytes": v.checked_bytes}
    seconds = time.perf_counter() - t
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": seconds, "main_maxrss_kib": self_kib, "worker_maxrss_kib": child_kib, **extra}))


# ------------------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-gib", type=float, default=2.0)
    ap.add_argument("--workdir", default=None, help="Where the model goes (default: a temp dir).")
    ap.add_argument(
        "--out",
        choices=("tmpfs", "disk"),
        default="tmpfs" if os.geteuid() == 0 else "disk",
        help="Where the outputs go: a tmpfs (the engines' own cost; default as root) or the model's disk.",
    )
    ap.add_argument("--child", nargs=5, metavar=("MODE", "WORKERS", "SRC", "DST", "PWFILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, workers, src, dst, pwfile = args.child
        child(mode, int(workers), src, dst, pwfile)
        return
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="bench-model-", dir=args.workdir))
    try:
        src = work / "model"
        size = make_model(src, int(args.size_gib * GIB))
        pwfile = work / "password"
        pwfile.write_bytes(PASSWORD + b"\n")
        print(f"model: {size / GIB:.2f} GiB, {SMALL_FILES + 5} files, in {work}; {cores} cores", file=sys.stderr)
        rows: dict[str, dict[str, Any]] = {}

        def row(name: str, seconds: float, **extra: Any) -> None:
            rows[name] = {"seconds": round(seconds, 3), "mb_s": round(size / seconds / 1e6, 1), **extra}
            print(f"  {name}: {seconds:.2f} s", file=sys.stderr)

        def child_row(name: str, mode: str, workers: int, out: Path, keep: bool = False) -> None:
            sync()
            argv = [sys.executable, __file__, "--child", mode, str(workers), str(src), str(out), str(pwfile)]
            res, peak = run_child(argv)
            row(
                name,
                res["seconds"],
                main_maxrss_mb=round(res["main_maxrss_kib"] / 1024, 1),
                worker_maxrss_mb=round(res["worker_maxrss_kib"] / 1024, 1),
                tree_peak_rss_mb=round(peak / 1024, 1),
            )
            if not keep:
                shutil.rmtree(out, ignore_errors=True)

        out = work / "out"
        out.mkdir()
        if args.out == "tmpfs":
            mount = ["mount", "-t", "tmpfs", "-o", f"size={3 * size // (1 << 20)}m", "tmpfs", str(out)]
            subprocess.run(mount, check=True)
        print(f"outputs on {args.out} ({out})", file=sys.stderr)
        sync()
        plain_out = out / "copy"
        plain_out.mkdir()
        row("plain copy (cp -r)", timed(["cp", "-r", f"{src}/.", str(plain_out)]))
        shutil.rmtree(plain_out)
        limit = openssl_limit(cores)
        rows["openssl aes-256-gcm 4KiB x cores"] = {"mb_s": round(limit / 1e6, 1)}
        sync()
        total, copy = seed_fuse_copy(src, out, pwfile)
        row("seed FUSE copy (gocryptfs mount + cp -r)", total, copy_only_mb_s=round(size / copy / 1e6, 1))
        child_row("cai-tui native, 1 worker", "native", 1, out / "n1")
        child_row(f"cai-tui native, {cores} workers", "native", cores, out / "nc", keep=True)
        child_row("cai-tui verify (decrypt + sha256)", "verify", 1, out / "nc")
        child_row("cai-tui FUSE engine (+ manifest)", "fuse", 1, out / "fe")
    finally:
        subprocess.run(["umount", str(work / "out")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    native = rows[f"cai-tui native, {cores} workers"]
    fuse = rows["seed FUSE copy (gocryptfs mount + cp -r)"]
    ratios = {
        "native_vs_seed_fuse": round(native["mb_s"] / fuse["mb_s"], 2),
        "native_vs_plain_copy": round(native["mb_s"] / rows["plain copy (cp -r)"]["mb_s"], 2),
        "native_vs_openssl_limit": round(native["mb_s"] * 1e6 / limit, 2),
    }
    goals = {"native_vs_seed_fuse_ge_1_5": ratios["native_vs_seed_fuse"] >= 1.5}
    goals["native_tree_peak_rss_le_200mb"] = native["tree_peak_rss_mb"] <= 200
    print(f"\n{'run':44} {'s':>8} {'MB/s':>9}  peak RSS MB (main / largest worker / tree)")
    for name, r in rows.items():
        rss = ""
        if "tree_peak_rss_mb" in r:
            rss = f"{r['main_maxrss_mb']} / {r['worker_maxrss_mb']} / {r['tree_peak_rss_mb']}"
        secs = f"{r['seconds']:.2f}" if "seconds" in r else "-"
        print(f"{name:44} {secs:>8} {r['mb_s']:>9.1f}  {rss}")
    print(f"\nseed FUSE copy, the cp alone: {fuse['copy_only_mb_s']} MB/s")
    for k, v in ratios.items():
        print(f"{k}: {v}")
    print(f"goals: {goals}")
    doc = {"event": "bench_model_encrypt", "size_bytes": size, "cores": cores, "out": args.out, "rows": rows}
    doc["ratios"] = ratios
    print(json.dumps({**doc, "goals": goals}))


if __name__ == "__main__":
    main()
