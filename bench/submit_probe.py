"""One round of bench/bench_submit.py, run with the tree under test on the import path.

Prints one JSON line: post_p50, post_p99, write_run_p50, write_run_p99 (milliseconds).
Only APIs both trees share are used (QueuedStorageSink, the `api` CLI command).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from genblaze_s3.settings import load_settings

WARM, TIMED = 20, 200
ENDPOINT = "http://127.0.0.1:9"  # never contacted: no workers run


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def _write_run(redis_url: str) -> list[float]:
    from genblaze_core.models.manifest import Manifest

    from genblaze_s3 import S3StorageBackend
    from genblaze_s3.ingest import QueuedStorageSink
    from genblaze_s3.ingest.destinations import DestinationPolicy
    from genblaze_s3.ingest.submit.submission import run_from_urls

    backend = S3StorageBackend(
        "bench-bucket",
        endpoint_url=ENDPOINT,
        region="us-east-1",
        access_key_id="k",
        secret_access_key="s",
        preflight=False,
    )
    sink = QueuedStorageSink(
        backend,
        redis_url=redis_url,
        queue="bench-submit",
        destination_policy=DestinationPolicy.from_settings(
            load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": ENDPOINT})
        ),
    )
    times = []
    for i in range(WARM + TIMED):
        run = run_from_urls(
            [(f"https://cdn.example/{i}/{j}.png", "image/png", None) for j in range(10)]
        )
        m = Manifest.from_run(run)
        t0 = time.perf_counter()
        sink.write_run(run, m)
        if i >= WARM:
            times.append(time.perf_counter() - t0)
    sink.close()
    return times


def _post(redis_url: str) -> list[float]:
    import httpx

    from genblaze_s3.local.services import free_port

    port = free_port()
    env = {
        **os.environ,
        "GENBLAZE_REDIS_URL": redis_url,
        "GENBLAZE_QUEUE": "bench-submit",
        "GENBLAZE_API_TOKENS": "acme:tok-acme,globex:tok-globex",
        "GENBLAZE_ALLOWED_ENDPOINTS": ENDPOINT,
        "GENBLAZE_API_RATE_LIMIT": "",
    }
    env.pop("GENBLAZE_BROKER_URL", None)
    api = subprocess.Popen(
        [sys.executable, "-m", "genblaze_s3.cli", "api", "--host", "127.0.0.1"]
        + ["--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("API did not come up")
            time.sleep(0.1)
        times = []
        with httpx.Client(timeout=10, headers={"Authorization": "Bearer tok-acme"}) as c:
            for i in range(WARM + TIMED):
                body = {
                    "assets": [{"url": f"https://cdn.example/p{i}/{j}.png"} for j in range(10)],
                    "destination": {"bucket": "bench-bucket", "endpoint_url": ENDPOINT},
                }
                t0 = time.perf_counter()
                r = c.post(f"{url}/v1/jobs", json=body)
                elapsed = time.perf_counter() - t0
                if r.status_code != 202:
                    raise RuntimeError(f"POST answered {r.status_code}: {r.text}")
                if i >= WARM:
                    times.append(elapsed)
        return times
    finally:
        api.terminate()
        api.wait(10)


def main() -> None:
    from genblaze_s3.local.services import start_redis

    rds = start_redis()
    try:
        wr = _write_run(rds.url)
        post = _post(rds.url)
    finally:
        rds.stop()
    print(
        json.dumps(
            {
                "post_p50": statistics.median(post) * 1000,
                "post_p99": _pct(post, 99) * 1000,
                "write_run_p50": statistics.median(wr) * 1000,
                "write_run_p99": _pct(wr, 99) * 1000,
            }
        )
    )


if __name__ == "__main__":
    main()
