"""Queue benchmark: runs end to end through Redis + 2 Celery worker processes vs `s5cmd cp`.

Run: ``flock /tmp/genblaze-bench.lock python -m bench.bench_queue``. Starts its own
SeaweedFS, Valkey, test CDN (plain http on loopback), API and two
`celery -A workers worker` processes (the Procfile command). Measures, side by side:

- 500 x 64 KiB assets in one run: enqueue -> manifest written and Object-Locked,
  against `s5cmd cp` of the same 500 files (from local disk) to the same server;
- 1 GiB asset (HIERARCHICAL and CAS) end to end, against `s5cmd cp` of the file;
- `write_run` latency (10-asset run, real Redis broker + store), p50 / p99;
- `GET /v1/jobs/{id}` latency under a paced 500 requests/s for 10 s, p50 / p99.

Results go to bench/results/queue.md.
"""

from __future__ import annotations

import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import CPUMeter, s5cmd_cp, write_random
from genblaze_s3.settings import load_settings

MiB = 1024 * 1024
GiB = 1024 * MiB
KiB = 1024
ROOT = Path(__file__).resolve().parents[1]
N_SMALL = int(os.environ.get("GENBLAZE_BENCH_SMALL_N", "500"))
BIG = int(os.environ.get("GENBLAZE_BENCH_BIG_BYTES", str(GiB)))
CONCURRENCY = int(os.environ.get("GENBLAZE_BENCH_WORKER_CONCURRENCY", "4"))


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def _run_through_queue(
    sink: Any, assets: list[tuple[str, str]], timeout: float
) -> tuple[float, Any]:
    """Seconds from write_run to the job's terminal state (manifest written + locked)."""
    from genblaze_core.models.manifest import Manifest

    from genblaze_s3.ingest.submit.submission import run_from_urls

    run = run_from_urls([(u, t, None) for u, t in assets])
    t0 = time.perf_counter()
    sink.write_run(run, Manifest.from_run(run))
    view = sink.last_job.wait(timeout=timeout, poll_interval=0.05)
    elapsed = time.perf_counter() - t0
    if view.state.value != "succeeded":
        raise RuntimeError(f"bench job failed: {view.model_dump_json()[:2000]}")
    return elapsed, view


ROUNDS = int(os.environ.get("GENBLAZE_BENCH_SMALL_ROUNDS", "3"))
BIG_REPS = int(os.environ.get("GENBLAZE_BENCH_BIG_REPS", "3"))


def _small_round(
    work: Path, cdn: Any, tag: str, n: int = N_SMALL
) -> tuple[Path, list[tuple[str, str]]]:
    """Fresh random files (CAS would dedupe a repeat) served by the CDN, and their URLs."""
    d = work / f"small-{tag}"
    d.mkdir()
    urls = []
    for i in range(n):
        f = d / f"s{i:03d}.png"
        f.write_bytes(os.urandom(64 * KiB))
        urls.append((cdn.add(f"/img/{tag}/s{i:03d}.png", f, content_type="image/png"), "image/png"))
    return d, urls


def _small_rows(
    sw: Any,
    work: Path,
    cdn: Any,
    bucket: str,
    sink: Any,
    label: str,
    tag: str,
    groups: dict[str, list[int]] | None = None,
) -> tuple[str, str, Any]:
    """ROUNDS interleaved (s5cmd, queue) pairs on fresh files: a table row with the
    medians, a note with every run (s5cmd alone varies ~2x run to run on this host),
    and where the CPU of each went, by process (``groups``: name -> pids)."""
    s5: list[float] = []
    ours: list[float] = []
    meter = CPUMeter(groups or {})
    cpu_s5: list[dict[str, float]] = []
    cpu_q: list[dict[str, float]] = []
    view = None
    # Warm-up, untimed, for both tools: the first writes into a fresh bucket make
    # SeaweedFS grow its volumes (s5cmd's first 500 files took 2x its later runs).
    d, _ = _small_round(work, cdn, f"{tag}warm-s5", n=50)
    s5cmd_cp(sw, str(d) + "/*", f"s3://{bucket}/warm/")
    _run_through_queue(sink, _small_round(work, cdn, f"{tag}warm-q", n=50)[1], 600)
    for rnd in range(ROUNDS):
        d, urls = _small_round(work, cdn, f"{tag}{rnd}")
        meter.start()
        s5.append(s5cmd_cp(sw, str(d) + "/*", f"s3://{bucket}/s5cmd/{rnd}/"))
        cpu_s5.append(meter.stop())
        meter.start()
        q, view = _run_through_queue(sink, urls, 1800)
        cpu_q.append(meter.stop())
        ours.append(q)
    q_med, s5_med = statistics.median(ours), statistics.median(s5)
    row = (
        f"| {N_SMALL} x 64 KiB, CAS, 1 run{label} | {q_med:.2f} s ({N_SMALL / q_med:.0f} files/s) "
        f"| {s5_med:.2f} s ({N_SMALL / s5_med:.0f} files/s) | {s5_med / q_med:.2f} |"
    )
    note = (
        f"- {N_SMALL} x 64 KiB{label}: medians of {ROUNDS} interleaved runs on fresh files; "
        f"s5cmd {', '.join(f'{t:.2f}' for t in s5)} s; through the queue "
        f"{', '.join(f'{t:.2f}' for t in ours)} s; per-run ratios "
        f"{', '.join(f'{a / b:.2f}' for a, b in zip(s5, ours, strict=True))}."
    )
    if groups:
        note += (
            " CPU seconds by process (medians): s5cmd's runs "
            + _cpu_text(cpu_s5)
            + "; through the queue "
            + _cpu_text(cpu_q)
            + "."
        )
    return row, note, view


def _cpu_text(runs: list[dict[str, float]]) -> str:
    names = list(runs[0])
    parts = [f"{n} {statistics.median(r[n] for r in runs):.2f}" for n in names]
    total = statistics.median(sum(r.values()) for r in runs)
    return ", ".join(parts) + f" (total {total:.2f})"


def _fresh_files(
    work: Path, cdn: Any, tag: str, sizes: list[int], suffix: str, media_type: str
) -> tuple[Path, list[tuple[str, str]]]:
    """Fresh random files of ``sizes`` in one folder, served by the CDN: (folder, URLs)."""
    d = work / f"files-{tag}"
    d.mkdir()
    urls = []
    for i, size in enumerate(sizes):
        f = d / f"f{i:03d}{suffix}"
        write_random(f, size)
        urls.append((cdn.add(f"/files/{tag}/{f.name}", f, content_type=media_type), media_type))
    return d, urls


def _many_runs(sink: Any, runs: list[list[tuple[str, str]]], timeout: float) -> float:
    """Seconds from the first ``write_run`` to the last of the runs' jobs ending: each
    run its own job with its locked manifest, submitted back to back (a pipeline that
    renders many small runs), then all waited for."""
    from genblaze_core.models.manifest import Manifest

    from genblaze_s3.ingest.submit.submission import run_from_urls

    t0 = time.perf_counter()
    handles = []
    for assets in runs:
        run = run_from_urls([(u, t, None) for u, t in assets])
        sink.write_run(run, Manifest.from_run(run))
        handles.append(sink.last_job)
    for handle in handles:
        view = handle.wait(timeout=timeout, poll_interval=0.05)
        if view.state.value != "succeeded":
            raise RuntimeError(f"bench job failed: {view.model_dump_json()[:2000]}")
    return time.perf_counter() - t0


def _run_rows(
    sw: Any, work: Path, cdn: Any, bucket: str, sink: Any, case: str, tag: str, shape: Any
) -> tuple[str, str]:
    """ROUNDS interleaved (s5cmd, queue) pairs of one case on fresh files.

    ``shape`` gives the runs of a round: a list of runs, each a list of (size, suffix,
    media type). s5cmd copies all of a round's files in one ``cp`` (its best case: no
    download, no hashing, no manifest, no job per run)."""
    s5: list[float] = []
    ours: list[float] = []
    for rnd in range(ROUNDS):
        runs: list[list[tuple[str, str]]] = []
        folders: list[Path] = []
        for r, files in enumerate(shape):
            assets: list[tuple[str, str]] = []
            for suffix, media in sorted({(f[1], f[2]) for f in files}):
                sizes = [f[0] for f in files if f[1] == suffix]
                d, urls = _fresh_files(work, cdn, f"{tag}{rnd}-{r}{suffix}", sizes, suffix, media)
                folders.append(d)
                assets.extend(urls)
            runs.append(assets)
        both = work / f"s5-{tag}{rnd}"
        both.mkdir()
        for d in folders:
            for f in d.iterdir():
                (both / f"{d.name}-{f.name}").hardlink_to(f)
        first_s5 = rnd % 2 == 0
        if first_s5:
            s5.append(s5cmd_cp(sw, str(both) + "/*", f"s3://{bucket}/s5cmd/{tag}{rnd}/"))
        ours.append(_many_runs(sink, runs, 1800))
        if not first_s5:
            s5.append(s5cmd_cp(sw, str(both) + "/*", f"s3://{bucket}/s5cmd/{tag}{rnd}/"))
    q_med, s5_med = statistics.median(ours), statistics.median(s5)
    row = f"| {case} | {q_med:.2f} s | {s5_med:.2f} s | {s5_med / q_med:.2f} |"
    note = (
        f"- {case}: medians of {ROUNDS} interleaved pairs on fresh files (the tools take "
        f"turns going first); s5cmd {', '.join(f'{t:.2f}' for t in s5)} s; through the "
        f"queue {', '.join(f'{t:.2f}' for t in ours)} s; per-pair ratios "
        f"{', '.join(f'{a / b:.2f}' for a, b in zip(s5, ours, strict=True))}."
    )
    return row, note


def _get_latency(
    api_url: str, token: str, job_id: str, rate: int = 500, seconds: float = 10, clients: int = 4
) -> tuple[list[float], float]:
    """`clients` paced loops (rate/clients req/s each, no catch-up bursts): latencies, rate."""
    import threading

    import httpx

    lat: list[float] = []
    lock = threading.Lock()
    per = rate / clients
    n = int(per * seconds)

    def loop() -> None:
        mine: list[float] = []
        with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}) as c:
            for _ in range(20):  # warm the connection
                c.get(f"/v1/jobs/{job_id}")
            start = time.perf_counter()
            for i in range(n):
                target = start + i / per
                now = time.perf_counter()
                if target > now:
                    time.sleep(target - now)
                t0 = time.perf_counter()
                r = c.get(f"/v1/jobs/{job_id}")
                mine.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"GET failed: {r.status_code}")
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, len(lat) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    import redis
    from cryptography.fernet import Fernet
    from genblaze_core.storage.base import KeyStrategy, ObjectLockConfig

    from genblaze_s3.ingest import QueuedStorageSink
    from genblaze_s3.ingest.destinations import DestinationPolicy
    from genblaze_s3.ingest.submit.submission import run_from_urls
    from genblaze_s3.ingest.tenants import TenantRegistry
    from genblaze_s3.local.services import start_redis, start_seaweedfs
    from genblaze_s3.local.stack import start_stack
    from tests.support.cdn import CDNServer

    os.environ.setdefault("GENBLAZE_ALLOW_HTTP", "1")
    os.environ.setdefault("GENBLAZE_ALLOW_PRIVATE_HOSTS", "127.0.0.1,localhost")
    work = Path(tempfile.mkdtemp(prefix="genblaze-bench-queue-"))
    big = work / "big.mp4"
    write_random(big, BIG)
    sw = start_seaweedfs(work / "seaweed")
    rds = start_redis()
    stack = None
    rows: list[str] = []
    notes: list[str] = []
    try:
        lock = ObjectLockConfig(retain_until=datetime.now(UTC) + timedelta(days=1))
        # Production defaults, plus a source key: URLs sealed at rest, as documented.
        stack = start_stack(
            redis_url=rds.url,
            s3=sw,
            log_dir=work,
            tokens={"acme": secrets.token_urlsafe(16)},
            n_workers=2,
            concurrency=CONCURRENCY,
            extra_env={"GENBLAZE_SOURCE_KEY": Fernet.generate_key().decode()},
        )
        policy = DestinationPolicy.from_settings(
            load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": sw.endpoint_url})
        )

        def sink_for(
            bucket: str, strategy: KeyStrategy, queue: str | None = None
        ) -> QueuedStorageSink:
            backend = sw.backend(bucket)
            return QueuedStorageSink(
                backend,
                key_strategy=strategy,
                manifest_lock=lock,
                redis_url=rds.url,
                queue=queue or stack.queue,  # type: ignore[union-attr]
                tenant="acme",
                # the workers' tenant rules: acme's jobs go under its root
                tenants=TenantRegistry.from_api_tokens(stack.env["GENBLAZE_API_TOKENS"]),  # type: ignore[union-attr]
                destination_policy=policy,
            )

        with CDNServer() as cdn:
            _, small_urls = _small_round(work, cdn, "latency", n=10)  # the 10-asset job
            big_url = cdn.add("/video/big.mp4", big, content_type="video/mp4")

            # GENBLAZE_BENCH_ONLY=runs: only the per-run rows (100 small runs, one typical
            # run), for A/B pairs of trees on the cases a change is about.
            only_runs = os.environ.get("GENBLAZE_BENCH_ONLY") == "runs"
            # -- small files -------------------------------------------------------
            b_small = sw.create_bucket("bq-small", object_lock=True)
            assert stack.api is not None and sw.process is not None and rds.process is not None
            groups = {
                "SeaweedFS": [sw.process.pid],
                "Redis": [rds.process.pid],
                "workers": [w.pid for w in stack.workers],
                "API": [stack.api.pid],
            }
            if not only_runs:
                row, note, small_view = _small_rows(
                    sw,
                    work,
                    cdn,
                    b_small,
                    sink_for(b_small, KeyStrategy.CONTENT_ADDRESSABLE),
                    "",
                    "p",
                    groups,
                )
                rows.append(row)
                notes.append(note)

            # -- many small runs, one typical run (issue 23's rows) --------------------
            cas_sink = sink_for(b_small, KeyStrategy.CONTENT_ADDRESSABLE)
            thumbs = [[(256 * KiB, ".png", "image/png")] * 3] * 100
            typical = [
                [(2 * MiB, ".png", "image/png")] * 4
                + [(4 * MiB, ".wav", "audio/wav"), (64 * MiB, ".mp4", "video/mp4")]
            ]
            for case, tag, shape in (
                ("100 runs of 3 x 256 KiB, each its own job with a locked manifest", "r", thumbs),
                ("one typical run: 4 x 2 MiB + 4 MiB + 64 MiB, locked manifest", "y", typical),
            ):
                row, note = _run_rows(sw, work, cdn, b_small, cas_sink, case, tag, shape)
                rows.append(row)
                notes.append(note)

            # -- 1 GiB ---------------------------------------------------------------
            big_cases = (
                ()
                if os.environ.get("GENBLAZE_BENCH_SKIP_BIG") or only_runs
                else (KeyStrategy.HIERARCHICAL, KeyStrategy.CONTENT_ADDRESSABLE)
            )
            for strategy in big_cases:
                # BIG_REPS interleaved pairs, each in a fresh bucket (CAS would dedupe a
                # repeat; `weed mini` has few volume slots, so each is dropped after),
                # warmed with a small write; the tools take turns going first.
                s5_runs: list[float] = []
                q_runs: list[float] = []
                for rep in range(BIG_REPS):
                    bkt = sw.create_bucket(f"bq-big-{strategy.value[:4]}-{rep}", object_lock=True)
                    sw.client().put_object(Bucket=bkt, Key="warm", Body=b"x" * MiB)
                    sink = sink_for(bkt, strategy)
                    for tool in ("s5cmd", "queue") if rep % 2 == 0 else ("queue", "s5cmd"):
                        if tool == "s5cmd":
                            s5_runs.append(s5cmd_cp(sw, str(big), f"s3://{bkt}/s5cmd/big.mp4"))
                        else:
                            q_runs.append(
                                _run_through_queue(sink, [(big_url, "video/mp4")], 1800)[0]
                            )
                    sw.drop_bucket(bkt)
                q, s5 = statistics.median(q_runs), statistics.median(s5_runs)
                mb = BIG / MiB
                rows.append(
                    f"| {BIG // MiB} MiB, {strategy.value} | {q:.2f} s ({mb / q:.0f} MiB/s) "
                    f"| {s5:.2f} s ({mb / s5:.0f} MiB/s) | {s5 / q:.2f} |"
                )
                notes.append(
                    f"- {BIG // MiB} MiB {strategy.value}: medians of {BIG_REPS} interleaved "
                    f"runs; s5cmd {', '.join(f'{t:.2f}' for t in s5_runs)} s; through the "
                    f"queue {', '.join(f'{t:.2f}' for t in q_runs)} s; per-run ratios "
                    f"{', '.join(f'{a / b:.2f}' for a, b in zip(s5_runs, q_runs, strict=True))}."
                )

            if only_runs:
                return _write_report(rows, notes)
            # -- write_run latency --------------------------------------------------
            # A queue nobody consumes: measure the enqueue alone, then drop it.
            wr_sink = sink_for(b_small, KeyStrategy.CONTENT_ADDRESSABLE, queue="bench-write-run")
            from genblaze_core.models.manifest import Manifest

            times: list[float] = []
            for i in range(220):
                run = run_from_urls(
                    [(f"{cdn.base_url}/img/s{j:03d}.png", "image/png", None) for j in range(10)]
                )
                m = Manifest.from_run(run)
                t0 = time.perf_counter()
                wr_sink.write_run(run, m)
                if i >= 20:  # first sends open connections
                    times.append(time.perf_counter() - t0)
            redis.Redis.from_url(rds.url).delete("bench-write-run")
            notes.append(
                f"- `write_run` of a 10-asset run (store + 10 sends, real Redis broker): "
                f"p50 {statistics.median(times) * 1000:.2f} ms, "
                f"p99 {_pct(times, 99) * 1000:.2f} ms over {len(times)} runs."
            )

            # -- GET latency -----------------------------------------------------------
            lat, achieved = _get_latency(stack.api_url, stack.tokens["acme"], small_view.job_id)
            notes.append(
                f"- `GET /v1/jobs/{{id}}` of the {N_SMALL}-asset job, paced "
                f"at 500 req/s for 10 s by 4 clients ({achieved:.0f} req/s achieved, loopback; "
                f"a finished job, so documents come from the version-checked cache): "
                f"p50 {statistics.median(lat) * 1000:.2f} ms, p99 {_pct(lat, 99) * 1000:.2f} ms."
            )
            build: list[float] = []
            for _ in range(200):
                t0 = time.perf_counter()
                wr_sink.store.get_job_document(small_view.job_id)
                build.append(time.perf_counter() - t0)
            notes.append(
                f"- Uncached document build for the {N_SMALL}-asset job (HGETALL + MGET + JSON, "
                f"what a poll of a job that is still changing costs): p50 "
                f"{statistics.median(build) * 1000:.2f} ms, p99 {_pct(build, 99) * 1000:.2f} ms."
            )
            small_job = sink_for(b_small, KeyStrategy.CONTENT_ADDRESSABLE)
            _, v10 = _run_through_queue(small_job, small_urls[:10], 120)
            lat10, achieved10 = _get_latency(stack.api_url, stack.tokens["acme"], v10.job_id)
            notes.append(
                f"- `GET /v1/jobs/{{id}}` of a 10-asset job, paced at 500 req/s for 10 s "
                f"by 4 clients "
                f"({achieved10:.0f} req/s achieved): p50 {statistics.median(lat10) * 1000:.2f} ms, "
                f"p99 {_pct(lat10, 99) * 1000:.2f} ms."
            )
            # -- small files again, thread pool ------------------------------------------
            # Same 2 processes, `--pool threads --concurrency 8`: cheaper per task on 2 cores,
            # but a killed process strands its tasks until the visibility timeout (prefork
            # re-queues a killed child's task at once), so prefork stays the default.
            for h in stack.workers:
                h.stop()
            stack.workers.clear()
            stack.env.update(GENBLAZE_WORKER_POOL="threads", GENBLAZE_WORKER_CONCURRENCY="8")
            for i in range(2):
                stack.add_worker(f"t{i}")
            b_threads = sw.create_bucket("bq-small-threads", object_lock=True)
            row, note, _ = _small_rows(
                sw,
                work,
                cdn,
                b_threads,
                sink_for(b_threads, KeyStrategy.CONTENT_ADDRESSABLE),
                ", `--pool threads --concurrency 8`",
                "t",
            )
            rows.append(row)
            notes.append(note)
    finally:
        if stack is not None:
            stack.stop()
        rds.stop()
        sw.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return _write_report(rows, notes)


def _write_report(rows: list[str], notes: list[str]) -> int:
    lines = [
        "# Queue benchmark (`python -m bench.bench_queue`)",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs; run under "
        "`flock /tmp/genblaze-bench.lock`. Everything on loopback: SeaweedFS `weed mini`, "
        "embedded Valkey (broker + status store), the test CDN (plain http), the API and "
        f"2 `celery -A workers worker` processes (prefork, concurrency {CONCURRENCY} each). "
        "Queue times run from `write_run` to the job's terminal state (every asset copied, "
        "manifest written with Object Lock). s5cmd copies the same bytes from local disk to "
        "the same server (it does no download, no hashing, no manifest).",
        "",
        "| case | through the queue | s5cmd cp | ratio (s5cmd time / ours) |",
        "|---|---|---|---|",
        *rows,
        "",
        *notes,
        "",
    ]
    out = ROOT / "bench" / "results" / "queue.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
