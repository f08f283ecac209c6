"""Prometheus metrics, read from the status store at scrape time.

Why a custom collector: workers run in other processes (other hosts); the
store's counters are the only place every worker's numbers meet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from genblaze_s3.ingest.models import AssetState, JobState
from genblaze_s3.ingest.store import stats as stat_names
from genblaze_s3.ingest.store.fleet import FleetData, failures_by_code

if TYPE_CHECKING:
    from genblaze_s3.api.fleet import FleetDesk

# Unlabelled counters: (metric, help, store counter).
_COUNTERS: tuple[tuple[str, str, str], ...] = (
    (
        "genblaze_ingested_bytes",
        "Bytes stored by workers (stored and deduplicated assets)",
        stat_names.BYTES_INGESTED,
    ),
    ("genblaze_copy_retries", "Retried copy attempts", stat_names.RETRIES_TOTAL),
    (
        "genblaze_source_refreshes",
        "Fresh source URLs obtained for expired or refused sources",
        stat_names.SOURCE_REFRESHES_TOTAL,
    ),
    (
        "genblaze_source_waits",
        "Deliveries that found a source not ready and scheduled a retry",
        stat_names.SOURCE_WAITS_TOTAL,
    ),
    (
        "genblaze_job_retries",
        "Failed or canceled jobs retried (POST /v1/jobs/{id}/retry)",
        stat_names.JOBS_RETRIED,
    ),
    ("genblaze_asset_retries", "Assets re-queued by job retries", stat_names.ASSETS_RETRIED),
    (
        "genblaze_copy_slices",
        "Bounded copy slices that handed on to a continuation",
        "copy_slices_total",
    ),
    ("genblaze_sweeps", "Sweeps run (one per interval, fleet-wide)", "sweeps_total"),
)


class StoreCollector(Collector):
    """/metrics from the store's counters plus the fleet (workers, queues, failures).

    It reads what the fleet view reads (`FleetDesk`: one store pipeline, one broker
    probe), so /metrics, /v1/fleet and `genblaze-ingest fleet` show the same numbers.
    """

    def __init__(self, queue_depth: Callable[[], int | None], desk: FleetDesk) -> None:
        self._queue_depth = queue_depth
        self._desk = desk

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        try:
            data = self._desk.fleet.read(hours=0)
        except Exception:
            return
        stats = data.stats
        yield from _fleet_metrics(data, stats)
        jobs = CounterMetricFamily("genblaze_jobs", "Jobs entering each state", labels=["state"])
        jobs.add_metric(["submitted"], stats.get(stat_names.JOBS_SUBMITTED, 0))
        for s in JobState:
            if s != JobState.QUEUED:
                jobs.add_metric([s.value], stats.get(stat_names.jobs_entered(s), 0))
        yield jobs
        assets = CounterMetricFamily(
            "genblaze_assets", "Assets finished, by state", labels=["state"]
        )
        for a in (
            AssetState.STORED,
            AssetState.DEDUPLICATED,
            AssetState.FAILED,
            AssetState.CANCELED,
        ):
            assets.add_metric([a.value], stats.get(stat_names.assets_finished(a), 0))
        yield assets
        for name, documentation, stat in _COUNTERS:
            yield CounterMetricFamily(name, documentation, value=stats.get(stat, 0))
        yield _copy_duration(stats)
        swept = CounterMetricFamily(
            "genblaze_swept", "Work the sweeper re-enqueued after a broker lost it", labels=["kind"]
        )
        swept.add_metric(["asset"], stats.get("swept_assets_total", 0))
        swept.add_metric(["finalize"], stats.get("swept_jobs_total", 0))
        yield swept
        queues = self._desk.queues()
        if queues:
            depth = queues[0].depth  # the ingest queue (GENBLAZE_QUEUE)
        else:
            try:
                depth = self._queue_depth()
            except Exception:  # broker down or queue not declared yet: no depth, not a 500
                depth = None
        if depth is not None:
            yield GaugeMetricFamily(
                "genblaze_queue_depth",
                "Messages waiting in the ingest queue (Redis list or RabbitMQ queue)",
                value=depth,
            )
        by_queue = GaugeMetricFamily(
            "genblaze_queue_messages", "Messages waiting, per broker queue", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "genblaze_queue_oldest_message_age_seconds",
            "Age of the oldest waiting message, per broker queue",
            labels=["queue"],
        )
        for q in queues:
            if q.depth is not None:
                by_queue.add_metric([q.name], q.depth)
            if q.oldest_age_seconds is not None:
                oldest.add_metric([q.name], q.oldest_age_seconds)
        yield by_queue
        yield oldest


def _fleet_metrics(
    data: FleetData, stats: dict[str, float]
) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """Workers (alive, active copies) and failures by error code."""
    alive = [w for w in data.workers if w.alive]
    yield GaugeMetricFamily(
        "genblaze_workers_alive", "Worker hosts whose heartbeat is recent", value=len(alive)
    )
    yield GaugeMetricFamily(
        "genblaze_worker_active_copies",
        "Copies running now on live workers",
        value=sum(w.active for w in alive),
    )
    failed = CounterMetricFamily(
        "genblaze_assets_failed_by_code", "Assets failed, by error code", labels=["code"]
    )
    for code, n in failures_by_code(stats).items():
        failed.add_metric([code], n)
    yield failed


def _copy_duration(stats: dict[str, float]) -> HistogramMetricFamily:
    """genblaze_copy_duration_seconds from the per-bucket counters (made cumulative here)."""
    buckets: list[tuple[str, float]] = []
    running = 0.0
    for bound in stat_names.COPY_BUCKETS:
        running += stats.get(stat_names.copy_bucket(bound), 0)
        buckets.append((floatToGoString(bound), running))  # "5.0", as Histogram writes
    running += stats.get("copy_seconds_le:+Inf", 0)
    buckets.append(("+Inf", running))
    return HistogramMetricFamily(
        "genblaze_copy_duration_seconds",
        "Seconds one asset copy took (download, hash, upload), by bucket",
        buckets=buckets,
        sum_value=stats.get(stat_names.COPY_SECONDS_SUM, 0),
    )
