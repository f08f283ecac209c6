"""The worker's consumer, with one fix: the main process survives its Redis going away.

Root cause (read in celery 5.7.0 / kombu 5.7.0, reproduced by
tests/integration/test_bounded_deliveries.py::test_redis_killed_mid_copy_...):

1. Redis dies while a task runs and a second pool slot is idle, so the consumer's
   channel is in BRPOP. `Consumer.on_connection_error_after_connected`
   (celery/worker/consumer/consumer.py) calls `connection.collect()`.
2. kombu `Connection.collect()` -> `_do_close_self()` -> `maybe_close_channel(
   _default_channel)` -> redis `Channel.close()` first reads the pending BRPOP
   (`_brpop_read`), which raises ConnectionError *before* the channel is marked
   closed; `maybe_close_channel` swallows it. `collect()` then runs
   `_do_close_transport()` (`transport.client = None`) but leaves
   `_default_channel` set.
3. Celery 5.7 then also calls `connection.close()` on the collected connection
   ("release the old socket before blueprint.restart()"). `_do_close_self()` closes
   the same default channel again: now it gets past `_brpop_read`, logs "Restoring 1
   unacknowledged message(s)", and `restore_unacked()` builds a new pool from
   `_connparams()`, which reads `self.connection.client.hostname` -> AttributeError
   ('NoneType' object has no attribute 'hostname'). That is not a connection error,
   so `ignore_errors(connection, connection.close)` lets it through and the worker
   stops with "Unrecoverable error". The same failure mode (a channel used after
   its transport's client was cleared) was reported upstream as celery/kombu#582
   and celery/kombu#970; no upstream fix for this path exists in kombu 5.7.0.

Fix on our side: once `collect()` has torn the transport down, forget its default
channel, so the `close()` that follows has nothing left to re-close. The unacked
message is not lost: it stays in Redis's unacked set and comes back after the
visibility timeout (and the sweeper re-enqueues the asset sooner).
"""

from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's consumer; see the module doc for the one method it changes."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection = self.connection
        if connection is not None:
            collect = connection.collect

            def collect_and_forget_channel(*args: Any, **kwargs: Any) -> Any:
                try:
                    return collect(*args, **kwargs)
                finally:
                    connection._default_channel = None

            connection.collect = collect_and_forget_channel
        super().on_connection_error_after_connected(exc)
