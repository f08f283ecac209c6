"""What a worker does with one delivered asset task, minus Celery.

Why here and not in `workers/`: this is business logic (leases, attempt limits,
cancel, which errors retry) and must be testable without a broker. The Celery
task only maps the returned `StepResult` to ack / retry / send finalize.

`process_asset` is total: whatever goes wrong for one asset ends that asset in a
state (stored, failed with a code, canceled, or handed on to a retry / the next
slice); only the store itself being unreachable (`STORE_DOWN`) escapes, so
the delivery is handed back to the broker. Every path that ends an asset for
good aborts its multipart upload first: no terminal state leaves one behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import redis

from genblaze_s3.backoff import ASSET, backoff_delay
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.errors import DestinationNotAllowedError, StoreUnavailableError
from genblaze_s3.ingest.finalize.signing import ManifestSigner
from genblaze_s3.ingest.models import (
    TERMINAL_ASSET_STATES,
    TERMINAL_JOB_STATES,
    AssetRecord,
    AssetState,
    DestinationSpec,
    ErrorInfo,
    JobMeta,
    JobState,
    RetryInfo,
    utc_now,
)
from genblaze_s3.ingest.provenance import build_provenance
from genblaze_s3.ingest.redact import redact_url
from genblaze_s3.ingest.sealing import SourceRecord, SourceSealer
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store import stats as stat_names
from genblaze_s3.ingest.store.checkpoints import PreloadedCheckpoint, RedisCheckpointStore
from genblaze_s3.ingest.store.delivery_state import DeliveryState, inflight_member
from genblaze_s3.ingest.store.leases import AssetLease, Taken
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.tenants import TenantRegistry
from genblaze_s3.ingest.worker.progress import ProgressThrottle
from genblaze_s3.ingest.worker.refresh import SourceRefresher
from genblaze_s3.ingest.worker.sources import (
    SourceRules,
    copy_with_refresh,
    gave_up_waiting,
    not_ready_delay,
    refreshable,
)
from genblaze_s3.logs import bind_log_context
from genblaze_s3.transfer.config import CopyConfig, FetchPolicy

logger = logging.getLogger("genblaze_s3.ingest.worker.deliveries")
# "The store went away": the one error every store object raises for a Redis outage
# (ingest.store.boundary). Never an asset's failure: the delivery goes back to the broker
# (workers/tasks.py) and runs again when Redis is back.
STORE_DOWN = StoreUnavailableError
_URL_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_text(text: str) -> str:
    """Every URL inside an error message, redacted (messages reach API and logs)."""
    return _URL_RE.sub(lambda m: redact_url(m.group(0)), text)[:500]


class Action(Enum):
    DONE = "done"  # ack
    RETRY = "retry"  # transient failure: retry after `countdown`, counts against max_retries
    BUSY = "busy"  # another delivery holds the lease: come back later, not an attempt
    CONTINUE = "continue"  # a bounded slice handed on: send the next one now
    WAIT = "wait"  # the source is not ready: come back at `countdown`, not an attempt


@dataclass(frozen=True)
class StepResult:
    action: Action
    countdown: float = 0.0
    finalize: bool = False  # every asset is terminal: the caller finalizes the job
    failed: str | None = None  # the error code when this step failed the asset for good


@dataclass
class WorkerContext:
    """Everything a worker step needs, built once per worker process."""

    redis: redis.Redis
    store: StatusStore
    backend_for: Callable[[DestinationSpec], Any]
    policy: DestinationPolicy
    fetch_policy: FetchPolicy | None = None  # None: the copy engine's strict default
    copy_config: CopyConfig | None = None  # None: CopyConfig's defaults
    lease_ttl_ms: int = 30_000
    max_attempts: int = 5  # deliveries that died in a row, counted in Redis (poison guard)
    max_retries: int = 5  # retryable-error retries, counted in Redis
    cancel_poll_interval: float = 0.25  # a cancel stops the reads within a second
    sealer: SourceSealer = field(default_factory=lambda: SourceSealer(None))
    # One delivery copies for at most this long, then hands on (None: no slicing).
    slice_seconds: float | None = None
    tenants: TenantRegistry = field(default_factory=TenantRegistry)
    refresher: SourceRefresher | None = None  # fresh URLs for expired sources
    source_rules: SourceRules = field(default_factory=SourceRules)
    signer: ManifestSigner | None = None  # when GENBLAZE_SIGNING_KEY is set
    deliveries: DeliveryState = field(init=False)
    checkpoints: RedisCheckpointStore = field(init=False)

    def __post_init__(self) -> None:
        # Everything a worker does in Redis goes through these two store objects (one
        # boundary, one StoreUnavailableError); `redis` is only what they are built on.
        self.deliveries = DeliveryState(self.redis, retention_seconds=self.store.retention)
        self.checkpoints = self.deliveries.checkpoints


class SourceUnreadable(Exception):
    """The stored source record cannot be read on this worker (e.g. another source key)."""


def _ready_to_finalize(ctx: WorkerContext, job_id: str) -> bool:
    state = ctx.store.job_state(job_id)
    return (
        state is not None and state not in TERMINAL_JOB_STATES and ctx.store.remaining(job_id) <= 0
    )


def process_asset(
    ctx: WorkerContext, job_id: str, asset_id: str, *, retries: int | None = None
) -> StepResult:
    """Copy one asset of a job into its bucket; safe under any number of redeliveries.

    ``retries`` is accepted for messages sent by older workers; the count lives in
    Redis (`keys.retries_key`), the one place every delivery can see it.
    """
    # The lease is taken in the snapshot's round trip (one trip fewer per asset); the
    # rare delivery that then has nothing to do gives it back at once.
    lease = ctx.deliveries.asset_lease(job_id, asset_id, ctx.lease_ttl_ms)
    member = inflight_member(job_id, asset_id)
    (meta, state, record, source), raw_take = ctx.store.snapshot_with(
        job_id,
        asset_id,
        lambda pipe: lease.queue_take(
            pipe, ctx.store.retention, inflight=(keys.inflight_key(), member, time.time())
        ),
    )
    taken = lease.took(raw_take)
    if meta is not None:
        bind_log_context(tenant=meta.tenant)
    if meta is None or record is None or state is None:
        _give_back(ctx, lease, taken, job_id, asset_id)
        return StepResult(Action.DONE)  # expired or never recorded: nothing to do
    if record.state in TERMINAL_ASSET_STATES:
        _give_back(ctx, lease, taken, job_id, asset_id)
        return StepResult(Action.DONE, finalize=_ready_to_finalize(ctx, job_id))
    if state in TERMINAL_JOB_STATES:
        # A canceled job: also what a slice finds when the job was canceled between two.
        with lease if taken.attempts else contextlib.nullcontext():
            ended = _end(
                ctx, meta, asset_id, AssetState.CANCELED, "canceled", "job is " + str(state)
            )
            lease.forget_on_release(keys.inflight_key(), member)  # its delivery count too
            return ended
    if not taken.attempts:
        return StepResult(Action.BUSY, countdown=lease.remaining_ms() / 1000 + 0.5)
    with lease:
        try:
            return _leased_step(ctx, lease, meta, state, record, source, taken)
        except STORE_DOWN:
            raise  # the store went away: the delivery goes back to the broker
        except SourceUnreadable as exc:
            logger.error("asset %s/%s: source unreadable: %s", job_id, asset_id, exc)
            return _end(ctx, meta, asset_id, AssetState.FAILED, "source_unreadable", str(exc))
        except Exception as exc:
            logger.exception("asset %s/%s: internal error", job_id, asset_id)
            return _end(ctx, meta, asset_id, AssetState.FAILED, "internal_error", _brief(exc))


def _give_back(
    ctx: WorkerContext, lease: AssetLease, taken: Taken, job_id: str, asset_id: str
) -> None:
    """Nothing to copy (the asset is terminal, or its job is gone): off the in-flight set,
    its counters dropped, and the lease this delivery took released, in one trip."""
    if not taken.attempts:
        _forget_inflight(ctx, job_id, asset_id)
        return
    lease.forget_on_release(keys.inflight_key(), inflight_member(job_id, asset_id))
    lease.release()


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {redact_text(str(exc))}"[:300]


def _leased_step(
    ctx: WorkerContext,
    lease: AssetLease,
    meta: JobMeta,
    state: JobState,
    record: AssetRecord,
    source: str | None,
    taken: Taken,
) -> StepResult:
    asset_id = record.asset_id
    attempts = taken.attempts
    if attempts > ctx.max_attempts:
        return _end(
            ctx,
            meta,
            asset_id,
            AssetState.FAILED,
            "too_many_attempts",
            f"gave up after {attempts - 1} deliveries (worker crashed each time?)",
        )
    try:
        ctx.policy.check(meta.destination)
        if not ctx.tenants.owns(ctx.tenants.get(meta.tenant), meta.destination):
            raise DestinationNotAllowedError("destination is outside the tenant's rights")
    except DestinationNotAllowedError as exc:
        return _end(ctx, meta, asset_id, AssetState.FAILED, exc.code, str(exc))
    if source is None:
        return _end(ctx, meta, asset_id, AssetState.FAILED, "source_missing", "source URL expired")
    return _copy(ctx, lease, meta, state, record, _unseal(ctx, source), taken)


def _unseal(ctx: WorkerContext, source: str) -> SourceRecord:
    try:
        return ctx.sealer.unseal_source(source)
    except Exception as exc:
        # InvalidToken has no message: say what it means for the operator.
        raise SourceUnreadable(
            "the sealed source URL cannot be opened with this worker's GENBLAZE_SOURCE_KEY "
            f"(missing, rotated or different from the submitter's; {type(exc).__name__})"
        ) from exc


def _forget_inflight(ctx: WorkerContext, job_id: str, asset_id: str) -> None:
    """The asset is terminal: the sweeper need not look at it, its retry count is spent."""
    ctx.deliveries.forget_inflight(job_id, asset_id)


def _abort_upload(ctx: WorkerContext, meta: JobMeta, asset_id: str) -> None:
    """Abort the asset's checkpointed multipart upload, if any (best effort, logged)."""
    from genblaze_s3.transfer import abort_checkpointed_upload

    cp_id = keys.asset_checkpoint_id(meta.job_id, asset_id)
    try:
        if ctx.checkpoints.load(cp_id) is None:
            return
        backend = ctx.backend_for(meta.destination)
        abort_checkpointed_upload(backend.client, ctx.checkpoints, cp_id)
    except STORE_DOWN:
        raise
    except Exception:
        logger.warning("asset %s/%s: could not abort its upload", meta.job_id, asset_id)


def _end(
    ctx: WorkerContext,
    meta: JobMeta,
    asset_id: str,
    state: AssetState,
    code: str,
    message: str,
) -> StepResult:
    """End an asset for good (failed or canceled): abort its upload first, then record it."""
    _abort_upload(ctx, meta, asset_id)
    remaining = ctx.store.finish_asset(
        meta.job_id,
        asset_id,
        state,
        error=ErrorInfo(code=code, message=redact_text(message)),
    )
    _forget_inflight(ctx, meta.job_id, asset_id)
    failed = state == AssetState.FAILED
    logger.warning("asset %s for good: %s", state.value, code)  # job/asset/tenant: context
    return StepResult(
        Action.DONE, finalize=failed and remaining <= 0, failed=code if failed else None
    )


def _copy(
    ctx: WorkerContext,
    lease: AssetLease,
    meta: JobMeta,
    state: JobState,
    record: AssetRecord,
    source: SourceRecord,
    taken: Taken,
) -> StepResult:
    from genblaze_core.storage.base import KeyStrategy

    from genblaze_s3 import transfer
    from genblaze_s3.transfer import CopyPaused, Destination, TransferError

    job_id, asset_id = meta.job_id, record.asset_id
    dest_spec = meta.destination
    backend = ctx.backend_for(dest_spec)
    # Attempts used: retries of retryable errors, plus deliveries that died in a row
    # (this one included); clean slice hand-ons and waits for a source are neither.
    tries = taken.attempts + taken.retries
    fetched_at = record.fetch_started_at or utc_now()  # a sliced copy: its first read
    ctx.store.start_asset(
        job_id,
        asset_id,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        job_state=state,
        tenant=meta.tenant,
        attempts=tries,
        fetch_started_at=None if record.fetch_started_at else fetched_at,
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
    if ctx.slice_seconds is not None:
        kwargs["slice_seconds"] = ctx.slice_seconds
    started = time.monotonic()
    checkpoint_id = keys.asset_checkpoint_id(job_id, asset_id)
    checkpoints = PreloadedCheckpoint(ctx.checkpoints, checkpoint_id, taken.checkpoint)

    def copy(url: str) -> Any:
        return transfer.copy_url(
            backend,
            url,
            dest,
            expected_sha256=source.sha256,
            media_type=record.media_type,
            progress=on_progress,
            checkpoint_store=checkpoints,
            checkpoint_id=checkpoint_id,
            should_cancel=should_cancel,
            refreshable_source=refreshable(ctx.refresher, meta),
            **kwargs,
        )

    try:
        copied = copy_with_refresh(
            copy=copy,
            url=source.url,
            meta=meta,
            record=record,
            refresher=ctx.refresher,
            rules=ctx.source_rules,
            store=ctx.store,
            sealer=ctx.sealer,
            fetch_policy=ctx.fetch_policy,
            sha256=source.sha256,
            abandon=lambda: _abort_upload(ctx, meta, asset_id),
        )
    except TransferError as exc:
        if exc.code == "canceled":
            if lease.lost:  # another delivery owns it now: leave no trace
                return StepResult(Action.DONE)
            # a canceled job writes no manifest
            return _end(ctx, meta, asset_id, AssetState.CANCELED, "canceled", "job canceled")
        wait = not_ready_delay(
            exc, meta=meta, record=record, now=utc_now(), ready_wait=ctx.source_rules.ready_wait
        )
        if wait is not None:
            return _wait_for_source(ctx, lease, job_id, asset_id, *wait)
        exc = gave_up_waiting(exc, record, ctx.source_rules.ready_wait)
        if not exc.retryable:
            return _end(ctx, meta, asset_id, AssetState.FAILED, exc.code, str(exc))
        return _retry_later(ctx, lease, meta, asset_id, exc)
    result = copied.result
    if isinstance(result, CopyPaused):  # a bounded slice handed on
        ctx.store.record_progress(job_id, asset_id, result.bytes_done, result.bytes_total)
        ctx.store.incr_stat(stat_names.COPY_SLICES_TOTAL)
        lease.forget_attempts()  # a clean hand-on is not a crashed delivery
        return StepResult(Action.CONTINUE)
    state_done = AssetState.DEDUPLICATED if result.deduplicated else AssetState.STORED
    # Off the in-flight set, its retries forgotten, the lease released: in the terminal
    # write's round trip when it lands there, else on leaving the lease's block.
    lease.forget_on_release(keys.inflight_key(), inflight_member(job_id, asset_id))
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
        provenance=build_provenance(
            copied.url,
            fetched_at=fetched_at,
            validators=result.source,
            bytes_stored=result.size,
            attempts=tries,
            refreshes=copied.refreshes,
            deduplicated=result.deduplicated,
        ),
        lease=lease,
    )
    logger.info(
        "asset %s: %s bytes in %.2fs", state_done.value, result.size, time.monotonic() - started
    )
    return StepResult(Action.DONE, finalize=remaining <= 0)


def _retry_later(
    ctx: WorkerContext, lease: AssetLease, meta: JobMeta, asset_id: str, exc: Any
) -> StepResult:
    """A retryable failure: count it, show it (`retry` on the asset: which try comes
    next, when, and what failed) and come back after the backoff; once the retries are
    spent, fail with the error's own code and say how many tries it took.

    The delivery ended cleanly, so it leaves the crashed-deliveries count: only
    deliveries that really died walk an asset to `too_many_attempts`.
    """
    job_id = meta.job_id
    lease.forget_attempts()
    n = ctx.deliveries.count_retry(keys.retries_key(job_id, asset_id), ctx.max_retries)
    if n is None:
        tries = ctx.max_retries + 1
        message = f"{exc} (gave up after {tries} tries)"
        return _end(ctx, meta, asset_id, AssetState.FAILED, exc.code, message)
    ctx.store.incr_stat(stat_names.RETRIES_TOTAL)
    delay = backoff_delay(n, base=ASSET[0], cap=ASSET[1])
    asked = min(exc.retry_after or 0.0, 3600.0)  # a 429's Retry-After is honoured
    countdown = max(delay, asked)
    error = ErrorInfo(code=exc.code, message=redact_text(str(exc)))
    retry = RetryInfo(
        attempt=n + 1,
        of=ctx.max_retries + 1,
        last_error=error,
        next_try_at=utc_now() + timedelta(seconds=countdown),
    )
    ctx.store.mark_retrying(job_id, asset_id, retry)
    logger.warning(
        "asset %s/%s: %s (%s); try %d of %d in %.1fs",
        job_id,
        asset_id,
        exc.code,
        error.message,
        retry.attempt,
        retry.of,
        countdown,
    )
    return StepResult(Action.RETRY, countdown=countdown)


def _wait_for_source(
    ctx: WorkerContext,
    lease: AssetLease,
    job_id: str,
    asset_id: str,
    delay: float,
    since: datetime,
) -> StepResult:
    """Show `waiting_source` and come back in `delay` seconds without holding a slot.

    The delivery is taken off the attempt count: a source that is not ready yet has
    not failed, and many "not yet" answers must not look like a poison task.
    """
    retry_at = utc_now() + timedelta(seconds=delay)
    ctx.store.mark_waiting_source(job_id, asset_id, retry_at=retry_at, waiting_since=since)
    lease.uncount()
    ctx.store.incr_stat(stat_names.SOURCE_WAITS_TOTAL)
    logger.info("asset %s/%s: source not ready, retry in %.1fs", job_id, asset_id, delay)
    return StepResult(Action.WAIT, countdown=delay)
