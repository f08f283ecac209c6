"""Publish this worker's tenant placement rules in the store (`ingest/store/placement.py`).

Why: submitters compare the destination they place with the rules the workers
check, and refuse at submit a job no worker would write (a tenants config that
differs). Published at start and every PUBLISH_EVERY seconds, so rules no worker
runs any more stop counting after LIVE_FOR.
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown

from genblaze_s3.ingest.errors import StoreUnavailableError
from genblaze_s3.ingest.store.placement import PUBLISH_EVERY, Placements

logger = logging.getLogger("genblaze_s3.workers")
_stop = threading.Event()


@worker_ready.connect
def _start_publishing(**_: object) -> None:
    from workers.context import context

    ctx = context()
    placements = Placements(ctx.redis)

    def loop() -> None:
        while True:
            try:
                fp = placements.publish(ctx.tenants)
                logger.debug("tenant placement %s published", fp)
            except StoreUnavailableError as exc:  # the store is away: the next tick tries
                logger.info("placement not published: %s", type(exc).__name__)
            if _stop.wait(PUBLISH_EVERY):
                return

    threading.Thread(target=loop, name="genblaze-placement", daemon=True).start()


@worker_shutdown.connect
def _stop_publishing(**_: object) -> None:
    _stop.set()
