"""Copy-engine benchmark: local https CDN -> SeaweedFS, side by side with `s5cmd cp`.

Run: ``flock /tmp/genblaze-bench.lock python -m bench.bench_copy``. Starts its own
SeaweedFS and a TLS test CDN; each copy_url case runs in a child process so its
peak RSS is its own. s5cmd uploads the same bytes from local disk to the same
server. Results go to bench/results/copy.md.

Cases: 1 GiB with the key known up front (HIERARCHICAL), 1 GiB CAS with the hash
unknown (spool-then-upload), 64 x 4 MiB, plus the cost of the rejected design
(SeaweedFS server-side copy of 1 GiB, what a staging key + copy would add).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
GiB = 1024 * MiB
ROOT = Path(__file__).resolve().parents[1]


def _child(args: argparse.Namespace) -> None:
    """Run one copy case in this (child) process and print JSON with time and peak RSS."""
    from genblaze_core.storage.base import KeyStrategy

    from genblaze_s3 import S3StorageBackend
    from genblaze_s3.transfer import CopyConfig, Destination, FetchPolicy, copy_url

    backend = S3StorageBackend(args.bucket, endpoint_url=args.endpoint, access_key_id=args.ak,
                               secret_access_key=args.sk, region="us-east-1", preflight=False)
    policy = FetchPolicy(allow_private_hosts=frozenset({"127.0.0.1"}), ca_bundle=args.ca)
    # GENBLAZE_BENCH_CONFIG (JSON of CopyConfig fields) is for tuning runs only.
    config = CopyConfig(**json.loads(os.environ.get("GENBLAZE_BENCH_CONFIG", "{}")))
    urls = args.urls.split(",")
    t0 = time.perf_counter()
    if args.case == "known":
        dest = Destination(key_strategy=KeyStrategy.HIERARCHICAL, asset_id="a1", run_id="bench",
                           date_str="2026-11-25")
        results = [copy_url(backend, urls[0], dest, policy=policy, config=config)]
    elif args.case == "cas":
        results = [copy_url(backend, urls[0], Destination(), policy=policy, config=config)]
    else:
        def one(i_url: tuple[int, str]) -> Any:
            i, url = i_url
            dest = Destination(key_strategy=KeyStrategy.HIERARCHICAL, asset_id=f"a{i}",
                               run_id="bench-small", date_str="2026-11-25")
            return copy_url(backend, url, dest, policy=policy, config=config)

        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(one, enumerate(urls)))
    elapsed = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "rss_mb": rss_mb,
                      "bytes": sum(r.size for r in results),
                      "keys": [r.key for r in results][:2]}))


def _run_child(case: str, urls: list[str], sw: Any, bucket: str, ca: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.bench_copy", "--child", case, "--urls", ",".join(urls),
           "--endpoint", sw.endpoint_url, "--ak", sw.access_key, "--sk", sw.secret_key,
           "--bucket", bucket, "--ca", ca]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"copy child failed: {out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _s5cmd(sw: Any, src: str, dst: str) -> float:
    exe = Path(sys.executable).parent / "s5cmd"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": sw.access_key,
           "AWS_SECRET_ACCESS_KEY": sw.secret_key, "AWS_REGION": "us-east-1"}
    t0 = time.perf_counter()
    subprocess.run([str(exe), "--endpoint-url", sw.endpoint_url, "cp", src, dst], env=env,
                   check=True, capture_output=True, timeout=900)
    return time.perf_counter() - t0


def _write_random(path: Path, size: int) -> None:
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n


def main() -> None:
    from genblaze_s3.embedded import start_seaweedfs
    from tests.support.cdn import CDNServer

    work = Path(tempfile.mkdtemp(prefix="genblaze-bench-copy-"))
    big = work / "big.bin"
    _write_random(big, GiB)
    small_dir = work / "small"
    small_dir.mkdir()
    for i in range(64):
        _write_random(small_dir / f"s{i:02d}.bin", 4 * MiB)
    sw = start_seaweedfs(work / "seaweed")
    rows: list[tuple[str, float, float, float | None]] = []
    extra: list[str] = []
    try:
        bucket = sw.create_bucket("bench-copy")
        client = sw.client()
        with CDNServer(tls=True) as cdn:
            assert cdn.ca_path is not None
            big_url = cdn.add("/video/big.mp4", big, content_type="video/mp4")
            small_urls = [cdn.add(f"/img/s{i:02d}.png", small_dir / f"s{i:02d}.bin",
                                  content_type="image/png") for i in range(64)]

            if os.environ.get("GENBLAZE_BENCH_QUICK"):
                for i in range(2):
                    s5 = _s5cmd(sw, str(big), f"s3://{bucket}/s5cmd/q{i}.bin")
                    k = _run_child("known", [big_url], sw, bucket, cdn.ca_path)
                    print(f"s5cmd {s5:.2f}s ours {k['seconds']:.2f}s ratio {s5 / k['seconds']:.2f}"
                          f" rss {k['rss_mb']:.0f}MB", flush=True)
                return
            s5_big = _s5cmd(sw, str(big), f"s3://{bucket}/s5cmd/big.bin")
            known = _run_child("known", [big_url], sw, bucket, cdn.ca_path)
            s5_big2 = _s5cmd(sw, str(big), f"s3://{bucket}/s5cmd/big2.bin")
            cas = _run_child("cas", [big_url], sw, bucket, cdn.ca_path)
            s5_small = _s5cmd(sw, str(small_dir) + "/*", f"s3://{bucket}/s5cmd/small/")
            small = _run_child("small", small_urls, sw, bucket, cdn.ca_path)
            s5_ref = (s5_big + s5_big2) / 2
            rows.append(("1 GiB, key known (HIERARCHICAL)", known["seconds"], s5_ref,
                         known["rss_mb"]))
            rows.append(("1 GiB, CAS hash unknown (spool, then upload)", cas["seconds"], s5_ref,
                         cas["rss_mb"]))
            rows.append(("64 x 4 MiB (16 copies in parallel)", small["seconds"], s5_small,
                         small["rss_mb"]))
            t0 = time.perf_counter()
            client.copy_object(Bucket=bucket, Key="staging-copy/big.bin",
                               CopySource={"Bucket": bucket, "Key": "s5cmd/big.bin"})
            copy_s = time.perf_counter() - t0
            extra.append(
                f"- Rejected CAS design, measured: SeaweedFS server-side CopyObject of 1 GiB took "
                f"{copy_s:.2f} s; staging + copy would take ~{known['seconds'] + copy_s:.2f} s "
                f"(ratio {s5_ref / (known['seconds'] + copy_s):.2f} of s5cmd) versus spool-then-"
                f"upload {cas['seconds']:.2f} s (ratio {s5_ref / cas['seconds']:.2f})."
            )
            extra.append(f"- s5cmd 1 GiB runs: {s5_big:.2f} s and {s5_big2:.2f} s.")
    finally:
        sw.stop()
    lines = [
        "# Copy engine benchmark (`python -m bench.bench_copy`)",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs; run under "
        "`flock /tmp/genblaze-bench.lock`. Source: local https test CDN (TLS, self-signed), "
        "destination: SeaweedFS `weed mini` on loopback; s5cmd copies the same bytes "
        "from local disk. copy_url runs in a child process (peak RSS is its own); "
        "default CopyConfig (16 MiB parts, 4 uploads in flight).",
        "",
        "| case | copy_url s | s5cmd s | ratio (s5cmd / ours) | peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    for name, ours, ref, rss in rows:
        lines.append(f"| {name} | {ours:.2f} | {ref:.2f} | {ref / ours:.2f} | "
                     f"{rss:.0f} |")
    lines += ["", *extra, ""]
    out = ROOT / "bench" / "results" / "copy.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--urls", default="")
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--ak", default="")
    parser.add_argument("--sk", default="")
    parser.add_argument("--bucket", default="")
    parser.add_argument("--ca", default="")
    ns = parser.parse_args()
    if ns.child:
        ns.case = ns.child
        _child(ns)
    else:
        main()
