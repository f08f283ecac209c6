"""When every asset is terminal: the run manifest, its provenance and signature, the lock,
the webhook; and ``verify``, which checks all of it from the bucket alone.

What lives here: ``manifest`` (write and lock the run manifest exactly once),
``provenance`` (where each asset's bytes came from), ``signing`` (Ed25519 signatures),
``notify`` and ``webhooks`` (Standard Webhooks to the submitter), ``verify``.

It may import the ``store`` room, ``ingest`` models/errors/tenants, ``transfer`` and
``backend``; never the submit, worker or client rooms.
"""
