"""Thin Celery tasks: map `genblaze_s3.ingest` step results to ack / retry / enqueue."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, NoReturn

import redis
from celery.exceptions import Reject

from genblaze_s3.ingest.enqueue import FINALIZE_JOB, INGEST_ASSET, INGEST_ASSETS
from genblaze_s3.ingest.errors import StoreUnavailableError
from genblaze_s3.ingest.finalize import NotReady, finalize_job
from genblaze_s3.ingest.leases import AssetLease
from genblaze_s3.ingest.notify import send_webhook
from genblaze_s3.ingest.process import Action, StepResult, process_asset
from workers.celery_app import CONFIG, app
from workers.context import backend_for, context

logger = logging.getLogger("genblaze_s3.workers")


def _queue(task: Any) -> str:
    info = getattr(task.request, "delivery_info", None) or {}
    return info.get("routing_key") or CONFIG.queue


# The store's own boundary error, and redis errors from the lease and checkpoint
# scripts that talk to the same Redis directly.
STORE_DOWN = (StoreUnavailableError, redis.RedisError)


def _requeue_when_store_is_down(exc: Exception) -> NoReturn:
    """The store (or broker) went away mid-task: hand the message back, never ack it.

    Every step is idempotent (lease, checkpoint, terminal states), so running it again
    later is safe; acking here would strand the asset in `copying`.
    """
    logger.warning("status store unavailable (%s); requeueing", type(exc).__name__)
    raise Reject(exc, requeue=True) from exc


# A chunk that has run this long hands its unstarted assets back to the queue, so a
# large asset never holds the small ones behind it hostage for more than this.
CHUNK_SPLIT_SECONDS = 2.0
# Copies a chunk runs at once inside one pool child: small assets spend most of their
# time waiting on the source and the bucket, so a few threads per child overlap those
# waits at a fraction of a process's cost. Each thread holds one copy's buffers.
CHUNK_THREADS = CONFIG.chunk_threads  # GENBLAZE_CHUNK_THREADS


def _follow_up(job_id: str, asset_id: str, result: StepResult, retries: int, queue: str) -> None:
    """Ack-side effects of one asset step: finalize when it was the last, else re-send."""
    if result.action is Action.DONE:
        if result.finalize:
            app.send_task(FINALIZE_JOB, args=[job_id], queue=queue)
        return
    # RETRY counts an attempt; BUSY (lease held elsewhere) does not.
    nxt = retries + 1 if result.action is Action.RETRY else retries
    app.send_task(
        INGEST_ASSET, args=[job_id, asset_id, nxt], queue=queue, countdown=result.countdown
    )


@app.task(name=INGEST_ASSET, bind=True, max_retries=None)
def ingest_asset(self: Any, job_id: str, asset_id: str, retries: int = 0) -> None:
    """Copy one asset; retry only what the copy engine marks retryable."""
    try:
        result = process_asset(context(), job_id, asset_id, retries=retries)
    except STORE_DOWN as exc:
        _requeue_when_store_is_down(exc)
    _follow_up(job_id, asset_id, result, retries, _queue(self))


@app.task(name=INGEST_ASSETS, bind=True, max_retries=None)
def ingest_assets(self: Any, job_id: str, asset_ids: list[str]) -> None:
    """Copy a chunk of one job's assets, CHUNK_THREADS at a time (see `plan_chunks`).

    A redelivered chunk is safe: finished assets are skipped on a single read, and
    each asset's lease and attempt counter work exactly as for `ingest_asset`.
    Threads inside a prefork child keep prefork's crash semantics (a killed child
    re-queues the whole chunk at once) while small copies overlap their waits.
    """
    q = _queue(self)
    started = time.monotonic()
    pending = deque(asset_ids)
    lock = threading.Lock()
    failures: list[BaseException] = []

    def take() -> str | None:
        with lock:
            if not pending or failures:
                return None
            over = time.monotonic() - started > CHUNK_SPLIT_SECONDS
            return None if over and len(pending) < len(asset_ids) else pending.popleft()

    def run() -> None:
        while (asset_id := take()) is not None:
            try:
                result = process_asset(context(), job_id, asset_id)
                _follow_up(job_id, asset_id, result, 0, q)
            except BaseException as exc:  # re-raised below, in the task's own thread
                with lock:
                    failures.append(exc)
                return

    # A redelivered chunk may hold an asset that kills its process (the chunk came back
    # because a child died). Run it one asset at a time, so an asset that crashes does
    # not take its chunk mates down with it and use up their delivery counts too.
    info = getattr(self.request, "delivery_info", None) or {}
    n = 1 if info.get("redelivered") else min(CHUNK_THREADS, len(asset_ids))
    threads = [threading.Thread(target=run, name=f"chunk-{i}") for i in range(n - 1)]
    for t in threads:
        t.start()
    run()
    for t in threads:
        t.join()
    if failures and isinstance(failures[0], STORE_DOWN):
        _requeue_when_store_is_down(failures[0])  # the whole chunk comes back; idempotent
    if pending:  # over budget (or failed): hand back what was not started, in two halves
        rest = list(pending)
        half = (len(rest) + 1) // 2  # two messages: two idle slots can take over
        for part in (rest[:half], rest[half:]):
            if part:
                app.send_task(INGEST_ASSETS, args=[job_id, part], queue=q)
    if failures:
        raise failures[0]


def _pin_webhook_url(url: str) -> tuple[str, str]:
    """The copy engine's SSRF guard on the submitter-chosen notify_url, resolved once."""
    from genblaze_s3.transfer.fetch import pin_url

    return pin_url(url, context().fetch_policy)


def _notify(meta: Any, body: str) -> None:
    send_webhook(
        meta.notify_url,
        body.encode(),
        secret=CONFIG.secret("webhook_secret"),
        pin=_pin_webhook_url,
    )


@app.task(name=FINALIZE_JOB, bind=True, max_retries=None)
def finalize(self: Any, job_id: str, attempt: int = 0) -> None:
    """Write + lock the manifest once; a second finalizer backs off on the lease."""
    ctx = context()
    lease = AssetLease(ctx.redis, job_id, "_finalize", ctx.lease_ttl_ms)
    try:
        acquired = lease.acquire()
    except STORE_DOWN as exc:
        _requeue_when_store_is_down(exc)
    if not acquired:
        app.send_task(
            FINALIZE_JOB,
            args=[job_id, attempt],
            queue=_queue(self),
            countdown=lease.remaining_ms() / 1000 + 0.5,
        )
        return
    with lease:
        try:
            finalize_job(ctx.store, backend_for, job_id, notify=_notify)
        except NotReady:
            return  # the last asset to finish enqueues finalize again
        except STORE_DOWN as exc:
            _requeue_when_store_is_down(exc)
        except Exception:
            if attempt >= ctx.max_retries:
                logger.exception("finalize %s failed for good", job_id)
                from genblaze_s3.ingest.models import ErrorInfo, JobState

                ctx.store.transition_job(
                    job_id, JobState.FAILED, error=ErrorInfo(code="manifest_write_failed")
                )
                return
            app.send_task(
                FINALIZE_JOB,
                args=[job_id, attempt + 1],
                queue=_queue(self),
                countdown=min(60, 2**attempt),
            )
