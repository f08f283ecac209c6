"""What a delivery does, minus Celery: leases taken, one asset copied, slices handed on.

What lives here: ``deliveries`` (one asset, a chunk, a finalize), ``asset_copy`` (the
copy of one asset and the classification of its failures), ``sources`` and ``refresh``
(expiring and not-ready sources), ``progress`` (paced store writes, cancel checks),
``sweeper`` (re-enqueue what a broker lost).

It may import the ``store``, ``submit`` (the enqueue seam), ``finalize`` rooms,
``ingest`` models/errors/tenants and ``transfer``; never the client room or Celery.
"""
