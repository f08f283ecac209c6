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


def jobs_entered(state: JobState) -> str:
    """Jobs that entered `state`."""
    return f"jobs_{state.value}"


def assets_finished(state: AssetState) -> str:
    """Assets that ended in the terminal `state`."""
    return f"assets_{state.value}"
