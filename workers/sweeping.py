"""Run the sweeper (`genblaze_s3.ingest.worker.sweeper`) in every worker's main process.

Why in the worker: no beat process to deploy or forget; the Redis lock inside
`sweep_once` makes exactly one worker of the fleet sweep per interval.
GENBLAZE_SWEEP_INTERVAL=0 turns it off on this worker.
"""

from __future__ import annotations

import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from genblaze_s3.ingest.submit.enqueue import message_headers
from genblaze_s3.ingest.worker.sweeper import run_sweeper, sweep_once
from workers.celery_app import CONFIG, app

_stop = threading.Event()


def _send(name: str, args: list[Any], countdown: float) -> None:
    app.send_task(
        name,
        args=args,
        queue=CONFIG.queue,
        countdown=countdown or None,
        headers=message_headers(),
    )


@worker_ready.connect
def _start_sweeper(**_: object) -> None:
    interval = CONFIG.sweep_interval
    if interval <= 0:
        return
    from workers.context import context

    ctx = context()

    def sweep() -> Any:
        return sweep_once(
            ctx.deliveries, ctx.store, _send, interval=interval, grace=CONFIG.sweep_grace
        )

    threading.Thread(
        target=run_sweeper,
        args=(_stop, sweep),
        kwargs={"interval": interval},
        name="genblaze-sweeper",
        daemon=True,
    ).start()


@worker_shutdown.connect
def _stop_sweeper(**_: object) -> None:
    _stop.set()
