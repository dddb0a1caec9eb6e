#!/usr/bin/env python3
"""Encrypt-and-upload (file by file, no ciphertext on disk) against encrypt-then-upload, to one lab OSS.

    .venv/bin/python benchmarks/bench_model_upload.py --size-mib 1024

One run, in one temporary directory:

1. start ``cai-tui lab serve`` as a subprocess (its own process, so the server does not share this one's GIL);
2. write a synthetic model directory of SIZE MiB: ``--shards`` safetensors-like shards of random bytes plus the
   small JSON files a ModelScope download has;
3. **encrypt, then upload**: the native engine writes the whole cipherdir to disk
   (:func:`cai_tui.actions.model_encrypt.encrypt_native`, one process per core, with the manifest), then
   :func:`cai_tui.actions.model_upload.upload_tree` uploads that directory (multipart, ``--threads``) and verifies it;
4. **encrypt and upload**: :func:`upload_tree` with ``password=…`` encrypts each file into the request bodies on the
   way (same threads, same part size) and verifies;
5. a thread samples the bytes on disk under the work area (the cipherdir, the upload state, TMPDIR) every 20 ms:
   the peak of each mode.

Prints a table and one JSON line (``{"event": "bench_model_upload", …}``). The page cache is not dropped; both modes
read the same, just-written plaintext.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
REPO = Path(__file__).resolve().parent.parent
PASSWORD = b"bench-model-upload"


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


def start_lab(root: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
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
    return proc, json.loads(lines[0])


def write_model(root: Path, size: int, shards: int) -> int:
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}))
    (root / "generation_config.json").write_text('{"do_sample": true}\n')
    (root / "tokenizer_config.json").write_text("{}\n")
    (root / "tokenizer.json").write_bytes(os.urandom(2 * MIB))
    (root / "vocab.json").write_bytes(os.urandom(MIB))
    rest = max(0, size - 3 * MIB)
    weight_map = {}
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        n = rest // shards + (rest % shards if i == shards - 1 else 0)
        with open(root / name, "wb") as f:
            left = n
            while left > 0:
                chunk = min(4 * MIB, left)
                f.write(os.urandom(chunk))
                left -= chunk
        weight_map[f"layer{i}.weight"] = name
    (root / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return sum(p.stat().st_size for p in root.iterdir())


def disk_bytes(dirs: list[Path]) -> int:
    total = 0
    for d in dirs:
        for dirpath, _dirs, files in os.walk(d):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                except FileNotFoundError:
                    pass
    return total


class PeakDisk:
    def __init__(self, dirs: list[Path], every_s: float = 0.02) -> None:
        self.dirs, self.every_s, self.peak = dirs, every_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, disk_bytes(self.dirs))
            if self._stop.wait(self.every_s):
                break

    def __enter__(self) -> PeakDisk:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, disk_bytes(self.dirs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--size-mib", type=int, default=1024, help="size of the synthetic model in MiB (default 1024)")
    ap.add_argument("--shards", type=int, default=4, help="safetensors shards (default 4)")
    ap.add_argument("--threads", type=int, default=4, help="upload threads (default 4)")
    ap.add_argument("--part-size-mib", type=int, default=10, help="multipart part size in MiB (default 10)")
    ap.add_argument("--work-dir", default=None, help="where the temporary directory goes (default: the system's)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    if args.size_mib < 4:
        ap.error("--size-mib must be at least 4")

    sys.path.insert(0, str(REPO))
    root = Path(tempfile.mkdtemp(prefix="cai-upload-bench-", dir=args.work_dir))
    os.environ["CAI_TUI_HOME"] = str(root / "home")
    os.environ["TMPDIR"] = str(root / "tmp")
    (root / "tmp").mkdir()
    for var in PROXY_VARS:
        os.environ.pop(var, None)
    from cai_tui.actions.model_encrypt import encrypt_native
    from cai_tui.actions.model_upload import UploadOptions, upload_tree
    from cai_tui.clients.oss import Credentials, make_bucket
    from cai_tui.gocryptfs import cipher_size

    proc: subprocess.Popen[bytes] | None = None
    try:
        proc, info = start_lab(root)
        creds = json.loads(Path(info["credentials"]).read_text())
        bucket = make_bucket(
            creds["oss_endpoint"],
            creds["oss_bucket"],
            Credentials(creds["oss_access_key_id"], creds["oss_access_key_secret"]),
            region=creds["oss_region"],
            pool_size=2 * args.threads,
        )
        model = root / "model"
        t = time.perf_counter()
        plain_bytes = write_model(model, args.size_mib * MIB, args.shards)
        write_s = time.perf_counter() - t
        largest_cipher = max(cipher_size(p.stat().st_size) for p in model.iterdir())
        watched = [root / "cipher", root / "home", root / "tmp"]
        opts = {"threads": args.threads, "part_size": args.part_size_mib * MIB}

        # 1. encrypt to disk, then upload the cipherdir
        with PeakDisk(watched) as disk_a:
            t = time.perf_counter()
            enc = encrypt_native(str(model), str(root / "cipher"), PASSWORD, workers=os.cpu_count() or 1)
            enc_s = time.perf_counter() - t
            rep_a = upload_tree(bucket, root / "cipher", "bench/then/", options=UploadOptions(**opts))
            a_s = time.perf_counter() - t
        if not rep_a.ok:
            raise SystemExit(f"encrypt-then-upload did not verify: {rep_a.problems[:3]}")
        cipher_tree = disk_bytes([root / "cipher"])
        shutil.rmtree(root / "cipher")

        # 2. encrypt and upload, file by file
        with PeakDisk(watched) as disk_b:
            t = time.perf_counter()
            rep_b = upload_tree(bucket, model, "bench/and/", options=UploadOptions(password=PASSWORD, **opts))
            b_s = time.perf_counter() - t
        if not rep_b.ok:
            raise SystemExit(f"encrypt-and-upload did not verify: {rep_b.problems[:3]}")

        result = {
            "event": "bench_model_upload",
            "size_mib": args.size_mib,
            "plain_bytes": plain_bytes,
            "files": rep_b.files,
            "shards": args.shards,
            "threads": args.threads,
            "part_size_mib": args.part_size_mib,
            "cpus": os.cpu_count(),
            "write_s": round(write_s, 2),
            "then_encrypt_s": round(enc_s, 2),
            "then_upload_s": round(a_s - enc_s, 2),
            "then_total_s": round(a_s, 2),
            "and_total_s": round(b_s, 2),
            "ratio_and_to_then": round(b_s / a_s, 3),
            "then_peak_disk_bytes": disk_a.peak,
            "and_peak_disk_bytes": disk_b.peak,
            "cipher_tree_bytes": cipher_tree,
            "largest_file_cipher_bytes": largest_cipher,
            "then_objects": rep_a.objects,
            "and_objects": rep_b.objects,
            "encrypt_native_mb_s": round(enc.mb_per_s, 1),
        }
        mb = plain_bytes / 1e6
        rows = [
            ("encrypt, then upload", a_s, disk_a.peak, f"(encrypt {enc_s:.2f} s + upload {a_s - enc_s:.2f} s)"),
            ("encrypt and upload, file by file", b_s, disk_b.peak, ""),
        ]
        print(
            f"{args.size_mib} MiB model ({rep_b.files} files) in {root}, {os.cpu_count()} CPUs, {args.threads} threads"
        )
        for name, secs, peak, note in rows:
            print(f"  {name:<34} {secs:8.2f} s {mb / secs:8.1f} MB/s   peak on disk {peak / MIB:9.1f} MiB  {note}")
        print(f"  {'ratio (and / then)':<34} {b_s / a_s:8.3f}")
        print(json.dumps(result))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
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
