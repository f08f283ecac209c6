"""Thin Celery tasks: bind `genblaze_s3.ingest.worker.deliveries` to a queue, map a lost store.

Every decision (follow-ups, chunk splitting, who finalizes, retries) lives in
`genblaze_s3.ingest.worker.deliveries`; a task only passes a ``send`` bound to the queue its
message came from and turns "the store went away" into "hand the message back".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from celery.exceptions import Reject

from genblaze_s3.ingest.submit.enqueue import (
    FINALIZE_JOB,
    INGEST_ASSET,
    INGEST_ASSETS,
    message_headers,
)
from genblaze_s3.ingest.worker.asset_copy import STORE_DOWN
from genblaze_s3.ingest.worker.deliveries import job_notifier, run_asset, run_chunk, run_finalize
from workers.celery_app import CONFIG, app
from workers.context import backend_for, context

logger = logging.getLogger("genblaze_s3.workers")

# Copies a chunk runs at once inside one pool child: small assets spend most of their
# time waiting on the source and the bucket, so a few threads per child overlap those
# waits at a fraction of a process's cost. Each thread holds one copy's buffers.
CHUNK_THREADS = CONFIG.chunk_threads  # GENBLAZE_CHUNK_THREADS


def _sender(task: Any) -> Callable[[str, list[Any], float], None]:
    """``send`` for the library side: to the queue this delivery came from."""
    info = getattr(task.request, "delivery_info", None) or {}
    queue = info.get("routing_key") or CONFIG.queue

    def send(name: str, args: list[Any], countdown: float) -> None:
        app.send_task(
            name,
            args=args,
            queue=queue,
            countdown=countdown or None,
            headers=message_headers(),
        )

    return send


@contextmanager
def _requeue_when_store_is_down() -> Iterator[None]:
    """The store (or broker) went away mid-task: hand the message back, never ack it.

    Every step is idempotent (lease, checkpoint, terminal states), so running it again
    later is safe; acking here would strand the asset in `copying`.
    """
    try:
        yield
    except STORE_DOWN as exc:
        logger.warning("status store unavailable (%s); requeueing", type(exc).__name__)
        raise Reject(exc, requeue=True) from exc


class CopyFailedError(Exception):
    """Raised after the store recorded an asset as failed for good, so the task ends as
    FAILURE (Flower, `celery events`); the store stays the truth. Carries the stable
    error code only: messages may hold URLs, and Celery logs and ships this text."""


@app.task(name=INGEST_ASSET, bind=True, max_retries=None)
def ingest_asset(self: Any, job_id: str, asset_id: str, retries: int = 0) -> None:
    """Copy one asset (or one slice of it). ``retries`` is ignored: counted in Redis."""
    with _requeue_when_store_is_down():
        code = run_asset(context(), job_id, asset_id, _sender(self))
    if code:
        raise CopyFailedError(f"asset {job_id}/{asset_id} failed: {code}")


@app.task(name=INGEST_ASSETS, bind=True, max_retries=None)
def ingest_assets(self: Any, job_id: str, asset_ids: list[str]) -> None:
    """Copy a chunk of one job's assets, CHUNK_THREADS at a time."""
    info = getattr(self.request, "delivery_info", None) or {}
    with _requeue_when_store_is_down():
        failed = run_chunk(
            context(),
            job_id,
            asset_ids,
            _sender(self),
            threads=CHUNK_THREADS,
            redelivered=bool(info.get("redelivered")),
        )
    if failed:
        raise CopyFailedError(f"job {job_id}: {len(failed)} failed: " + ", ".join(failed[:10]))


@app.task(name=FINALIZE_JOB, bind=True, max_retries=None)
def finalize(self: Any, job_id: str, attempt: int = 0) -> None:
    """Write + lock the manifest once. ``attempt`` is ignored: retries are counted in Redis."""
    with _requeue_when_store_is_down():
        ctx = context()
        run_finalize(ctx, job_id, _sender(self), backend_for=backend_for, notify=job_notifier(ctx))
