"""The one seam between the library and the broker.

Why a seam: `genblaze_s3.ingest` must never import the `workers` package (nor
Celery at import time). Tasks are sent by *name* through a minimal Celery
producer created lazily, so a library user pays for Celery only when a sink
actually enqueues, and tests can swap in an in-memory sender.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from genblaze_s3.settings import DEFAULT_VISIBILITY_TIMEOUT

INGEST_ASSET = "genblaze.ingest_asset"
INGEST_ASSETS = "genblaze.ingest_assets"  # a chunk of one job's assets, copied in turn
FINALIZE_JOB = "genblaze.finalize_job"


# A large job is spread over about this many messages, so that as many worker slots
# can start on it at once: past SPREAD x MIN_CHUNK assets, chunks grow (to batch_max).
SPREAD = 32

# ...but no message carries fewer assets than this (while the job has them): a chunk's
# assets run side by side in one pool child (GENBLAZE_CHUNK_THREADS, default 4), so a run
# of three thumbnails costs one Celery delivery, not three (bench/results/cost_cuts.md).
MIN_CHUNK = 4


def plan_chunks(
    asset_ids: list[str], batch_max: int, spread: int = SPREAD, min_chunk: int = MIN_CHUNK
) -> list[list[str]]:
    """Cut a job's assets into queue messages: a small job (up to `min_chunk` assets) in
    one; larger ones in chunks of `min_chunk`, which grow past `spread` x `min_chunk`
    assets so that the job stays spread over about `spread` messages, never more than
    `batch_max` per message (1: a message per asset, chunking off).

    Why chunks: a Celery task costs ~2-3 ms of CPU across broker, main process and
    pool child, as much as copying a 64 KiB asset. Each asset in a chunk keeps its
    own lease, attempt count and retry task, so a chunk is only a delivery unit.
    """
    n = len(asset_ids)
    size = max(1, min(batch_max, max(min_chunk, -(-n // spread))))
    return [asset_ids[i : i + size] for i in range(0, n, size)]


SENT_AT_HEADER = "genblaze_sent_at"


def message_headers() -> dict[str, float]:
    """Headers every message we send carries: when it was sent (epoch seconds), so the
    fleet view can tell the age of the oldest waiting message on Redis and RabbitMQ
    alike (neither broker records it for a Celery message)."""
    return {SENT_AT_HEADER: time.time()}


class TaskSender(Protocol):
    """Anything that can put a named task with JSON args on a queue."""

    def send(self, name: str, args: list[Any], queue: str) -> None: ...

    def close(self) -> None: ...


def send_job(
    sender: TaskSender, queue: str, job_id: str, asset_ids: list[str], batch_max: int
) -> None:
    """Send a job's deliveries: its assets in chunks (plan_chunks), or, when it has no
    asset left to copy, the finalize. The one way submit and retry put a job on a queue."""
    for chunk in plan_chunks(asset_ids, batch_max):
        if len(chunk) == 1:
            sender.send(INGEST_ASSET, [job_id, chunk[0]], queue)
        else:
            sender.send(INGEST_ASSETS, [job_id, chunk], queue)
    if not asset_ids:
        sender.send(FINALIZE_JOB, [job_id], queue)


class CelerySender:
    """Sends tasks by name with a producer-only Celery app (no task imports).

    `visibility_timeout` (Redis broker) is the workers' GENBLAZE_VISIBILITY_TIMEOUT: every
    client of one Redis broker states the same value, so whichever of them restores
    unacked messages redelivers them after the same time.
    """

    def __init__(
        self, broker_url: str, *, visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT
    ) -> None:
        self._broker_url = broker_url
        self._visibility_timeout = visibility_timeout
        self._app: Any = None
        self._lock = threading.Lock()

    def _get_app(self) -> Any:
        with self._lock:
            if self._app is None:
                from celery import Celery  # lazy: importing genblaze_s3 never imports celery

                app = Celery("genblaze-producer", broker=self._broker_url, set_as_current=False)
                app.conf.update(
                    task_serializer="json",
                    accept_content=["json"],
                    task_ignore_result=True,
                    broker_connection_retry_on_startup=True,
                    broker_transport_options={"visibility_timeout": self._visibility_timeout},
                )
                self._app = app
            return self._app

    def warm(self) -> None:
        """Open the broker connection now, so the first write_run is fast too."""
        app = self._get_app()
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=3)

    def send(self, name: str, args: list[Any], queue: str) -> None:
        self._get_app().send_task(
            name, args=args, queue=queue, ignore_result=True, headers=message_headers()
        )

    def close(self) -> None:
        with self._lock:
            if self._app is not None:
                self._app.close()
                self._app = None


class MemorySender:
    """Records sends instead of talking to a broker (unit tests, dry runs)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any], str]] = []

    def send(self, name: str, args: list[Any], queue: str) -> None:
        self.sent.append((name, list(args), queue))

    def close(self) -> None:
        pass
