"""Every counter in the store's stats hash (``keys.stats_key()``), one name each.

Read this file to know what /metrics can report. Writers (the StatusStore, the
worker) and the reader (api/metrics.py) build field names only here, so a renamed
counter cannot silently read as zero.

| field                    | type  | bumped when                                       |
|--------------------------|-------|---------------------------------------------------|
| jobs_submitted           | int   | a job is recorded                                 |
| jobs_{job state}         | int   | a job enters that state (running, succeeded, ...) |
| assets_{asset state}     | int   | an asset ends in that state (stored, failed, ...) |
| bytes_ingested           | int   | an asset is stored or deduplicated (its size)     |
| retries_total            | int   | a copy attempt is retried                         |
| copy_seconds_sum         | float | a copy ends (its duration)                        |
| copy_count               | int   | a copy ends                                       |
| copy_slices_total        | int   | a bounded copy slice hands on to a continuation   |
| sweeps_total             | int   | a sweeper run (one per interval, fleet-wide)      |
| swept_assets_total       | int   | the sweeper re-enqueues an asset a broker lost    |
| swept_jobs_total         | int   | the sweeper re-sends a lost finalize              |
| source_refreshes_total   | int   | a fresh source URL is obtained and stored         |
| source_waits_total       | int   | a delivery finds the source not ready and waits   |
| copy_seconds_le:{bound}  | int   | a copy ends within `bound` s (the histogram's     |
|                          |       | own bucket, not cumulative: see COPY_BUCKETS)     |
| jobs_retried             | int   | a failed or canceled job is retried               |
| assets_retried           | int   | an asset is re-queued by a retry                  |
| failed_code:{code}       | int   | an asset ends failed with that error code         |

A float counter is written with HINCRBYFLOAT, an int with HINCRBY: the value's
Python type decides (the store's Lua fast path follows the same rule).
"""

from __future__ import annotations

from genblaze_s3.ingest.models import AssetState, JobState

JOBS_SUBMITTED = "jobs_submitted"
BYTES_INGESTED = "bytes_ingested"
RETRIES_TOTAL = "retries_total"
COPY_SECONDS_SUM = "copy_seconds_sum"
COPY_COUNT = "copy_count"
COPY_SLICES_TOTAL = "copy_slices_total"
SWEEPS_TOTAL = "sweeps_total"
SWEPT_ASSETS_TOTAL = "swept_assets_total"
SWEPT_JOBS_TOTAL = "swept_jobs_total"
SOURCE_REFRESHES_TOTAL = "source_refreshes_total"
SOURCE_WAITS_TOTAL = "source_waits_total"
JOBS_RETRIED = "jobs_retried"
ASSETS_RETRIED = "assets_retried"


def jobs_entered(state: JobState) -> str:
    """Jobs that entered `state`."""
    return f"jobs_{state.value}"


FAILED_CODE_PREFIX = "failed_code:"


def failed_with(code: str) -> str:
    """Assets that ended failed with error `code` (the fleet view's failure groups)."""
    return FAILED_CODE_PREFIX + code


def assets_finished(state: AssetState) -> str:
    """Assets that ended in the terminal `state`."""
    return f"assets_{state.value}"


# Upper bounds (seconds) of genblaze_copy_duration_seconds: a small image takes well
# under a second, a multi-GB video minutes; "+Inf" catches the rest.
COPY_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)


def copy_bucket(seconds: float) -> str:
    """The stats field of the one histogram bucket a copy of `seconds` falls in."""
    for bound in COPY_BUCKETS:
        if seconds <= bound:
            return f"copy_seconds_le:{bound:g}"
    return "copy_seconds_le:+Inf"


# The fleet view's per-minute series (``keys.series_key``): a finished asset adds to
# "{epoch minute}:{name}" in its hour's hash, in the same atomic write that records it.
SERIES_NAMES = ("ok", "failed", "bytes")  # assets stored or deduplicated, failed; their bytes


def series_counters(state: AssetState, size: int | None, now: float) -> list[tuple[str, float]]:
    """The '@'-prefixed counters a finished asset adds to this minute's series (pure);
    the '@' sends them to the series hash instead of the stats hash (counters.ASSET_CAS)."""
    minute = int(now) // 60
    if state in (AssetState.STORED, AssetState.DEDUPLICATED):
        return [(f"@{minute}:ok", 1), (f"@{minute}:bytes", int(size or 0))]
    if state is AssetState.FAILED:
        return [(f"@{minute}:failed", 1)]
    return []
