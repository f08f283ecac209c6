"""Slicing benchmark: 1 GiB through the queue with bounded slices on and off, same run.

Run: ``flock /tmp/genblaze-bench.lock python -m bench.bench_slices``. Starts SeaweedFS,
Valkey, the test CDN and three worker stacks (the Procfile command) on three queues:
``GENBLAZE_SLICE_SECONDS=0`` (off: one delivery per copy, hashlib), the default (10 s)
and 2 s (several boundaries per copy, to price one boundary). Each case runs
HIERARCHICAL (key known) and CONTENT_ADDRESSABLE (auto mode: the hash pass, then the
sliced upload pass) copies of the same 1 GiB file, BIG_REPS interleaved rounds, each
copy in a fresh bucket. Results go to bench/results/slices.md.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import write_random
from genblaze_s3.settings import load_settings

MiB = 1024 * 1024
GiB = 1024 * MiB
BIG = int(os.environ.get("GENBLAZE_BENCH_BIG_BYTES", str(GiB)))
REPS = int(os.environ.get("GENBLAZE_BENCH_BIG_REPS", "3"))
LOAD_AT_START = os.getloadavg()[0]
CASES = {"off": "0", "default (10 s)": "", "2 s": "2"}


def main() -> int:
    from genblaze_core.models.manifest import Manifest
    from genblaze_core.storage.base import KeyStrategy

    from genblaze_s3.ingest import QueuedStorageSink
    from genblaze_s3.ingest.destinations import DestinationPolicy
    from genblaze_s3.ingest.submit.submission import run_from_urls
    from genblaze_s3.ingest.tenants import TenantRegistry
    from genblaze_s3.local.services import start_redis, start_seaweedfs
    from tests.support.cdn import CDNServer
    from tests.support.workers import QueueStack, start_stack

    os.environ.setdefault("GENBLAZE_ALLOW_HTTP", "1")
    os.environ.setdefault("GENBLAZE_ALLOW_PRIVATE_HOSTS", "127.0.0.1,localhost")
    work = Path(tempfile.mkdtemp(prefix="genblaze-bench-slices-"))
    big = work / "big.mp4"
    write_random(big, BIG)
    sw = start_seaweedfs(work / "seaweed")
    rds = start_redis()
    stacks: dict[str, QueueStack] = {}
    times: dict[tuple[str, str], list[float]] = {}
    slices: dict[tuple[str, str], list[int]] = {}
    try:
        for i, (name, value) in enumerate(CASES.items()):
            extra = {"GENBLAZE_SLICE_SECONDS": value} if value else {}
            stacks[name] = start_stack(
                redis_url=rds.url,
                seaweed=sw,
                log_dir=work,
                queue=f"bench-slices-{i}",
                n_workers=1,
                concurrency=2,
                api=False,
                extra_env=extra,
            )
        policy = DestinationPolicy.from_settings(
            load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": sw.endpoint_url})
        )
        with CDNServer() as cdn:
            url = cdn.add("/video/big.mp4", big, content_type="video/mp4")
            for rep in range(REPS):
                order = list(CASES) if rep % 2 == 0 else list(reversed(CASES))
                for strategy in (KeyStrategy.HIERARCHICAL, KeyStrategy.CONTENT_ADDRESSABLE):
                    for name in order:
                        bkt = sw.create_bucket(f"bs-{rep}-{strategy.value[:4]}-{len(times)}")
                        backend = sw.backend(bkt)
                        sink = QueuedStorageSink(
                            backend,
                            key_strategy=strategy,
                            redis_url=rds.url,
                            queue=stacks[name].queue,
                            tenant="acme",
                            # the workers' tenant rules: acme's jobs go under its root
                            tenants=TenantRegistry.from_api_tokens(
                                stacks[name].env["GENBLAZE_API_TOKENS"]
                            ),
                            destination_policy=policy,
                        )
                        run = run_from_urls([(url, "video/mp4", None)])
                        before = _slices(rds.url)
                        t0 = time.perf_counter()
                        sink.write_run(run, Manifest.from_run(run))
                        view = sink.last_job.wait(timeout=1800, poll_interval=0.05)
                        took = time.perf_counter() - t0
                        if view.state.value != "succeeded":
                            raise RuntimeError(view.model_dump_json()[:2000])
                        key = (strategy.value, name)
                        times.setdefault(key, []).append(took)
                        slices.setdefault(key, []).append(_slices(rds.url) - before)
                        sw.drop_bucket(bkt)
    finally:
        for s in stacks.values():
            s.stop()
        rds.stop()
        sw.stop()
    lines = [
        "# Slicing benchmark (`python -m bench.bench_slices`)",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, load average "
        f"{LOAD_AT_START:.2f} at the start (figures are ratios of runs interleaved in one run). "
        f"Loopback: SeaweedFS `weed mini`, Valkey, the test CDN (plain http), one "
        f"`celery -A workers worker` per case (prefork, concurrency 2). {BIG // MiB} MiB, "
        f"medians of {REPS} interleaved runs, each copy into a fresh bucket.",
        "",
        "| copy | slicing | through the queue | slice hand-ons | vs off |",
        "|---|---|---|---|---|",
    ]
    for strategy in ("hierarchical", "content_addressable"):
        off = statistics.median(times[(strategy, "off")])
        for name in CASES:
            t = statistics.median(times[(strategy, name)])
            n = statistics.median(slices[(strategy, name)])
            lines.append(
                f"| {BIG // MiB} MiB {strategy} | {name} | {t:.2f} s ({BIG / MiB / t:.0f} MiB/s)"
                f" | {n:.0f} | {t / off:.3f} |"
            )
    lines.append("")
    for (strategy, name), ts in sorted(times.items()):
        lines.append(
            f"- {strategy}, slicing {name}: {', '.join(f'{x:.2f}' for x in ts)} s; "
            f"hand-ons {slices[(strategy, name)]}"
        )
    out = Path(__file__).parent / "results" / "slices.md"
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())
    return 0


def _slices(redis_url: str) -> int:
    import redis

    from genblaze_s3.ingest.store import keys

    raw = redis.Redis.from_url(redis_url).hget(keys.stats_key(), "copy_slices_total")
    return int(float(raw or 0))


if __name__ == "__main__":
    raise SystemExit(main())
