"""A 64 MiB object goes up and comes back down without the server holding it in memory."""

from __future__ import annotations

import hashlib
import tracemalloc

import oss2

SIZE = 64 * 1024 * 1024
BLOCK = 1024 * 1024


def test_64mib_streams_both_ways_with_flat_memory(oss_lab, oss_lab_bucket, tmp_path):
    src = tmp_path / "big.bin"
    digest = hashlib.md5()
    with open(src, "wb") as f:
        block = bytes(range(256)) * (BLOCK // 256)
        for i in range(SIZE // BLOCK):
            chunk = block[i % 256 :] + block[: i % 256]
            f.write(chunk)
            digest.update(chunk)

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        put = oss2.Bucket(oss_lab_bucket.auth, oss_lab.endpoint, "lab-bucket", connect_timeout=30).put_object_from_file(
            "big.bin", str(src)
        )
        _, upload_peak = tracemalloc.get_traced_memory()

        tracemalloc.reset_peak()
        got = oss_lab_bucket.get_object("big.bin")
        down = hashlib.md5()
        size = 0
        while True:
            chunk = got.read(BLOCK)
            if not chunk:
                break
            down.update(chunk)
            size += len(chunk)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert put.etag == digest.hexdigest().upper()
    assert size == SIZE and down.hexdigest() == digest.hexdigest()
    assert got.client_crc == got.server_crc
    # client and server share this process: both together stay far below the object's size
    assert upload_peak < 16 * 1024 * 1024, upload_peak
    assert download_peak < 16 * 1024 * 1024, download_peak
