"""The operator's reads under load: polling a 10,000-asset job, and 200 SSE watchers.

1. `GET /v1/jobs/{id}` of a running 10,000-asset job at 500 requests/s (open loop:
   request i leaves at t0 + i/500 whatever the previous answers did), p50/p99, side by
   side with the same load on a 1-asset job (the cost must not grow with assets) and
   with the full every-asset document the endpoint used to send (measured at a rate
   it can bear, for the ratio).
2. SSE: the job changes at a fixed rate (a writer plays the workers); Redis commands
   per second with 1 client watching vs 200 clients watching (pub/sub fan-out in the
   API process: the store should not see the difference).

The API runs as `genblaze-ingest api` in its own process against an embedded Redis.
Figures go to bench/results/operator.md. The machine is shared (2 cores): figures are
ratios taken side by side in one run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import redis

from bench.common import start_api
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.models import DestinationSpec
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import MemorySender
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.ingest.submit.submission import build_submission, run_from_urls
from genblaze_s3.local.services import free_port, start_redis
from genblaze_s3.settings import load_settings

RESULTS = Path(__file__).parent / "results" / "operator.md"
TOKEN = "bench-token"
RATE = 500
SECONDS = 8
WRITES_PER_SECOND = 40
SSE_WINDOW = 8


def _job(service: IngestService, n: int) -> str:
    from genblaze_core.models.manifest import Manifest

    run = run_from_urls([(f"https://cdn.example/v{i}.mp4?sig=S", None, None) for i in range(n)])
    sub = build_submission(
        Manifest.from_run(run),
        DestinationSpec(bucket="media", endpoint_url="http://127.0.0.1:9000"),
        tenant="bench",
    )
    return service.submit(sub)[0]


def _start_api(redis_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        "GENBLAZE_REDIS_URL": redis_url,
        "GENBLAZE_API_TOKENS": f"bench:{TOKEN}",
        "GENBLAZE_API_RATE_LIMIT": "1000000/1",
    }
    return start_api(env, port)


class Writer(threading.Thread):
    """Plays the workers: progress writes on the job's copying assets at a fixed rate."""

    def __init__(self, store: StatusStore, job_id: str, assets: list[str], rate: float) -> None:
        super().__init__(daemon=True)
        self.store, self.job_id, self.assets, self.rate = store, job_id, assets, rate
        self.stop = threading.Event()
        self.writes = 0

    def run(self) -> None:
        interval = 1 / self.rate
        nxt = time.monotonic()
        i = 0
        while not self.stop.is_set():
            aid = self.assets[i % len(self.assets)]
            self.store.record_progress(self.job_id, aid, (i + 1) * 1000, 10**9)
            self.writes += 1
            i += 1
            nxt += interval
            self.stop.wait(max(0.0, nxt - time.monotonic()))


async def _open_loop(url: str, rate: int, seconds: float, conns: int = 32) -> list[float]:
    """Latencies (ms) of GETs sent on a fixed schedule (open loop), measured from the
    scheduled send time, so queueing behind a slow answer counts.

    Hand-written HTTP/1.1 keep-alive on asyncio streams, not httpx: at 500 req/s on
    a shared 2-core machine httpx's per-request CPU made the load generator, not the
    API, the bottleneck. Responses must carry Content-Length (ours do).
    """
    parts = httpx.URL(url)
    request = (
        f"GET {parts.raw_path.decode()} HTTP/1.1\r\nHost: {parts.host}:{parts.port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\n\r\n"
    ).encode()
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await asyncio.open_connection(parts.host, parts.port))
    out: list[float] = []

    async def one(at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        reader, writer = await pool.get()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        out.append((time.perf_counter() - at) * 1000)
        pool.put_nowait((reader, writer))
        if status != b"200":
            raise RuntimeError(f"GET {url}: {status.decode()}")

    t0 = time.perf_counter() + 0.2
    await asyncio.gather(*(one(t0 + i / rate) for i in range(int(rate * seconds))))
    while not pool.empty():
        pool.get_nowait()[1].close()
    return out


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def _commands(client: redis.Redis) -> int:
    return int(client.info("stats")["total_commands_processed"])


async def _watchers(url: str, n: int, seconds: float) -> int:
    """n SSE clients on one job for `seconds`; returns the events they received."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    got = [0]

    async def watch(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", url, headers=headers) as r:
            async for chunk in r.aiter_raw():
                got[0] += chunk.count(b"event:")

    limits = httpx.Limits(max_connections=n + 4)
    async with httpx.AsyncClient(limits=limits, timeout=None) as client:
        tasks = [asyncio.create_task(watch(client)) for _ in range(n)]
        await asyncio.sleep(seconds)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return got[0]


def _sse_commands_per_second(
    client: redis.Redis, url: str, n: int, writer: Writer
) -> tuple[float, int, float]:
    """(Redis commands/s during the window, events received, writes/s) with n watchers."""

    async def run() -> tuple[float, int, float]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        task = asyncio.create_task(_watchers(url, n, SSE_WINDOW + 3))
        await asyncio.sleep(2.5)  # every client connected and subscribed
        c0, w0, t0 = _commands(client), writer.writes, time.monotonic()
        await asyncio.sleep(SSE_WINDOW)
        c1, w1, t1 = _commands(client), writer.writes, time.monotonic()
        events = await task
        del headers
        return (c1 - c0) / (t1 - t0), events, (w1 - w0) / (t1 - t0)

    return asyncio.run(run())


def main() -> int:
    load = os.getloadavg()
    server = start_redis()
    proc = None
    try:
        client = redis.Redis.from_url(server.url)
        store = StatusStore(client)
        service = IngestService(
            store,
            MemorySender(),
            "bench",
            DestinationPolicy.from_settings(
                load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:9000"})
            ),
        )
        big = _job(service, 10_000)
        small = _job(service, 1)
        copying = store.get_meta(big).asset_ids[:50]  # type: ignore[union-attr]
        for aid in copying:
            store.start_asset(big, aid, worker="bench:1")
        port = free_port()
        proc = _start_api(server.url, port)
        api = f"http://127.0.0.1:{port}"
        writer = Writer(store, big, copying, WRITES_PER_SECOND)
        writer.start()

        sizes = {
            name: len(
                httpx.get(
                    f"{api}/v1/jobs/{job}", headers={"Authorization": f"Bearer {TOKEN}"}
                ).content
            )
            for name, job in (("big", big), ("small", small))
        }
        asyncio.run(_open_loop(f"{api}/v1/jobs/{big}", RATE, 1))  # warm up
        lat_big = asyncio.run(_open_loop(f"{api}/v1/jobs/{big}", RATE, SECONDS))
        lat_small = asyncio.run(_open_loop(f"{api}/v1/jobs/{small}", RATE, SECONDS))
        full = []
        for _ in range(20):  # the full every-asset document the endpoint used to send
            t = time.perf_counter()
            doc = store.get_job_document(big)
            full.append((time.perf_counter() - t) * 1000)
        full_size = len(doc or "")

        url = f"{api}/v1/jobs/{big}/events"
        one = _sse_commands_per_second(client, url, 1, writer)
        many = _sse_commands_per_second(client, url, 200, writer)
        writer.stop.set()

        rows = [
            "# Operator reads (bench/bench_operator.py)",
            "",
            f"Shared 2-core machine; API = `genblaze-ingest api` (1 process), embedded Redis; "
            f"a writer plays the workers at {WRITES_PER_SECOND} progress writes/s on the "
            "running 10,000-asset job throughout. Load average at the start: "
            f"{load[0]:.2f} (other sessions' tests share the machine).",
            "",
            f"## GET /v1/jobs/{{id}} at {RATE} req/s, open loop, {SECONDS} s each",
            "",
            "| job | response bytes | p50 ms | p99 ms | max ms |",
            "|---|---|---|---|---|",
            f"| running, 10,000 assets | {sizes['big']} | {_pct(lat_big, 50):.2f} | "
            f"{_pct(lat_big, 99):.2f} | {max(lat_big):.2f} |",
            f"| 1 asset | {sizes['small']} | {_pct(lat_small, 50):.2f} | "
            f"{_pct(lat_small, 99):.2f} | {max(lat_small):.2f} |",
            "",
            f"p99 ratio 10,000 assets / 1 asset: {_pct(lat_big, 99) / _pct(lat_small, 99):.2f}. "
            f"The previous every-asset document of the same job: {full_size} bytes, "
            f"{statistics.median(full):.1f} ms median just to build it in the store "
            f"({statistics.median(full) / _pct(lat_big, 50):.0f}x today's whole request p50).",
            "",
            "## SSE: Redis commands/s, 1 watcher vs 200 watchers on that job",
            "",
            "| watchers | Redis commands/s | events received | job writes/s |",
            "|---|---|---|---|",
            f"| 1 | {one[0]:.1f} | {one[1]} | {one[2]:.1f} |",
            f"| 200 | {many[0]:.1f} | {many[1]} | {many[2]:.1f} |",
            "",
            f"ratio 200/1: {many[0] / one[0]:.3f} (target: within 10%).",
            "",
        ]
        RESULTS.write_text("\n".join(rows))
        print("\n".join(rows))
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
