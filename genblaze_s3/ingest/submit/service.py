"""Submit and cancel jobs: the store write plus the enqueue, in that order.

Why store first: a worker that receives a task must find its job; a job recorded
but never enqueued (broker down) is visible and failed with `enqueue_failed`
rather than silently lost.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.errors import EnqueueError, InvalidJobError, TooManyJobsError
from genblaze_s3.ingest.models import DestinationSpec, ErrorInfo, JobState, TenantLimits, utc_now
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store.quotas import ActiveJobs
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import TaskSender, send_job
from genblaze_s3.ingest.submit.placement_check import WorkerPlacementCheck
from genblaze_s3.ingest.submit.retry import Replacement, retry_job
from genblaze_s3.ingest.submit.submission import MAX_ASSETS_PER_JOB, JobSubmission
from genblaze_s3.ingest.tenants import TenantRegistry, registry_from_settings
from genblaze_s3.ingest.validation import DEFAULT_MAX_RETENTION_DAYS, check_retention
from genblaze_s3.settings import Settings
from genblaze_s3.transfer.config import FetchPolicy
from genblaze_s3.transfer.errors import TransferError
from genblaze_s3.transfer.urlguard import validate_url


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
        *,
        tenants: TenantRegistry | None = None,
        fetch_policy: FetchPolicy | None = None,
        max_retention_days: int = DEFAULT_MAX_RETENTION_DAYS,
    ) -> None:
        self.batch_max = batch_max
        self.sealer = sealer or SourceSealer(None)
        self.store = store
        self.sender = sender
        self.queue = queue
        self.policy = policy
        self.tenants = tenants or TenantRegistry()
        self.fetch_policy = fetch_policy or FetchPolicy()
        self.max_retention_days = max_retention_days
        self.active = ActiveJobs(store.redis)
        self.workers_place = WorkerPlacementCheck(store.redis, self.tenants)

    @classmethod
    def from_settings(
        cls,
        config: Settings,
        store: StatusStore,
        sender: TaskSender,
        *,
        queue: str | None = None,
        policy: DestinationPolicy | None = None,
        tenants: TenantRegistry | None = None,
    ) -> IngestService:
        """The one wiring of the submit side from the settings: the API server
        (genblaze_s3.runtime) and QueuedStorageSink both build their service here, so a
        sink and the API apply the same tenants, allow-lists, sealing key and limits.
        `queue` / `policy` / `tenants` override the settings (tests, embedding)."""
        return cls(
            store,
            sender,
            queue or config.queue,
            policy or DestinationPolicy.from_settings(config),
            SourceSealer(config.secret("source_key")),
            batch_max=config.batch_max,
            tenants=tenants if tenants is not None else registry_from_settings(config),
            fetch_policy=FetchPolicy.from_settings(config),
            max_retention_days=config.max_retention_days,
        )

    def limits(self, tenant: str) -> TenantLimits:
        """What `tenant` may submit: the API's job size cap, lowered by its own limit."""
        t = self.tenants.get(tenant)
        per_job = MAX_ASSETS_PER_JOB
        if t.max_assets_per_job is not None:
            per_job = min(per_job, t.max_assets_per_job)
        return TenantLimits(
            tenant=tenant,
            max_assets_per_job=per_job,
            max_concurrent_jobs=t.max_concurrent_jobs,
            max_retention_days=self.max_retention_days,
            allow_compliance=t.allow_compliance,
        )

    def place(self, tenant: str, destination: DestinationSpec) -> DestinationSpec:
        """Where `tenant`'s job naming `destination` really writes (prefix under its root)."""
        placed = self.tenants.place(self.tenants.get(tenant), destination)
        self.policy.check(placed)
        return placed

    def admit(self, sub: JobSubmission) -> JobSubmission:
        """Every tenant rule, before any store access: the submission as it will be stored
        (destination placed, notify_url sealed) or a typed refusal.

        Raises InvalidJobError (with `field`), DestinationNotAllowedError, or
        TenantsConfigMismatchError (no live worker would write where this places it).
        """
        meta = sub.meta
        tenant = self.tenants.get(meta.tenant)
        tenant.check_asset_count(len(meta.asset_ids))
        if meta.manifest_lock is not None:
            check_retention(
                meta.manifest_lock.retain_until,
                now=utc_now(),
                max_days=self.max_retention_days,
            )
            tenant.check_lock_mode(meta.manifest_lock.mode)
        notify_url = meta.notify_url
        if notify_url is not None:
            try:  # the SSRF guard sources pass in the worker, here at once (no DNS yet)
                validate_url(notify_url, self.fetch_policy)
            except TransferError as exc:
                raise InvalidJobError(f"notify_url: {exc}", field="notify_url") from exc
            notify_url = self.sealer.seal(notify_url)
        refresh_url = meta.refresh_url
        if refresh_url is not None:  # the same guard; sealed too (it may carry a token)
            try:
                validate_url(refresh_url, self.fetch_policy)
            except TransferError as exc:
                raise InvalidJobError(f"refresh_url: {exc}", field="refresh_url") from exc
            refresh_url = self.sealer.seal(refresh_url)
        destination = self.place(meta.tenant, meta.destination)
        self.workers_place.check(meta.tenant, destination)
        meta = meta.model_copy(
            update={
                "destination": destination,
                "notify_url": notify_url,
                "refresh_url": refresh_url,
            }
        )
        return replace(sub, meta=meta)

    def submit(
        self,
        sub: JobSubmission,
        *,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> tuple[str, bool]:
        """Check, record and enqueue; returns (job_id, created). Raises before any write
        if refused; `fingerprint` (a digest of the request) makes a reused
        Idempotency-Key with another request an IdempotencyConflictError."""
        sub = self.admit(sub)
        limit = self.tenants.get(sub.meta.tenant).max_concurrent_jobs
        if limit is not None and not self.active.admit(sub.meta.tenant, sub.meta.job_id, limit):
            raise TooManyJobsError(f"this tenant already runs {limit} jobs; retry later")
        try:
            job_id, created = self.store.create_job(
                sub.meta,
                sub.assets,
                sub.sealed_sources(self.sealer),
                sub.payload,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
            )
        except BaseException:
            if limit is not None:
                self.active.release(sub.meta.tenant, sub.meta.job_id)
            raise
        if not created:
            if limit is not None:
                self.active.release(sub.meta.tenant, sub.meta.job_id)
            return job_id, False
        try:
            send_job(self.sender, self.queue, job_id, sub.dispatch_order(), self.batch_max)
        except Exception as exc:
            self.store.transition_job(
                job_id,
                JobState.FAILED,
                error=ErrorInfo(code="enqueue_failed", message=type(exc).__name__),
            )
            raise EnqueueError(f"could not enqueue job {job_id}: {type(exc).__name__}") from exc
        return job_id, True

    def retry(self, job_id: str, replacements: dict[str, Replacement] | None = None) -> list[str]:
        """Re-queue a failed or canceled job's unfinished assets (see ingest/retry.py)."""
        return retry_job(self, job_id, replacements or {})

    def cancel(self, job_id: str) -> JobState | None:
        """Ask running copies to stop; queued tasks see the state and skip.

        A copy between two deliveries (waiting out a retry's backoff, or its next slice
        not yet taken) would only see the cancel when its delayed message comes, up to
        a minute later, and its upload would stay open until then: it gets a delivery
        now, which finds the job canceled, aborts the upload and ends the asset.
        """
        state = self.store.request_cancel(job_id)
        if state == JobState.CANCELED:
            idle = self.store.unleased_copying(job_id)
            # best effort: if the broker refuses, the delayed messages still come
            with contextlib.suppress(Exception):
                if idle:
                    send_job(self.sender, self.queue, job_id, idle, self.batch_max)
        return state
