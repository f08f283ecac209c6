"""Small-PUT benchmark: a 64 KiB PutObject and a HeadObject, through boto3 and the lean path.

Run: ``flock /tmp/genblaze-bench.lock python -m bench.bench_small_put``. Starts its
own SeaweedFS; sends ``--n`` PUTs of 64 KiB (fresh keys, the worker's headers:
Content-Type, Cache-Control, ``If-None-Match: *``, ``x-amz-checksum-sha256``) through
``client.put_object`` and through `genblaze_s3.backend.lean.LeanS3`, one client,
alternating blocks of 50, and the same for HeadObject of one key; reports CPU and wall
time per request of each (medians of the blocks). Why: the lean path exists only
because it is measurably cheaper (backend/lean/); this is the measurement.
Results: bench/results/small_put.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import json_block

ROOT = Path(__file__).resolve().parents[1]
KiB = 1024
BLOCK = 50


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000, help="PUTs per path")
    parser.add_argument("--size", type=int, default=64 * KiB)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    from genblaze_core.storage.config import StorageConfig

    from genblaze_s3.backend.client import ClientSettings, build_client
    from genblaze_s3.backend.lean import lean_s3_for
    from genblaze_s3.local.services import start_seaweedfs

    work = Path(tempfile.mkdtemp(prefix="genblaze-bench-smallput-"))
    server = start_seaweedfs(work / "seaweed")
    try:
        bucket = server.create_bucket("bench-small-put")
        settings = ClientSettings(
            server.endpoint_url, "us-east-1", server.access_key, server.secret_key, StorageConfig()
        )
        client = build_client(settings)
        lean = lean_s3_for(client)
        assert lean is not None
        data = os.urandom(args.size)
        digest = hashlib.sha256(data).hexdigest()
        params: dict[str, Any] = {
            "Bucket": bucket,
            "Body": data,
            "ContentType": "image/png",
            "CacheControl": "public, max-age=31536000, immutable",
            "IfNoneMatch": "*",
            "ChecksumSHA256": base64.b64encode(bytes.fromhex(digest)).decode(),
        }
        counter = iter(range(10**9))

        def boto() -> None:
            client.put_object(**params, Key=f"boto/{next(counter)}")

        def small() -> None:
            lean.put({**params, "Key": f"lean/{next(counter)}"}, sha256_hex=digest)

        client.put_object(Bucket=bucket, Key="head/target.png", Body=data)

        def boto_head() -> None:
            client.head_object(Bucket=bucket, Key="head/target.png")

        def lean_head() -> None:
            lean.head(bucket, "head/target.png")

        paths = {
            "boto3 put_object": boto,
            "lean LeanS3.put": small,
            "boto3 head_object": boto_head,
            "lean LeanS3.head": lean_head,
        }
        for fn in paths.values():  # warm: connections, caches
            for _ in range(20):
                fn()
        cpu: dict[str, list[float]] = {name: [] for name in paths}
        wall: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(max(1, args.n // BLOCK)):
            for name, fn in paths.items():
                c0, w0 = time.thread_time(), time.perf_counter()
                for _ in range(BLOCK):
                    fn()
                cpu[name].append((time.thread_time() - c0) / BLOCK * 1e3)
                wall[name].append((time.perf_counter() - w0) / BLOCK * 1e3)
        result: dict[str, Any] = {
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "load_at_end": os.getloadavg(),
            "size": args.size,
            "puts_per_path": max(1, args.n // BLOCK) * BLOCK,
            "cpu_ms_median": {k: statistics.median(v) for k, v in cpu.items()},
            "wall_ms_median": {k: statistics.median(v) for k, v in wall.items()},
            "cpu_ms_blocks": cpu,
            "wall_ms_blocks": wall,
        }
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    c, w = result["cpu_ms_median"], result["wall_ms_median"]
    pairs = [("boto3 put_object", "lean LeanS3.put"), ("boto3 head_object", "lean LeanS3.head")]
    lines = [
        "# Small-PUT benchmark (`python -m bench.bench_small_put`)",
        "",
        f"Machine: {result['machine']}, {result['cpus']} CPUs (load at end "
        f"{result['load_at_end'][0]:.1f}). SeaweedFS `weed mini` on loopback (http); one "
        f"client; {result['puts_per_path']} PUTs of {args.size // KiB} KiB per path in "
        f"alternating blocks of {BLOCK}, with the worker's headers. CPU = this thread's "
        "CPU time per PUT; medians over blocks.",
        "",
        "| path | CPU per request | wall per request |",
        "|---|---|---|",
        *(f"| {k} | {c[k]:.3f} ms | {w[k]:.3f} ms |" for pair in pairs for k in pair),
        "",
        *(
            f"- {lean_name} / {base}: CPU **{c[lean_name] / c[base]:.2f}**, wall "
            f"**{w[lean_name] / w[base]:.2f}**."
            for base, lean_name in pairs
        ),
        "",
        *json_block(result),
    ]
    text = "\n".join(lines)
    if not args.no_write:
        (ROOT / "bench" / "results" / "small_put.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
