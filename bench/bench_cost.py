"""Cost benchmark: where a small asset's CPU, requests and Redis bytes go, beside the limit.

Run: ``flock /tmp/genblaze-bench.lock python -m bench.bench_cost``. Starts its own
SeaweedFS (behind the counting S3 proxy of tests/support/s3proxy.py), two Valkeys (the
status store, and the broker on its own so its LPUSHes are the queue's alone), the test
CDN over https (a self-signed CA the workers are given: every accepted connection is a
TLS handshake) and 2 Procfile workers (prefork, concurrency 4, production defaults; the
sweeper off so every count is the job's). Measures:

- 500 x 64 KiB, CAS, one job with a locked manifest: S3 requests, store commands,
  Celery messages, source requests, TLS handshakes, worker CPU (every worker process,
  from /proc), Redis bytes of the finished job (MEMORY USAGE of its keys);
- 10 runs of 3 x 256 KiB, each its own job with a locked manifest: the same, per run;
- the worker's copy path in this process under cProfile (`run_asset` for each of 200
  64 KiB assets, then `run_finalize`: what a pool child runs, minus Celery), split by
  phase; its CPU without the profiler, against the workers' CPU per asset, gives
  Celery's dispatch share.

Counts do not depend on load; CPU and times do (the host is shared: load averages are
in the output). Results go to bench/results/cost.md. ``GENBLAZE_BENCH_PSTATS=FILE``
also saves the in-process cProfile (read it with ``python -m pstats FILE``);
``GENBLAZE_BENCH_PYSPY=DIR`` records the workers with py-spy during the 500-asset job
(DIR/small) and the runs (DIR/runs).
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import tree_cpu

MiB = 1024 * 1024
KiB = 1024
ROOT = Path(__file__).resolve().parents[1]
N_SMALL = int(os.environ.get("GENBLAZE_BENCH_SMALL_N", "500"))
N_RUNS = int(os.environ.get("GENBLAZE_BENCH_RUNS", "10"))
N_PROFILE = int(os.environ.get("GENBLAZE_BENCH_PROFILE_N", "200"))
CONCURRENCY = 4
PER_JOB: list[float] = []  # seconds of each job measured, submit to settled


@dataclass
class Measured:
    """One measured piece of work: its counts (tests/support/cost.py) and CPU."""

    cost: Any  # tests.support.cost.Cost
    seconds: float
    worker_cpu: float
    tls_handshakes: int
    s3_connections: int
    jobs: list[str]


def _start_pyspy(pids: list[int], phase: str) -> list[subprocess.Popen[bytes]]:
    """With GENBLAZE_BENCH_PYSPY=DIR: py-spy (raw, folded stacks) of each worker tree
    during the 500-asset job (DIR/small) and the runs (DIR/runs), for a by-function
    split of the workers' CPU."""
    base = os.environ.get("GENBLAZE_BENCH_PYSPY")
    if not base:
        return []
    out = f"{base}/{phase}"
    Path(out).mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    return [
        subprocess.Popen(
            [
                str(spy),
                "record",
                "-p",
                str(pid),
                "--subprocesses",
                "--nonblocking",
                "--gil",
                "--rate",
                "400",
                "--format",
                "raw",
                "-o",
                f"{out}/worker{i}.txt",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i, pid in enumerate(pids)
    ]


def _stop_pyspy(spies: list[subprocess.Popen[bytes]]) -> None:
    for spy in spies:
        spy.send_signal(2)
    for spy in spies:
        spy.wait(timeout=60)


def _redis_bytes(client: Any, job_id: str) -> tuple[int, int, int]:
    """(bytes of the job's keys, of which its asset records, number of keys)."""
    total = assets = n = 0
    for key in client.scan_iter(match=f"*{job_id}*", count=1000):
        size = int(client.memory_usage(key, samples=0) or 0)
        total += size
        n += 1
        if b":asset:" in key:
            assets += size
    return total, assets, n


class _Clocks:
    """CPU of the copying thread by phase, without a profiler: the functions that start
    each phase are wrapped with a thread-CPU clock (a microsecond per call), so the split
    is not inflated toward Python-heavy code as cProfile's is. The phases do not nest on
    a small asset's path."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.gc_spent: dict[str, float] = {}
        self._undo: list[tuple[Any, str, Any]] = []
        self._gc_hooks: list[Any] = []

    def wrap(self, owner: Any, name: str, phase: str) -> None:
        original = owner.__dict__[name]
        spent = self.spent
        clock = time.thread_time

        def clocked(*args: Any, **kwargs: Any) -> Any:
            began = clock()
            try:
                return original(*args, **kwargs)
            finally:
                spent[phase] = spent.get(phase, 0.0) + clock() - began

        setattr(owner, name, clocked)
        self._undo.append((owner, name, original))

    def clock_gc(self) -> None:
        """Also clock the garbage collector's passes, whatever phase they interrupt (so
        that figure overlaps the others), with how many of each generation ran."""
        import gc

        began: list[float] = []
        spent = self.gc_spent = {"seconds": 0.0, "gen0": 0, "gen1": 0, "gen2": 0}

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                began.append(time.thread_time())
            elif began:
                spent["seconds"] += time.thread_time() - began.pop()
                spent[f"gen{info['generation']}"] += 1

        gc.callbacks.append(on_gc)
        self._gc_hooks.append(on_gc)

    def restore(self) -> None:
        import gc

        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()
        for hook in self._gc_hooks:
            gc.callbacks.remove(hook)
        self._gc_hooks.clear()


def _clocked_phases() -> _Clocks:
    import logging

    from genblaze_s3.backend.lean.operations import LeanS3
    from genblaze_s3.ingest.store.status import StatusStore
    from genblaze_s3.ingest.worker import deliveries
    from genblaze_s3.transfer.fetch import Fetcher, SourceStream

    clocks = _Clocks()
    clocks.wrap(StatusStore, "snapshot_with", "store: snapshot + lease take (1 trip)")
    clocks.wrap(StatusStore, "start_asset", "store: copying (1 trip)")
    clocks.wrap(StatusStore, "finish_asset", "store: terminal write + lease end (1 trip)")
    clocks.wrap(Fetcher, "open", "source: GET, status and headers")
    clocks.wrap(SourceStream, "read_into", "source: body (TLS decrypt)")
    clocks.wrap(SourceStream, "close", "source: body (TLS decrypt)")
    clocks.wrap(LeanS3, "put", "S3 PUT (sign, send, answer)")
    clocks.wrap(logging.Logger, "_log", "logging")
    clocks.wrap(deliveries, "finalize_job", "finalize (once per job)")
    clocks.clock_gc()
    return clocks


@contextlib.contextmanager
def _worker_logging() -> Iterator[None]:
    """Root logging as a worker has it (`genblaze_s3.logs.configure_logging("json")`,
    INFO), written to /dev/null: the clocked run pays for formatting every record."""
    import logging

    from genblaze_s3.logs import JsonFormatter

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    with open(os.devnull, "w") as sink:
        handler = logging.StreamHandler(sink)
        handler.setFormatter(JsonFormatter())
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        try:
            yield
        finally:
            root.handlers[:], level = saved
            root.setLevel(level)


def _phase_split(stats: pstats.Stats) -> dict[str, float]:
    """CPU seconds by phase from a cProfile (thread CPU clock) of the copy path.

    Each phase is the cumulative time of the functions that start it; they do not nest
    in one another on this path, except that hashing inside a PUT (boto's checksum) is
    counted under PUT.
    """
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    entry = {
        "lease (acquire + count, release)": [
            ("store/leases.py", "take"),
            ("store/leases.py", "release"),
        ],
        "state reads and writes (snapshot, start, finish, retries, in-flight)": [
            ("store/status.py", "snapshot"),
            ("store/status.py", "start_asset"),
            ("store/status.py", "finish_asset"),
            ("store/delivery_state.py", "forget_inflight"),
            ("store/leases.py", "end"),
        ],
        "source fetch incl. TLS (open, read)": [
            ("transfer/fetch.py", "open"),
            ("transfer/fetch.py", "read"),
            ("transfer/fetch.py", "read_into"),
            ("transfer/fetch.py", "close"),
        ],
        "S3 requests incl. signing (botocore, the lean small PUT)": [
            ("botocore/client.py", "_make_api_call"),
            ("lean/operations.py", "put"),
        ],
        "progress and cancel checks": [
            ("store/status.py", "record_progress"),
            ("worker/progress.py", "ready"),
        ],
        "finalize (manifest build, PUT, state)": [("finalize/manifest.py", "finalize_job")],
        "checkpoint store": [("store/checkpoints.py", "load"), ("store/checkpoints.py", "save")],
    }
    out: dict[str, float] = {}
    for phase, funcs in entry.items():
        out[phase] = sum(
            v[3]
            for (path, _line, name), v in raw.items()
            if any(path.endswith(p) and name == f for p, f in funcs)
        )
    out["hashing (SHA-256 of the bytes)"] = sum(
        v[2]
        for (path, _line, name), v in raw.items()
        if path == "~" and ("sha256" in name or "_hashlib.HASH" in name)
    )
    return out


def main(argv: list[str] | None = None) -> int:
    import redis
    from cryptography.fernet import Fernet
    from genblaze_core.models.manifest import Manifest
    from genblaze_core.storage.base import KeyStrategy, ObjectLockConfig

    from genblaze_s3 import S3StorageBackend, runtime
    from genblaze_s3.ingest import QueuedStorageSink
    from genblaze_s3.ingest.destinations import DestinationPolicy
    from genblaze_s3.ingest.submit.enqueue import MemorySender
    from genblaze_s3.ingest.submit.submission import run_from_urls
    from genblaze_s3.ingest.worker.deliveries import run_asset, run_finalize
    from genblaze_s3.local.services import start_redis, start_seaweedfs
    from genblaze_s3.local.stack import start_stack
    from genblaze_s3.settings import load_settings
    from tests.support.cdn import CDNServer
    from tests.support.cost import BrokerCounter, Cost, command_delta, commandstats
    from tests.support.s3proxy import S3FaultProxy

    os.environ.setdefault("GENBLAZE_ALLOW_PRIVATE_HOSTS", "127.0.0.1,localhost")
    work = Path(tempfile.mkdtemp(prefix="genblaze-bench-cost-"))
    loads = [os.getloadavg()]
    sw = start_seaweedfs(work / "seaweed")
    store_r, broker_r = start_redis(), start_redis()
    stack = None
    lines: list[str] = []
    try:
        with S3FaultProxy(sw.endpoint_url) as proxy, CDNServer(tls=True) as cdn:
            assert cdn.ca_path is not None

            @dataclass(frozen=True)
            class Via:
                endpoint_url: str
                access_key: str
                secret_key: str

            s3 = Via(proxy.endpoint_url, sw.access_key, sw.secret_key)
            env_extra = {
                "GENBLAZE_SOURCE_KEY": Fernet.generate_key().decode(),
                "GENBLAZE_CA_BUNDLE": cdn.ca_path,
                "GENBLAZE_SWEEP_INTERVAL": "0",
            }
            stack = start_stack(
                redis_url=store_r.url,
                s3=s3,
                log_dir=work,
                tokens={"acme": "bench"},
                broker_url=broker_r.url,
                n_workers=2,
                concurrency=CONCURRENCY,
                api=False,
                extra_env=env_extra,
            )
            worker_pids = [w.pid for w in stack.workers]
            store = redis.Redis.from_url(store_r.url)
            broker = BrokerCounter(redis.Redis.from_url(broker_r.url))
            policy = DestinationPolicy.from_settings(
                load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": proxy.endpoint_url})
            )
            lock = ObjectLockConfig(retain_until=datetime.now(UTC) + timedelta(days=1))

            def sink_for(bucket: str, sender: Any = None) -> QueuedStorageSink:
                return QueuedStorageSink(
                    S3StorageBackend(
                        bucket,
                        endpoint_url=proxy.endpoint_url,
                        access_key_id=sw.access_key,
                        secret_access_key=sw.secret_key,
                        region="us-east-1",
                        preflight=False,
                    ),
                    key_strategy=KeyStrategy.CONTENT_ADDRESSABLE,
                    manifest_lock=lock,
                    redis_url=store_r.url,
                    broker_url=broker_r.url,
                    queue=stack.queue,  # type: ignore[union-attr]
                    destination_policy=policy,
                    sender=sender,
                )

            def urls(tag: str, n: int, size: int) -> list[tuple[str, str, str | None]]:
                return [
                    (cdn.add(f"/{tag}/{i}.png", os.urandom(size)), "image/png", None)
                    for i in range(n)
                ]

            def measure(jobs: list[list[tuple[str, str, str | None]]], bucket: str) -> Measured:
                sink = sink_for(bucket)
                broker.reset()
                s3_mark, cdn_mark = len(proxy.log), len(cdn.requests)
                conns, s3_conns = cdn.connections_accepted, proxy.connections_accepted
                before, cpu0, t0 = commandstats(store), tree_cpu(worker_pids), time.perf_counter()
                ids = []
                for items in jobs:
                    t_job = time.perf_counter()
                    run = run_from_urls(items)
                    sink.write_run(run, Manifest.from_run(run))
                    assert sink.last_job is not None
                    ids.append(sink.last_job.id)
                    broker.wait_settled(timeout=1800)
                    PER_JOB.append(time.perf_counter() - t_job)
                seconds = time.perf_counter() - t0
                cpu, after = tree_cpu(worker_pids) - cpu0, commandstats(store)
                for job_id in ids:
                    state = store.hget(f"genblaze:job:{job_id}", "state")
                    if state != b"succeeded":
                        raise RuntimeError(f"bench job {job_id} ended {state!r}")
                return Measured(
                    Cost(
                        s3=Counter(e.operation for e in proxy.log[s3_mark:]),
                        redis=command_delta(before, after),
                        messages=broker.published(),
                        source=Counter(r.method for r in cdn.requests[cdn_mark:]),
                    ),
                    seconds,
                    cpu,
                    cdn.connections_accepted - conns,
                    proxy.connections_accepted - s3_conns,
                    ids,
                )

            # Warm-up (untimed): script cache, pool children's imports and connections.
            warm = sw.create_bucket("bc-warm", object_lock=True)
            measure([urls("warm", 40, 64 * KiB)], warm)

            b_small = sw.create_bucket("bc-small", object_lock=True)
            spies = _start_pyspy(worker_pids, "small")
            small = measure([urls("small", N_SMALL, 64 * KiB)], b_small)
            _stop_pyspy(spies)
            small_bytes = _redis_bytes(store, small.jobs[0])
            loads.append(os.getloadavg())

            b_runs = sw.create_bucket("bc-runs", object_lock=True)
            spies = _start_pyspy(worker_pids, "runs")
            runs = measure([urls(f"run{i}", 3, 256 * KiB) for i in range(N_RUNS)], b_runs)
            _stop_pyspy(spies)
            run_bytes = [_redis_bytes(store, j) for j in runs.jobs]
            loads.append(os.getloadavg())

            # -- the copy path in this process, without and with cProfile ---------------
            settings = load_settings(stack.env)
            backends: dict[Any, Any] = {}

            def backend_for(dest: Any) -> Any:
                if dest.bucket not in backends:
                    backends[dest.bucket] = S3StorageBackend(
                        dest.bucket,
                        endpoint_url=dest.endpoint_url,
                        region=dest.region,
                        access_key_id=sw.access_key,
                        secret_access_key=sw.secret_key,
                        preflight=False,
                    )
                return backends[dest.bucket]

            ctx = runtime.worker_context(settings, backend_for)
            sent: list[Any] = []

            def send(name: str, args: list[Any], countdown: float) -> None:
                sent.append((name, args, countdown))

            def copy_job(
                tag: str, profile: cProfile.Profile | None, clock: Any = time.process_time
            ) -> float:
                """CPU seconds of run_asset for each asset, then run_finalize."""
                b = sw.create_bucket(f"bc-{tag}", object_lock=True)
                sink = sink_for(b, sender=MemorySender())
                run = run_from_urls(urls(tag, N_PROFILE, 64 * KiB))
                sink.write_run(run, Manifest.from_run(run))
                assert sink.last_job is not None
                job_id = sink.last_job.id
                ids = [a.asset_id for s in run.steps for a in s.assets]
                cpu0 = clock()
                if profile is not None:
                    profile.enable()
                for asset_id in ids:
                    run_asset(ctx, job_id, asset_id, send)
                run_finalize(ctx, job_id, send, backend_for=backend_for)
                if profile is not None:
                    profile.disable()
                cpu = clock() - cpu0
                if store.hget(f"genblaze:job:{job_id}", "state") != b"succeeded":
                    raise RuntimeError(f"in-process job {job_id} did not succeed")
                return cpu

            copy_job("pwarm", None)
            plain_cpu = copy_job("plain", None)
            import gc

            gc.collect()
            gc.freeze()  # as a worker does before its pool forks (workers/warmup.py)
            clocks = _clocked_phases()
            try:
                with _worker_logging():  # INFO, JSON lines: what a worker formats
                    clocked_cpu = copy_job("clocked", None, time.thread_time)
            finally:
                clocks.restore()
            prof = cProfile.Profile(time.thread_time)  # CPU of the copying thread
            profiled_cpu = copy_job("profiled", prof)
            phases = _phase_split(pstats.Stats(prof))
            if os.environ.get("GENBLAZE_BENCH_PSTATS"):  # the whole profile, for pstats
                prof.dump_stats(os.environ["GENBLAZE_BENCH_PSTATS"])
            loads.append(os.getloadavg())
            lines = _report(
                small,
                small_bytes,
                runs,
                run_bytes,
                plain_cpu,
                profiled_cpu,
                phases,
                loads,
                (clocked_cpu, dict(clocks.spent), dict(clocks.gc_spent)),
            )
    finally:
        if stack is not None:
            stack.stop()
        store_r.stop()
        broker_r.stop()
        sw.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    out = ROOT / "bench" / "results" / "cost.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


def _fmt(c: Counter[str], per: float = 1) -> str:
    return ", ".join(f"{k} {v / per:.2f}".rstrip("0").rstrip(".") for k, v in c.most_common())


def _phase_table(spent: dict[str, float], total: float, rest: str, digits: int) -> list[str]:
    """Rows of CPU per asset by phase, largest first, then what no phase covers."""
    rows = sorted(spent.items(), key=lambda kv: -kv[1])
    rows.append((rest, total - sum(spent.values())))
    return [
        f"| {name} | {sec / N_PROFILE * 1000:.{digits}f} ms | {sec / total * 100:.0f}% |"
        for name, sec in rows
    ]


def _report(
    small: Measured,
    small_bytes: tuple[int, int, int],
    runs: Measured,
    run_bytes: list[tuple[int, int, int]],
    plain_cpu: float,
    profiled_cpu: float,
    phases: dict[str, float],
    loads: list[tuple[float, float, float]],
    clocked: tuple[float, dict[str, float], dict[str, float]],
) -> list[str]:
    n, r = N_SMALL, N_RUNS
    per = lambda m, d: sum(m.values()) / d  # noqa: E731
    worker_ms = small.worker_cpu / n * 1000
    inproc_ms = plain_cpu / N_PROFILE * 1000
    phase_lines = _phase_table(
        phases, profiled_cpu, "everything else (run_asset glue, logging, JSON, pydantic)", 2
    )
    clocked_cpu, spent, gc_spent = clocked
    clock_lines = _phase_table(
        spent, clocked_cpu, "everything else (run_asset and copy_url glue, SHA-256, pydantic)", 3
    )
    avg_run_bytes = sum(b[0] for b in run_bytes) / len(run_bytes)
    get_source = small.cost.source["GET"]
    puts = small.cost.s3["PutObject"]
    return [
        "# Cost benchmark (`python -m bench.bench_cost`)",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, **shared with other "
        "engineers' test runs** (load averages 1/5/15 min at start, after the 500-asset "
        "job, after the runs, after the profile: "
        + "; ".join(f"{a:.1f}/{b:.1f}/{c:.1f}" for a, b, c in loads)
        + "). Counts do not depend on load; CPU and seconds do. SeaweedFS `weed mini` "
        "behind the counting S3 proxy, store and broker on two Valkeys, the test CDN over "
        f"https, 2 Procfile workers (prefork, concurrency {CONCURRENCY}, defaults; sweeper "
        "off). Every asset is fresh random bytes, CAS, with a locked manifest.",
        "",
        f"## Per asset: {n} x 64 KiB, one job ({small.seconds:.2f} s, {n / small.seconds:.0f} "
        "files/s)",
        "",
        "| what | per asset | limit |",
        "|---|---|---|",
        f"| source GETs | {get_source / n:.2f} | 1 |",
        f"| S3 requests | {per(small.cost.s3, n):.2f} ({_fmt(small.cost.s3, n)}) | 1 PUT |",
        f"| TLS handshakes to the source | {small.tls_handshakes / n:.3f} "
        f"({small.tls_handshakes} for {n}) | 1 per worker thread per host |",
        f"| S3 connections opened | {small.s3_connections / n:.3f} "
        f"({small.s3_connections} for {n}) | 1 per worker thread |",
        f"| store Redis commands | {per(small.cost.redis, n):.1f} | a handful |",
        f"| Celery messages | {small.cost.messages / n:.3f} ({small.cost.messages} for {n}) | "
        "a chunk's share |",
        f"| worker CPU (all worker processes, /proc) | {worker_ms:.2f} ms | 3 ms (acceptance) |",
        f"| Redis bytes of the finished job | {small_bytes[0] / n:.0f} B "
        f"({small_bytes[0]} B in {small_bytes[2]} keys; asset records {small_bytes[1]} B) | - |",
        "",
        f"PUTs: {puts} for {n} assets + 1 manifest. Store commands per asset, by command: "
        f"{_fmt(small.cost.redis, n)}.",
        "",
        f"## Per run: {r} runs of 3 x 256 KiB, each its own job ({runs.seconds:.2f} s, "
        f"{r / runs.seconds:.1f} runs/s, one after another)",
        "",
        "Each run, submit to every message acked (ms): "
        + ", ".join(f"{t * 1000:.0f}" for t in PER_JOB[-r:])
        + ".",
        "",
        "| what | per run | limit |",
        "|---|---|---|",
        f"| source GETs | {runs.cost.source['GET'] / r:.1f} | 3 |",
        f"| S3 requests | {per(runs.cost.s3, r):.1f} ({_fmt(runs.cost.s3, r)}) | "
        "3 PUT + 1 manifest PUT with its lock |",
        f"| TLS handshakes to the source | {runs.tls_handshakes / r:.2f} | 0 once warm |",
        f"| store Redis commands | {per(runs.cost.redis, r):.0f} | a handful per asset |",
        f"| Celery messages | {runs.cost.messages / r:.1f} | 1 (or 1 per chunk) |",
        f"| worker CPU | {runs.worker_cpu / r * 1000:.1f} ms | - |",
        f"| Redis bytes of the finished job | {avg_run_bytes:.0f} B | - |",
        "",
        f"Store commands per run, by command: {_fmt(runs.cost.redis, r)}.",
        "",
        f"## Worker CPU by phase, clocked ({N_PROFILE} x 64 KiB through `run_asset` + "
        "`run_finalize` in one process)",
        "",
        "The functions that start each phase wrapped with a thread-CPU clock (no "
        "profiler), root logging at INFO in JSON as a worker's: "
        f"{clocked_cpu / N_PROFILE * 1000:.2f} ms of the copying thread's CPU per asset "
        "(the process's, which also serves the bench's CDN and S3 proxy threads: "
        f"{inproc_ms:.2f} ms unclocked):",
        "",
        "| phase | CPU per asset | share |",
        "|---|---|---|",
        *clock_lines,
        "",
        f"Garbage collection, inside the phases above: "
        f"{gc_spent.get('seconds', 0.0) / N_PROFILE * 1000:.3f} ms per asset "
        f"({gc_spent.get('gen0', 0):.0f} young, {gc_spent.get('gen1', 0):.0f} middle and "
        f"{gc_spent.get('gen2', 0):.0f} full passes for {N_PROFILE} assets).",
        "",
        f"## Worker CPU by phase ({N_PROFILE} x 64 KiB through `run_asset` + `run_finalize` "
        "in one process, cProfile)",
        "",
        f"Without the profiler the copy path costs {inproc_ms:.2f} ms of CPU per asset in one "
        f"process; the workers spent {worker_ms:.2f} ms per asset, so Celery's dispatch "
        f"(broker, main process, pool child, chunk threads) is about "
        f"{max(0.0, worker_ms - inproc_ms):.2f} ms per asset. Under cProfile "
        f"({profiled_cpu / N_PROFILE * 1000:.2f} ms of process CPU per asset; the profile "
        "clocks the copying thread's CPU, so the lease renewal thread and the profiler's "
        "own overhead fall in 'everything else'; the profiler inflates Python-heavy "
        "phases most):",
        "",
        "| phase | CPU per asset | share |",
        "|---|---|---|",
        *phase_lines,
        "",
    ]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
