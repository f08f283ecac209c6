"""When every asset is terminal: the run manifest, its provenance and signature, the lock,
the webhook; and ``verify``, which checks all of it from the bucket alone.

What lives here: ``manifest`` (write and lock the run manifest exactly once),
``signing`` (Ed25519 signatures), ``notify`` and ``webhooks`` (Standard Webhooks to the
submitter), ``verify``. The fetch provenance it writes is ``ingest.provenance`` (the
store and the workers record it too).

It may import the ``store`` and ``client`` rooms, the ``ingest`` root modules,
``transfer`` and ``backend``; never the submit or worker rooms (import-linter).
"""
