"""Each worker's main process tells the store who it is and what it runs, every 2 s
(GENBLAZE_HEARTBEAT_INTERVAL).

Why here and not `celery inspect` from the API: a broadcast inspect costs every
worker a reply per refresh and answers nothing about a worker that just died;
Celery events need a receiver that was listening (Flower's history is gone after a
restart). The main process already knows everything the fleet view shows, from
Celery's own worker state (`celery.worker.state.active_requests`, the pool and its
concurrency, the queues it consumes): it writes that to one hash field in the store
(ingest/store/fleet.py), which the API, /metrics and `genblaze-ingest fleet` read.
A clean shutdown removes the field; a killed host stops beating and shows as dead
after five missed heartbeats (at least WORKER_ALIVE_SECONDS).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from genblaze_s3.ingest.store.fleet import FleetStore, WorkerBeat
from genblaze_s3.ingest.submit.enqueue import INGEST_ASSETS

logger = logging.getLogger("genblaze_s3.workers")

_stop = threading.Event()
_host: list[str] = []


def describe(consumer: Any, started_at: float, interval: float = 2.0) -> WorkerBeat:
    """This worker as Celery's state in the main process sees it."""
    from celery.worker import state

    active = list(state.active_requests)
    jobs: list[str] = []
    copies = 0
    for req in active:
        args = list(getattr(req, "args", None) or [])
        if args and isinstance(args[0], str) and args[0] not in jobs:
            jobs.append(args[0])
        name = getattr(req, "task_name", "") or getattr(req, "name", "")
        chunk = args[1] if name == INGEST_ASSETS and len(args) > 1 else None
        copies += len(chunk) if isinstance(chunk, list) else 1
    controller = getattr(consumer, "controller", None)
    pool_cls = getattr(controller, "pool_cls", None)
    pool = getattr(pool_cls, "__module__", "").rsplit(".", 1)[-1] or str(pool_cls)
    queues = [q.name for q in consumer.app.amqp.queues.consume_from.values()]
    return WorkerBeat(
        host=str(consumer.hostname),
        pid=os.getpid(),
        pool=pool,
        concurrency=int(getattr(controller, "concurrency", 0) or 0),
        active=copies,
        active_jobs=jobs[:20],
        processed=sum(state.total_count.values()),
        queues=queues,
        started_at=started_at,
        heartbeat_at=time.time(),
        interval=interval,
    )


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: object) -> None:
    from workers.celery_app import CONFIG
    from workers.context import context

    interval = CONFIG.heartbeat_interval  # GENBLAZE_HEARTBEAT_INTERVAL; 0: no heartbeat
    if interval <= 0:
        return
    fleet = FleetStore(context().redis)
    started = time.time()

    def loop() -> None:
        failing = False
        while True:
            try:
                beat = describe(sender, started, interval)
                _host[:] = [beat.host]
                fleet.beat(beat)
                if failing:
                    logger.info("worker heartbeat written again")
                failing = False
            except Exception:  # the store may be down: the next beat tries again
                if not failing:  # once per outage, not every 2 s
                    logger.warning("worker heartbeat failed; retrying", exc_info=True)
                failing = True
            if _stop.wait(interval):
                return

    threading.Thread(target=loop, name="genblaze-heartbeat", daemon=True).start()


@worker_shutdown.connect
def _stop_heartbeat(**_: object) -> None:
    _stop.set()
    if _host:
        try:
            from workers.context import context

            FleetStore(context().redis).leave(_host[0])
        except Exception:
            logger.warning("could not remove this worker's heartbeat", exc_info=True)
