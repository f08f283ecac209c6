"""What a worker does with one delivered asset task, minus Celery.

Why here and not in `workers/`: this is business logic (leases, attempt limits,
cancel, which errors retry) and must be testable without a broker. The Celery
task only maps the returned `StepResult` to ack / retry / send finalize.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import redis

from genblaze_s3.ingest import stats as stat_names
from genblaze_s3.ingest.backoff import compute_backoff
from genblaze_s3.ingest.checkpoint import RedisCheckpointStore
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.errors import DestinationNotAllowedError
from genblaze_s3.ingest.leases import AssetLease
from genblaze_s3.ingest.models import (
    TERMINAL_ASSET_STATES,
    TERMINAL_JOB_STATES,
    AssetRecord,
    AssetState,
    DestinationSpec,
    ErrorInfo,
    JobMeta,
    JobState,
)
from genblaze_s3.ingest.progress import ProgressThrottle
from genblaze_s3.ingest.redact import redact_url
from genblaze_s3.ingest.sealing import SourceRecord, SourceSealer
from genblaze_s3.ingest.status import StatusStore

logger = logging.getLogger("genblaze_s3.ingest.worker")
_URL_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_text(text: str) -> str:
    """Every URL inside an error message, redacted (messages reach API and logs)."""
    return _URL_RE.sub(lambda m: redact_url(m.group(0)), text)[:500]


class Action(Enum):
    DONE = "done"  # ack
    RETRY = "retry"  # transient failure: retry after `countdown`, counts against max_retries
    BUSY = "busy"  # another delivery holds the lease: come back later, not an attempt


@dataclass(frozen=True)
class StepResult:
    action: Action
    countdown: float = 0.0
    finalize: bool = False  # every asset is terminal: the caller enqueues finalize


@dataclass
class WorkerContext:
    """Everything a worker step needs, built once per worker process."""

    redis: redis.Redis
    store: StatusStore
    backend_for: Callable[[DestinationSpec], Any]
    policy: DestinationPolicy
    fetch_policy: Any = None  # genblaze_s3.transfer.FetchPolicy
    copy_config: Any = None  # genblaze_s3.transfer.CopyConfig
    lease_ttl_ms: int = 30_000
    max_attempts: int = 5  # deliveries, counted in Redis (poison-task guard)
    max_retries: int = 5  # retryable-error retries
    cancel_poll_interval: float = 0.5
    sealer: SourceSealer = field(default_factory=lambda: SourceSealer(None))
    checkpoints: RedisCheckpointStore = field(init=False)

    def __post_init__(self) -> None:
        self.checkpoints = RedisCheckpointStore(self.redis, retention_seconds=self.store.retention)


def _ready_to_finalize(ctx: WorkerContext, job_id: str) -> bool:
    state = ctx.store.job_state(job_id)
    return (
        state is not None and state not in TERMINAL_JOB_STATES and ctx.store.remaining(job_id) <= 0
    )


def process_asset(
    ctx: WorkerContext, job_id: str, asset_id: str, *, retries: int = 0
) -> StepResult:
    """Copy one asset of a job into its bucket; safe under any number of redeliveries."""
    meta, state, record, source = ctx.store.snapshot(job_id, asset_id)
    if meta is None or record is None or state is None:
        return StepResult(Action.DONE)  # expired or never recorded: nothing to do
    if record.state in TERMINAL_ASSET_STATES:
        return StepResult(Action.DONE, finalize=_ready_to_finalize(ctx, job_id))
    if state in TERMINAL_JOB_STATES:
        ctx.store.finish_asset(
            job_id,
            asset_id,
            AssetState.CANCELED,
            error=ErrorInfo(code="canceled", message="job is " + str(state)),
        )
        return StepResult(Action.DONE)
    lease = AssetLease(ctx.redis, job_id, asset_id, ctx.lease_ttl_ms)
    attempts = lease.acquire_and_count(ctx.store.retention)
    if not attempts:
        return StepResult(Action.BUSY, countdown=lease.remaining_ms() / 1000 + 0.5)
    with lease:
        if attempts > ctx.max_attempts:
            return _fail(
                ctx,
                job_id,
                asset_id,
                "too_many_attempts",
                f"gave up after {attempts - 1} deliveries (worker crashed each time?)",
            )
        try:
            ctx.policy.check(meta.destination)
        except DestinationNotAllowedError as exc:
            return _fail(ctx, job_id, asset_id, exc.code, str(exc))
        if source is None:
            return _fail(
                ctx, job_id, asset_id, "source_missing", "source URL expired from the store"
            )
        return _copy(
            ctx, lease, job_id, record, ctx.sealer.unseal_source(source), meta, state, retries
        )


def _fail(ctx: WorkerContext, job_id: str, asset_id: str, code: str, message: str) -> StepResult:
    remaining = ctx.store.finish_asset(
        job_id,
        asset_id,
        AssetState.FAILED,
        error=ErrorInfo(code=code, message=redact_text(message)),
    )
    return StepResult(Action.DONE, finalize=remaining <= 0)


def _copy(
    ctx: WorkerContext,
    lease: AssetLease,
    job_id: str,
    record: AssetRecord,
    source: SourceRecord,
    meta: JobMeta,
    state: JobState,
    retries: int,
) -> StepResult:
    from genblaze_core.storage.base import KeyStrategy

    from genblaze_s3.transfer import Destination, TransferError, copy_url

    asset_id = record.asset_id
    dest_spec = meta.destination
    backend = ctx.backend_for(dest_spec)
    ctx.store.start_asset(
        job_id, asset_id, worker=f"{socket.gethostname()}:{os.getpid()}", job_state=state
    )
    throttle = ProgressThrottle(0.5)
    cancel_check = ProgressThrottle(ctx.cancel_poll_interval)
    canceled = False

    def on_progress(p: Any) -> None:
        if throttle.ready():
            ctx.store.record_progress(job_id, asset_id, p.bytes_done, p.bytes_total)

    def should_cancel() -> bool:
        nonlocal canceled
        if lease.lost:
            return True
        if not canceled and cancel_check.ready():
            canceled = ctx.store.job_state(job_id) == JobState.CANCELED
        return canceled

    dest = Destination(
        key_strategy=KeyStrategy(dest_spec.key_strategy),
        prefix=dest_spec.prefix,
        asset_id=asset_id,
        run_id=meta.run_id,
        date_str=meta.run_date,
        tenant=meta.run_tenant,
    )
    kwargs: dict[str, Any] = {}
    if ctx.fetch_policy is not None:
        kwargs["policy"] = ctx.fetch_policy
    if ctx.copy_config is not None:
        kwargs["config"] = ctx.copy_config
    started = time.monotonic()
    try:
        result = copy_url(
            backend,
            source.url,
            dest,
            expected_sha256=source.sha256,
            media_type=record.media_type,
            progress=on_progress,
            checkpoint_store=ctx.checkpoints,
            checkpoint_id=f"{job_id}:{asset_id}",
            should_cancel=should_cancel,
            **kwargs,
        )
    except TransferError as exc:
        if exc.code == "canceled":
            if lease.lost:  # another delivery owns it now: leave no trace
                return StepResult(Action.DONE)
            ctx.store.finish_asset(
                job_id,
                asset_id,
                AssetState.CANCELED,
                error=ErrorInfo(code="canceled", message="job canceled"),
            )
            return StepResult(Action.DONE)  # a canceled job writes no manifest
        if exc.retryable and retries < ctx.max_retries:
            ctx.store.incr_stat(stat_names.RETRIES_TOTAL)
            logger.info("asset %s/%s retry %d: %s", job_id, asset_id, retries + 1, exc.code)
            return StepResult(Action.RETRY, countdown=compute_backoff(retries))
        return _fail(ctx, job_id, asset_id, exc.code, str(exc))
    except Exception as exc:  # unexpected: bounded retries, then a stable code
        logger.exception("asset %s/%s internal error", job_id, asset_id)
        if retries < ctx.max_retries:
            ctx.store.incr_stat(stat_names.RETRIES_TOTAL)
            return StepResult(Action.RETRY, countdown=compute_backoff(retries))
        return _fail(ctx, job_id, asset_id, "internal_error", type(exc).__name__)
    state_done = AssetState.DEDUPLICATED if result.deduplicated else AssetState.STORED
    remaining = ctx.store.finish_asset(
        job_id,
        asset_id,
        state_done,
        key=result.key,
        url=backend.get_durable_url(result.key),
        sha256=result.sha256,
        size=result.size,
        bytes_uploaded=result.bytes_uploaded,
        copy_seconds=time.monotonic() - started,
    )
    return StepResult(Action.DONE, finalize=remaining <= 0)
