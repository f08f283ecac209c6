"""Prometheus metrics, read from the status store at scrape time.

Why a custom collector: workers run in other processes (other hosts); the
store's counters are the only place every worker's numbers meet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from genblaze_s3.ingest import stats as stat_names
from genblaze_s3.ingest.models import AssetState, JobState
from genblaze_s3.ingest.status import StatusStore


class StoreCollector(Collector):
    def __init__(self, store: StatusStore, queue_depth: Callable[[], int | None]) -> None:
        self._store = store
        self._queue_depth = queue_depth

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        try:
            stats = self._store.stats()
        except Exception:
            return
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
        yield CounterMetricFamily(
            "genblaze_bytes_ingested",
            "Bytes stored by workers",
            value=stats.get(stat_names.BYTES_INGESTED, 0),
        )
        yield CounterMetricFamily(
            "genblaze_copy_retries",
            "Retried copy attempts",
            value=stats.get(stat_names.RETRIES_TOTAL, 0),
        )
        yield CounterMetricFamily(
            "genblaze_source_refreshes",
            "Fresh source URLs obtained for expired or refused sources",
            value=stats.get(stat_names.SOURCE_REFRESHES_TOTAL, 0),
        )
        yield CounterMetricFamily(
            "genblaze_source_waits",
            "Deliveries that found a source not ready and scheduled a retry",
            value=stats.get(stat_names.SOURCE_WAITS_TOTAL, 0),
        )
        yield CounterMetricFamily(
            "genblaze_copy_seconds_sum",
            "Total seconds spent copying",
            value=stats.get(stat_names.COPY_SECONDS_SUM, 0),
        )
        yield CounterMetricFamily(
            "genblaze_copy_count", "Copies completed", value=stats.get(stat_names.COPY_COUNT, 0)
        )
        yield CounterMetricFamily(
            "genblaze_copy_slices",
            "Bounded copy slices that handed on to a continuation",
            value=stats.get("copy_slices_total", 0),
        )
        yield CounterMetricFamily(
            "genblaze_sweeps",
            "Sweeps run (one per interval, fleet-wide)",
            value=stats.get("sweeps_total", 0),
        )
        swept = CounterMetricFamily(
            "genblaze_swept", "Work the sweeper re-enqueued after a broker lost it", labels=["kind"]
        )
        swept.add_metric(["asset"], stats.get("swept_assets_total", 0))
        swept.add_metric(["finalize"], stats.get("swept_jobs_total", 0))
        yield swept
        depth = self._queue_depth()
        if depth is not None:
            yield GaugeMetricFamily(
                "genblaze_queue_depth", "Messages waiting in the ingest queue", value=depth
            )
