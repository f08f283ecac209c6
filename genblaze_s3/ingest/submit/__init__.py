"""The submit side: validate, admit and enqueue a job; reopen (retry) and cancel it.

What lives here: ``submission`` (a run or URLs -> job records, pure), ``service``
(store write then enqueue), ``sink`` (QueuedStorageSink), ``enqueue`` (the one seam to
the broker, Celery imported lazily), ``retry`` (reopen failed or canceled assets),
``placement_check`` (refuse a job no live worker would write: tenants configs differ),
``bulk`` (an operator's retry or cancel of a filtered set, counted first).
A tenant's concurrent-job limit is kept in the store (``store.quotas``).

It may import the ``store`` room, ``ingest`` models/errors/tenants and ``transfer``;
never the worker, finalize or client rooms.
"""
