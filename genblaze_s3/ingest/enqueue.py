"""The one seam between the library and the broker.

Why a seam: `genblaze_s3.ingest` must never import the `workers` package (nor
Celery at import time). Tasks are sent by *name* through a minimal Celery
producer created lazily, so a library user pays for Celery only when a sink
actually enqueues, and tests can swap in an in-memory sender.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

INGEST_ASSET = "genblaze.ingest_asset"
FINALIZE_JOB = "genblaze.finalize_job"
DEFAULT_QUEUE = "genblaze-ingest"


class TaskSender(Protocol):
    """Anything that can put a named task with JSON args on a queue."""

    def send(self, name: str, args: list[Any], queue: str) -> None: ...

    def close(self) -> None: ...


class CelerySender:
    """Sends tasks by name with a producer-only Celery app (no task imports)."""

    def __init__(self, broker_url: str) -> None:
        self._broker_url = broker_url
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
                    broker_transport_options={"visibility_timeout": 4 * 3600},
                )
                self._app = app
            return self._app

    def warm(self) -> None:
        """Open the broker connection now, so the first write_run is fast too."""
        app = self._get_app()
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=3)

    def send(self, name: str, args: list[Any], queue: str) -> None:
        self._get_app().send_task(name, args=args, queue=queue, ignore_result=True)

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
