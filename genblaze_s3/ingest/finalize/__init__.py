"""When every asset is terminal: the run manifest, its provenance and signature, the lock,
the webhook; and ``verify``, which checks all of it from the bucket alone.

What lives here: ``manifest`` (write and lock the run manifest and its envelope exactly
once; ``document`` builds it, ``write`` puts it, ``canonical`` is genblaze-core's
normalization at half the cost), ``record`` (where the manifest and each asset were
stored, written into it), ``signing`` (Ed25519 signatures over the whole manifest),
``attestation`` (the in-toto Statement in a DSSE envelope beside it), ``keyring``
(trusted keys by key id, key generation), ``notify`` and ``webhooks`` (Standard
Webhooks to the submitter), and
``verify`` with ``verify_checks``, ``objects`` (re-reading objects through SHA-256) and
``report`` (findings, verdict, exit codes). The fetch provenance it writes is
``ingest.provenance`` (the store and the workers record it too).

It may import the ``store`` and ``client`` rooms, the ``ingest`` root modules,
``transfer`` and ``backend``; never the submit or worker rooms (import-linter).
"""
