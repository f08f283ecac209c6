"""Submit and cancel jobs: the store write plus the enqueue, in that order.

Why store first: a worker that receives a task must find its job; a job recorded
but never enqueued (broker down) is visible and failed with `enqueue_failed`
rather than silently lost.
"""

from __future__ import annotations

from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.enqueue import (
    FINALIZE_JOB,
    INGEST_ASSET,
    INGEST_ASSETS,
    TaskSender,
    plan_chunks,
)
from genblaze_s3.ingest.errors import EnqueueError
from genblaze_s3.ingest.models import ErrorInfo, JobState
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.status import StatusStore
from genblaze_s3.ingest.submission import JobSubmission


class IngestService:
    """What both QueuedStorageSink and the HTTP API call to start or stop a job."""

    def __init__(
        self,
        store: StatusStore,
        sender: TaskSender,
        queue: str,
        policy: DestinationPolicy,
        sealer: SourceSealer | None = None,
        batch_max: int = 16,
    ) -> None:
        self.batch_max = batch_max
        self.sealer = sealer or SourceSealer(None)
        self.store = store
        self.sender = sender
        self.queue = queue
        self.policy = policy

    def submit(self, sub: JobSubmission, *, idempotency_key: str | None = None) -> tuple[str, bool]:
        """Record and enqueue; returns (job_id, created). Raises before any write if refused."""
        self.policy.check(sub.meta.destination)
        job_id, created = self.store.create_job(
            sub.meta,
            sub.assets,
            sub.sealed_sources(self.sealer),
            sub.payload,
            idempotency_key=idempotency_key,
        )
        if not created:
            return job_id, False
        try:
            for chunk in plan_chunks(list(sub.meta.asset_ids), self.batch_max):
                if len(chunk) == 1:
                    self.sender.send(INGEST_ASSET, [job_id, chunk[0]], self.queue)
                else:
                    self.sender.send(INGEST_ASSETS, [job_id, chunk], self.queue)
            if not sub.meta.asset_ids:
                self.sender.send(FINALIZE_JOB, [job_id], self.queue)
        except Exception as exc:
            self.store.transition_job(
                job_id,
                JobState.FAILED,
                error=ErrorInfo(code="enqueue_failed", message=type(exc).__name__),
            )
            raise EnqueueError(f"could not enqueue job {job_id}: {type(exc).__name__}") from exc
        return job_id, True

    def cancel(self, job_id: str) -> JobState | None:
        """Ask running copies to stop; queued tasks see the state and skip."""
        return self.store.request_cancel(job_id)
