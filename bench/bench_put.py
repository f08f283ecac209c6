"""put() benchmark: 1 GiB from disk with S3StorageBackend.put() versus `s5cmd cp`.

Run: ``flock /tmp/genblaze-bench.lock python -m bench.bench_put`` (or ``python -m bench
put``, which takes the lock itself). Starts its own SeaweedFS; both uploaders send
the same file to the same server in the same run, alternating, ``--rounds`` times
each. put() runs in a child process so its peak RSS (``ru_maxrss``) is its own and
not the parent's 1 GiB bookkeeping. Results: bench/results/put.md (markdown with
the raw JSON embedded). Targets: speed ratio (s5cmd time / put time) >= 0.9, put()
peak RSS <= 160 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import json_block, write_random

MiB = 1024 * 1024
GiB = 1024 * MiB
ROOT = Path(__file__).resolve().parents[1]
S5CMD = Path(sys.executable).with_name("s5cmd")
RATIO_TARGET = 0.9
RSS_TARGET_MB = 160


def _child(args: argparse.Namespace) -> None:
    """Upload ``args.path`` with put() in this child process; print time and peak RSS."""
    from genblaze_s3 import S3StorageBackend

    backend = S3StorageBackend(
        args.bucket,
        endpoint_url=args.endpoint,
        access_key_id=args.ak,
        secret_access_key=args.sk,
        preflight=True,  # the HeadBucket stays outside the timed section
    )
    started = time.perf_counter()
    with open(args.path, "rb") as fh:
        backend.put(args.key, fh)
    elapsed = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "peak_rss_mb": rss_mb}))


def _run_put(server: Any, bucket: str, path: Path, key: str) -> dict[str, float]:
    cmd = [
        sys.executable, "-m", "bench.bench_put", "--child",
        "--endpoint", server.endpoint_url, "--ak", server.access_key, "--sk", server.secret_key,
        "--bucket", bucket, "--path", str(path), "--key", key,
    ]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _run_s5cmd(server: Any, bucket: str, path: Path, key: str) -> dict[str, float]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_REGION": "us-east-1",
    }
    cmd = [
        str(S5CMD),
        "--endpoint-url",
        server.endpoint_url,
        "cp",
        str(path),
        f"s3://{bucket}/{key}",
    ]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed}


def _markdown(result: dict[str, Any]) -> str:
    put_s, s5_s = result["put_seconds_median"], result["s5cmd_seconds_median"]
    size_mb = result["bytes"] / 1e6
    lines = [
        "# put() benchmark (`python -m bench.bench_put`)",
        "",
        f"Machine: {result['machine']}, {result['cpus']} CPUs; run under "
        "`flock /tmp/genblaze-bench.lock`. Server: SeaweedFS `weed mini` on loopback, "
        f"started by the benchmark. Object: {result['bytes'] // GiB} GiB of random bytes "
        "from a file on disk; put() (default StorageConfig: 16 MiB parts, 4 in flight, "
        "SHA-256 checksums) runs in a child process; s5cmd uses its defaults. "
        f"{result['rounds']} alternating rounds each; medians below.",
        "",
        "| uploader | median s | MB/s | runs (s) | peak RSS MB |",
        "|---|---|---|---|---|",
        f"| S3StorageBackend.put() | {put_s:.2f} | {size_mb / put_s:.0f} | "
        f"{', '.join(f'{s:.2f}' for s in result['put_seconds'])} | "
        f"{result['put_peak_rss_mb']:.0f} |",
        f"| s5cmd cp | {s5_s:.2f} | {size_mb / s5_s:.0f} | "
        f"{', '.join(f'{s:.2f}' for s in result['s5cmd_seconds'])} | - |",
        "",
        f"- Speed ratio (s5cmd time / put time): **{result['ratio']:.2f}** "
        f"(target >= {RATIO_TARGET}: {'met' if result['ratio'] >= RATIO_TARGET else 'NOT met'}).",
        f"- put() peak RSS: **{result['put_peak_rss_mb']:.0f} MB** "
        f"(target <= {RSS_TARGET_MB} MB: "
        f"{'met' if result['put_peak_rss_mb'] <= RSS_TARGET_MB else 'NOT met'}).",
        "",
        *json_block(result),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint"), parser.add_argument("--ak"), parser.add_argument("--sk")
    parser.add_argument("--bucket"), parser.add_argument("--path"), parser.add_argument("--key")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    if args.child:
        _child(args)
        return 0

    from genblaze_s3.local.services import start_seaweedfs

    with tempfile.TemporaryDirectory(prefix="genblaze-bench-put-") as tmp:
        root = Path(tmp)
        source = root / "object.bin"
        write_random(source, args.size_mib * MiB)
        server = start_seaweedfs(root / "weed")
        try:
            bucket = server.create_bucket("bench-put")
            client = server.client()
            puts: list[dict[str, float]] = []
            s5: list[dict[str, float]] = []
            for i in range(args.rounds):
                s5.append(_run_s5cmd(server, bucket, source, f"s5cmd-{i}"))
                puts.append(_run_put(server, bucket, source, f"put-{i}"))
                for key in (f"s5cmd-{i}", f"put-{i}"):
                    size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
                    assert size == source.stat().st_size, f"{key}: {size} bytes stored"
                    client.delete_object(Bucket=bucket, Key=key)
        finally:
            server.stop()

    put_seconds = [p["seconds"] for p in puts]
    s5_seconds = [p["seconds"] for p in s5]
    result = {
        "bytes": args.size_mib * MiB,
        "rounds": args.rounds,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "put_seconds": put_seconds,
        "s5cmd_seconds": s5_seconds,
        "put_seconds_median": statistics.median(put_seconds),
        "s5cmd_seconds_median": statistics.median(s5_seconds),
        "put_mb_per_s": args.size_mib * MiB / 1e6 / statistics.median(put_seconds),
        "s5cmd_mb_per_s": args.size_mib * MiB / 1e6 / statistics.median(s5_seconds),
        "ratio": statistics.median(s5_seconds) / statistics.median(put_seconds),
        "put_peak_rss_mb": max(p["peak_rss_mb"] for p in puts),
    }
    out = ROOT / "bench" / "results" / "put.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_markdown(result))
    print(_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
