"""The fleet view's cost to the store: the same Redis commands per refresh for 10 jobs
and for 100,000 finished jobs (issue 22: O(1) reads per refresh, whatever the jobs).

The API runs as `genblaze-ingest api` in its own process on a private embedded Redis
(store and broker), with an operator token and two worker heartbeats in the store.
For each store size, every command the server processes during 20 refreshes of
`GET /v1/fleet`, `GET /ui/fleet.json` (the page's poll) and `GET /metrics` is counted
from `INFO commandstats` (the INFO calls themselves are subtracted), per command name.
The store is filled through the StatusStore (create, start, finish, transition), half
of the jobs succeeded and half failed with one of four error codes, as workers leave
them. Figures go to bench/results/fleet.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import redis

from bench.common import start_api
from genblaze_s3.ingest.models import (
    AssetRecord,
    AssetState,
    DestinationSpec,
    ErrorInfo,
    JobMeta,
    JobState,
    utc_now,
)
from genblaze_s3.ingest.store.fleet import FleetStore, WorkerBeat
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.local.services import free_port, start_redis

RESULTS = Path(__file__).parent / "results" / "fleet.md"
TOKEN = "bench-tenant"
OPERATOR = "bench-operator"
REFRESHES = 20
SIZES = (10, 100_000)
CODES = ("source_expired", "source_not_found", "checksum_mismatch", "too_large")
ENDPOINTS = ("/v1/fleet", "/ui/fleet.json", "/metrics")


def _fill(store: StatusStore, start: int, n: int) -> None:
    """n one-asset jobs, finished: even ones stored, odd ones failed."""
    dest = DestinationSpec(bucket="media", endpoint_url="http://127.0.0.1:9000")
    for i in range(start, start + n):
        job_id = f"{i:032x}"
        asset_id = f"a{i:031x}"
        meta = JobMeta(
            job_id=job_id,
            tenant="bench",
            run_id=job_id,
            created_at=utc_now(),
            destination=dest,
            asset_ids=[asset_id],
            run_date="2026-12-06",
        )
        record = AssetRecord(
            asset_id=asset_id, seq=0, source_url="https://cdn.example/x.png", media_type="image/png"
        )
        store.create_job(meta, [record], {}, "{}")
        store.start_asset(job_id, asset_id, worker="bench", job_state=JobState.QUEUED)
        if i % 2 == 0:
            store.finish_asset(
                job_id, asset_id, AssetState.STORED, key=f"k/{i}", sha256="0" * 64, size=4096
            )
            store.transition_job(job_id, JobState.FINALIZING)
            store.transition_job(job_id, JobState.SUCCEEDED)
        else:
            code = CODES[(i // 2) % len(CODES)]
            store.finish_asset(job_id, asset_id, AssetState.FAILED, error=ErrorInfo(code=code))
            store.transition_job(job_id, JobState.FAILED)


def fill(url: str, total: int, have: int) -> None:
    todo = total - have
    if todo <= 0:
        return
    workers = 4
    per = -(-todo // workers)

    spans = [
        (url, have + k * per, max(0, min(per, total - (have + k * per)))) for k in range(workers)
    ]
    # Processes, not threads: the client side (models, JSON) is the bottleneck, not Redis.
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_fill_span, spans))


def _fill_span(span: tuple[str, int, int]) -> None:
    url, begin, n = span
    _fill(StatusStore(redis.Redis.from_url(url)), begin, n)


def _start_api(redis_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        "GENBLAZE_REDIS_URL": redis_url,
        "GENBLAZE_API_TOKENS": f"bench:{TOKEN}",
        "GENBLAZE_OPERATOR_TOKENS": f"ops:{OPERATOR}:viewer",
        "GENBLAZE_API_RATE_LIMIT": "",
    }
    return start_api(env, port)


def _commandstats(client: redis.Redis) -> dict[str, int]:
    return {k: int(v["calls"]) for k, v in client.info("commandstats").items()}


def measure(client: redis.Redis, http: httpx.Client, path: str) -> tuple[dict[str, float], float]:
    """Commands per refresh by name (INFO calls subtracted) and the median latency (ms)."""
    http.get(path).raise_for_status()  # warm: first-request imports and connections
    before = _commandstats(client)
    took = []
    for _ in range(REFRESHES):
        t = time.perf_counter()
        http.get(path).raise_for_status()
        took.append((time.perf_counter() - t) * 1000)
    after = _commandstats(client)
    per = {}
    for name, calls in after.items():
        diff = calls - before.get(name, 0)
        if name == "cmdstat_info":
            diff -= 1  # the second INFO call above
        if diff:
            per[name.removeprefix("cmdstat_")] = diff / REFRESHES
    return per, statistics.median(took)


def _heartbeats(client: redis.Redis) -> None:
    fleet = FleetStore(client)
    for host in ("celery@w0", "celery@w1"):
        fleet.beat(
            WorkerBeat(
                host=host,
                pid=1,
                pool="prefork",
                concurrency=2,
                active=0,
                started_at=time.time() - 60,
                heartbeat_at=time.time(),
            )
        )


def main() -> int:
    load = os.getloadavg()
    server = start_redis()
    proc = None
    rows: list[tuple[int, str, dict[str, float], float]] = []
    fill_seconds = 0.0
    try:
        client = redis.Redis.from_url(server.url)
        port = free_port()
        proc = _start_api(server.url, port)
        http = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {OPERATOR}"},
            timeout=60,
        )
        # /ui/fleet.json is the page's poll: sign in once, as a browser does.
        ui = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        r = ui.post(
            "/ui/login",
            data={"token": OPERATOR},
            headers={"Origin": f"http://127.0.0.1:{port}"},
        )
        assert r.status_code in (200, 303), r.text
        have = 0
        for size in SIZES:
            t0 = time.monotonic()
            fill(server.url, size, have)
            fill_seconds += time.monotonic() - t0
            have = size
            _heartbeats(client)
            jobs = int(client.hget("genblaze:stats", "jobs_submitted") or 0)
            assert jobs == size, (jobs, size)
            for path in ENDPOINTS:
                per, ms = measure(client, ui if path.startswith("/ui") else http, path)
                rows.append((size, path, per, ms))
                print(
                    f"{size:>7} jobs {path:<15} {sum(per.values()):5.1f} commands/refresh "
                    f"{ms:6.1f} ms  {per}"
                )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        server.stop()
    write(rows, load, fill_seconds)
    same = all(
        sum(a[2].values()) == sum(b[2].values())
        for a, b in zip(rows[: len(ENDPOINTS)], rows[len(ENDPOINTS) :], strict=True)
    )
    print("same commands per refresh at 10 and 100,000 jobs:", same)
    return 0 if same else 1


def write(
    rows: list[tuple[int, str, dict[str, float], float]],
    load: tuple[float, ...],
    fill_seconds: float,
) -> None:
    lines = [
        "# Fleet view: Redis commands per refresh (bench/bench_fleet.py)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average before: "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores, shared). Filling the store "
        f"took {fill_seconds:.0f} s. Each figure: {REFRESHES} refreshes through the API "
        "process (`genblaze-ingest api`), every command the private Redis processed, "
        "per refresh.",
        "",
        "| finished jobs | refresh | commands | by command | median latency |",
        "|---|---|---|---|---|",
    ]
    for size, path, per, ms in rows:
        detail = ", ".join(f"{k} {v:g}" for k, v in sorted(per.items()))
        lines.append(f"| {size:,} | `{path}` | {sum(per.values()):g} | {detail} | {ms:.1f} ms |")
    lines += [
        "",
        "What a refresh reads: one pipeline of HGETALL (workers hash), HGETALL (stats "
        "hash), HGETALL x 7 (the last 6 hours' per-minute series), plus LLEN and LINDEX "
        "on the broker's queue; `/ui/fleet.json` adds the session lookup (HGETALL). "
        "`/metrics` reads the same pipeline with one hour hash. None of it depends on "
        "the number of jobs; only the number of worker hosts, error codes and hours "
        "shown changes the size of the answers.",
        "",
        "Not O(1): a bulk action's dry run and the action itself read the per-tenant "
        "state indexes and one HMGET per candidate job (bounded by BULK_MAX = 10,000).",
        "",
    ]
    RESULTS.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
