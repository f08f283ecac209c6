"""Which state changes are legal: pure functions, unit-tested without Redis.

Why explicit tables: concurrent writers (API cancel, a worker's finalize, a
redelivered task) race on the same job; each write is checked against these
tables inside a Redis transaction, so a late writer can never move a job out
of a terminal state.
"""

from __future__ import annotations

from genblaze_s3.ingest.models import (
    TERMINAL_ASSET_STATES,
    TERMINAL_JOB_STATES,
    AssetState,
    JobState,
)

_JOB_NEXT: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset(
        {JobState.RUNNING, JobState.FINALIZING, JobState.FAILED, JobState.CANCELED}
    ),
    JobState.RUNNING: frozenset({JobState.FINALIZING, JobState.FAILED, JobState.CANCELED}),
    # Once the manifest write has begun, cancel is too late: it would race the put.
    JobState.FINALIZING: frozenset({JobState.SUCCEEDED, JobState.FAILED}),
}

_ASSET_NEXT: dict[AssetState, frozenset[AssetState]] = {
    AssetState.QUEUED: frozenset(
        {AssetState.COPYING, AssetState.WAITING_SOURCE} | TERMINAL_ASSET_STATES
    ),
    AssetState.COPYING: frozenset(
        {AssetState.COPYING, AssetState.WAITING_SOURCE} | TERMINAL_ASSET_STATES
    ),
    AssetState.WAITING_SOURCE: frozenset(
        {AssetState.COPYING, AssetState.WAITING_SOURCE} | TERMINAL_ASSET_STATES
    ),
}


# A retry is the one way out of a terminal job state: failed or canceled assets are
# re-queued and the job runs again (a succeeded job has nothing left to do).
REOPENABLE_JOB_STATES = frozenset({JobState.FAILED, JobState.CANCELED})
# The assets a retry runs again (what the CLI and /ui offer to retry; a terminal job's
# never-sent queued assets are re-sent too, see ingest.submit.retry).
RETRYABLE_ASSET_STATES = frozenset({AssetState.FAILED, AssetState.CANCELED})


def progress_percent(
    bytes_done: int, bytes_total: int | None, assets_done: int, assets_total: int
) -> int:
    """A job's progress in whole percent, the one rule of the CLI and /ui: by bytes when
    every size is known, else by assets; 100 once every asset is terminal."""
    if assets_total and assets_done == assets_total:
        return 100
    if bytes_total:
        return min(100, int(100 * bytes_done / bytes_total))
    return int(100 * assets_done / assets_total) if assets_total else 100


def can_transition_job(current: JobState, new: JobState) -> bool:
    """True when `current -> new` is legal; a terminal state never changes."""
    if current in TERMINAL_JOB_STATES:
        return False
    return new in _JOB_NEXT.get(current, frozenset())


def can_transition_asset(current: AssetState, new: AssetState) -> bool:
    """True when `current -> new` is legal; a terminal asset never changes."""
    if current in TERMINAL_ASSET_STATES:
        return False
    return new in _ASSET_NEXT.get(current, frozenset())


def job_outcome(asset_states: list[AssetState]) -> JobState:
    """The terminal job state implied by its assets once all are terminal."""
    if any(s == AssetState.CANCELED for s in asset_states):
        return JobState.CANCELED
    if any(s == AssetState.FAILED for s in asset_states):
        return JobState.FAILED
    return JobState.SUCCEEDED
