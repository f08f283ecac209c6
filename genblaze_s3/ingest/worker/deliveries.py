"""What one delivery does, minus Celery: one asset, a chunk of assets, or a finalize.

Why here and not in `workers/`: which follow-up to send, when a chunk hands its
rest back and who finalizes are business rules; they are plain functions that
take a ``send`` callable (task name, JSON args, countdown seconds), so a test can
run them with a list as the queue. The Celery tasks only bind ``send`` to the
queue a delivery came from and map `STORE_DOWN` to "hand the message back".
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from genblaze_s3.backoff import FINALIZE, backoff_delay
from genblaze_s3.ingest.finalize.manifest import finalize_job
from genblaze_s3.ingest.finalize.notify import notify_job
from genblaze_s3.ingest.models import TERMINAL_JOB_STATES, ErrorInfo, JobMeta, JobState
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.submit.enqueue import FINALIZE_JOB, INGEST_ASSET, INGEST_ASSETS
from genblaze_s3.ingest.worker.asset_copy import (
    STORE_DOWN,
    Action,
    StepResult,
    WorkerContext,
    process_asset,
)
from genblaze_s3.logs import log_context

logger = logging.getLogger("genblaze_s3.ingest.worker.deliveries")

Send = Callable[[str, list[Any], float], None]

# A chunk that has run this long hands its unstarted assets back to the queue, so a
# large asset never holds the small ones behind it hostage for more than this.
CHUNK_SPLIT_SECONDS = 2.0


def after_step(
    ctx: WorkerContext, job_id: str, asset_id: str, result: StepResult, send: Send
) -> None:
    """Do what an asset step asks for: finalize (here, `finalize_here`), or send its
    retry, its next slice, or (BUSY) itself again once the holder's lease would have
    run out.

    Why BUSY comes back: the holder may be dead (a whole host killed, its message
    already requeued to us by RabbitMQ); coming back when its lease expires resumes
    the copy in about one lease TTL instead of waiting for the sweeper. While the
    holder lives, slices keep such loops short, and they end with the asset.
    """
    if result.action is Action.DONE:
        if result.finalize:
            finalize_here(ctx, job_id, send)
        return
    if result.action in (Action.RETRY, Action.WAIT):
        # A retry waits its backoff, a not-ready source its Retry-After: the sweeper must
        # not take that wait for a lost message.
        ctx.deliveries.note_waiting(job_id, asset_id, time.time() + result.countdown)
    send(INGEST_ASSET, [job_id, asset_id], result.countdown)


def finalize_here(ctx: WorkerContext, job_id: str, send: Send) -> None:
    """The delivery that ended a job's last asset writes its manifest itself.

    Why not a FINALIZE_JOB message: a message costs a broker round trip and a whole
    Celery dispatch (bench/results/cost.md) for work this delivery can do now, and a
    run of three thumbnails waits on it. The guarantees are the message's: the job is
    noted finalize-due first (a process that dies here leaves it to the sweeper), one
    finalizer holds the finalize lease (another comes back by message when it would
    expire), a failed manifest write is retried by message with backoff, and a store
    outage hands this delivery back (its asset is terminal: the redelivery finalizes).
    """
    run_finalize(
        ctx,
        job_id,
        send,
        backend_for=ctx.backend_for,
        notify=job_notifier(ctx),
        due_at=time.time(),
    )


def job_notifier(ctx: WorkerContext) -> Callable[[JobMeta, str], None]:
    """POST a finished job's document to its notify_url, as the job's tenant configured."""

    def notify(meta: JobMeta, body: str) -> None:
        notify_job(meta, body, tenants=ctx.tenants, sealer=ctx.sealer, policy=ctx.fetch_policy)

    return notify


def run_asset(ctx: WorkerContext, job_id: str, asset_id: str, send: Send) -> str | None:
    """One asset delivery: its step, then its follow-up. Returns the error code when the
    asset failed for good (the caller may report the delivery as failed), else None.
    Its log lines carry job_id, asset_id and tenant (genblaze_s3.logs)."""
    with log_context(job_id=job_id, asset_id=asset_id):
        result = process_asset(ctx, job_id, asset_id)
        after_step(ctx, job_id, asset_id, result, send)
    return result.failed


def run_chunk(
    ctx: WorkerContext,
    job_id: str,
    asset_ids: list[str],
    send: Send,
    *,
    threads: int,
    redelivered: bool = False,
    split_seconds: float = CHUNK_SPLIT_SECONDS,
) -> list[str]:
    """Copy a chunk of one job's assets, ``threads`` at a time (see `plan_chunks`).

    A redelivered chunk is safe: finished assets are skipped on a single read, and
    each asset's lease and attempt counter work exactly as for one asset. Threads
    inside a prefork child keep prefork's crash semantics (a killed child re-queues
    the whole chunk at once) while small copies overlap their waits. Once the chunk
    has run ``split_seconds``, what it has not started goes back to the queue in two
    halves (two idle slots can take over). Raises the first failure (a
    `STORE_DOWN`: the store went away) after handing the rest back. Returns
    "asset_id: code" of the assets it failed for good.
    """
    started = time.monotonic()
    pending = deque(asset_ids)
    lock = threading.Lock()
    failures: list[BaseException] = []
    failed: list[str] = []

    def take() -> str | None:
        with lock:
            if not pending or failures:
                return None
            over = time.monotonic() - started > split_seconds
            return None if over and len(pending) < len(asset_ids) else pending.popleft()

    def run() -> None:
        while (asset_id := take()) is not None:
            try:
                code = run_asset(ctx, job_id, asset_id, send)
                if code:
                    with lock:
                        failed.append(f"{asset_id}: {code}")
            except BaseException as exc:  # re-raised below, in the caller's thread
                with lock:
                    failures.append(exc)
                return

    # A redelivered chunk may hold an asset that kills its process (the chunk came back
    # because a child died). Run it one asset at a time, so an asset that crashes does
    # not take its chunk mates down with it and use up their delivery counts too.
    n = 1 if redelivered else min(threads, len(asset_ids))
    helpers = [threading.Thread(target=run, name=f"chunk-{i}") for i in range(n - 1)]
    for t in helpers:
        t.start()
    run()
    for t in helpers:
        t.join()
    if pending and not (failures and isinstance(failures[0], STORE_DOWN)):
        rest = list(pending)
        half = (len(rest) + 1) // 2
        for part in (rest[:half], rest[half:]):
            if part:
                send(INGEST_ASSETS, [job_id, part], 0.0)
    if failures:
        raise failures[0]  # the store went away: the whole chunk comes back; idempotent
    return failed


def run_finalize(
    ctx: WorkerContext,
    job_id: str,
    send: Send,
    *,
    backend_for: Callable[[Any], Any],
    notify: Callable[[JobMeta, str], None] | None = None,
    due_at: float | None = None,
) -> None:
    """Write and lock the manifest once: one finalizer per job holds its lease.

    A second finalizer comes back when the lease would have run out. A failed
    manifest write is retried with the one backoff policy, counted in Redis, then
    the job fails ``manifest_write_failed``. With `due_at` (a delivery finalizing in
    place) the job is noted finalize-due in the lease's round trip, before the lease.
    """
    lease = ctx.deliveries.finalize_lease(job_id, ctx.lease_ttl_ms)
    if not lease.take(due_at=due_at):
        send(FINALIZE_JOB, [job_id], lease.remaining_ms() / 1000 + 0.5)
        return
    retries_key = keys.finalize_retries_key(job_id)
    with lease:  # released on the way out, unless `end` released it
        try:
            state = finalize_job(ctx.store, backend_for, job_id, notify=notify, signer=ctx.signer)
        except STORE_DOWN:
            raise  # the store went away: hand the message back, not a manifest retry
        except Exception:
            n = ctx.deliveries.count_retry(retries_key, ctx.max_retries)
            if n is not None:
                send(FINALIZE_JOB, [job_id], backoff_delay(n, base=FINALIZE[0], cap=FINALIZE[1]))
                return  # still finalize-due: the sweeper's net if the retry is lost
            logger.exception("finalize %s failed for good", job_id)
            ctx.store.transition_job(
                job_id, JobState.FAILED, error=ErrorInfo(code="manifest_write_failed")
            )
            state = JobState.FAILED
        # Terminal, gone, or (not every asset is terminal) the last asset will ask again:
        # no longer due; the retry count goes with a job that ended.
        lease.end(forget_retries=state is None or state in TERMINAL_JOB_STATES)
