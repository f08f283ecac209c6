"""Retry a failed or canceled job: its failed, canceled (and never-sent) assets run again.

Why a retry and not a resubmit: one expired source URL should not cost the other
9,999 copies; the stored assets stay, the job keeps its id, and when every asset
is stored the manifest is written and locked exactly as on a first run. A fresh
URL may replace an expired one: it passes the submit-time checks and is sealed
like the original (the fetcher's SSRF guard re-checks every hop at copy time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from genblaze_s3.ingest.errors import (
    EnqueueError,
    InvalidJobError,
    JobNotRetryableError,
    TooManyJobsError,
)
from genblaze_s3.ingest.models import AssetState, ErrorInfo, JobState
from genblaze_s3.ingest.redact import redact_url
from genblaze_s3.ingest.sealing import SourceRecord, SourceSealer
from genblaze_s3.ingest.store.quotas import ActiveJobs
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import TaskSender, send_job
from genblaze_s3.ingest.submit.submission import check_source
from genblaze_s3.ingest.tenants import TenantRegistry
from genblaze_s3.ingest.transitions import REOPENABLE_JOB_STATES, RETRYABLE_ASSET_STATES


class RetryDeps(Protocol):
    """What a retry needs of the submit side (IngestService provides it): named here
    instead of importing the service, which calls us (no import cycle)."""

    store: StatusStore
    sender: TaskSender
    queue: str
    batch_max: int
    sealer: SourceSealer
    tenants: TenantRegistry
    active: ActiveJobs


# Queued assets of a terminal job were never sent (enqueue failed) or are about to
# be skipped: re-sending them is harmless (leases make a second delivery a no-op).
RETRIED_ASSET_STATES = (*RETRYABLE_ASSET_STATES, AssetState.QUEUED)


@dataclass(frozen=True)
class Replacement:
    """A new source for one asset (e.g. a re-signed CDN URL)."""

    url: str
    sha256: str | None = None


def retry_job(service: RetryDeps, job_id: str, replacements: dict[str, Replacement]) -> list[str]:
    """Re-queue a failed/canceled job's unfinished assets; returns their ids.

    Raises JobNotRetryableError (the job is not failed/canceled, or copies are still
    stopping), InvalidJobError (a replacement names an asset that is not retried or
    a URL that fails the submit checks) before anything is written, and EnqueueError
    when the broker refuses (the job is then failed with `enqueue_failed` again).
    """
    store = service.store
    state = store.job_state(job_id)
    if state is None:
        raise JobNotRetryableError.for_state(job_id, "gone")
    if state not in REOPENABLE_JOB_STATES:
        raise JobNotRetryableError.for_state(job_id, state.value)
    if store.asset_ids_in(job_id, AssetState.COPYING):
        raise JobNotRetryableError(
            f"job {job_id} is still stopping its copies; retry shortly", state=state.value
        )
    ids = store.asset_ids_in(job_id, *RETRIED_ASSET_STATES)
    unknown = sorted(set(replacements) - set(ids))
    if unknown:
        raise InvalidJobError(
            f"asset {unknown[0]} is not failed or canceled in job {job_id}",
            field="replacements",
        )
    for aid, rep in replacements.items():
        check_source(rep.url, f"replacements.{aid}.url")
    gone = [a for a in store.sources_missing(job_id, ids) if a not in replacements]
    if gone:
        raise InvalidJobError(
            f"asset {gone[0]} has no stored source (raw URLs are dropped when an asset ends "
            "unless GENBLAZE_SOURCE_KEY seals them): give it a replacement URL",
            field="replacements",
        )
    sealed = {aid: _sealed_source(service, job_id, aid, rep) for aid, rep in replacements.items()}
    # A retried job runs again: it takes one of its tenant's concurrent-job slots.
    owner = store.job_version(job_id)
    tenant = owner[0] if owner else ""
    limit = service.tenants.get(tenant).max_concurrent_jobs if owner else None
    if limit is not None and not service.active.admit(tenant, job_id, limit):
        raise TooManyJobsError(f"this tenant already runs {limit} jobs; retry later")
    if store.reopen_job(job_id) not in REOPENABLE_JOB_STATES:
        raise JobNotRetryableError(f"job {job_id} is already being retried", state="running")
    for aid, value in sealed.items():
        store.set_source(job_id, aid, value)
    for aid in ids:
        fresh = replacements.get(aid)
        store.reopen_asset(job_id, aid, source_url=redact_url(fresh.url) if fresh else None)
    try:
        # No asset left (every one stored, only the manifest failed): finalize again.
        send_job(service.sender, service.queue, job_id, ids, service.batch_max)
    except Exception as exc:
        store.transition_job(
            job_id,
            JobState.FAILED,
            error=ErrorInfo(code="enqueue_failed", message=type(exc).__name__),
        )
        raise EnqueueError(f"could not enqueue retry of {job_id}: {type(exc).__name__}") from exc
    return ids


def _sealed_source(service: RetryDeps, job_id: str, asset_id: str, rep: Replacement) -> str:
    """The replacement sealed like an original; keeps the original's expected SHA-256."""
    sha = rep.sha256
    if sha is None:
        old = service.store.source(job_id, asset_id)
        if old is not None:
            try:
                sha = service.sealer.unseal_source(old).sha256
            except ValueError:
                sha = None
    return service.sealer.seal_source(SourceRecord(url=rep.url, sha256=sha))
