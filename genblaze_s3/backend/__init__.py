"""The S3 storage backend: ``S3StorageBackend`` (boto3) and ``AsyncS3StorageBackend`` (aioboto3).

Modules, one job each:

* ``sync_backend`` / ``async_backend``: the two public classes.
* ``connection``: one bucket's client settings, live client and preflight,
  shared by a sync backend and the async backends built from it.
* ``calls``: every request both backends send and what its answer means,
  written once (so sync and async cannot drift).
* ``s3errors``: reading S3 error codes (also used by the copy engine);
  ``errors``: mapping to genblaze ``StorageError`` with secrets scrubbed.
* ``preflight`` and ``regions`` / ``backblaze``: the bucket check and the B2
  region and endpoint rules.
* ``client``, ``progress``, ``uploads``, ``urls``, ``presigned``,
  ``encryption``, ``bulk``, ``server_copy``, ``user_agent``.

Importing this package never needs aioboto3: ``AsyncS3StorageBackend`` is
imported from ``genblaze_s3.backend.async_backend`` (or lazily from ``genblaze_s3``).
"""

from __future__ import annotations

from genblaze_s3.backend.progress import ProgressCallback
from genblaze_s3.backend.sync_backend import S3StorageBackend
from genblaze_s3.backend.urls import DEFAULT_EXPIRES_IN

__all__ = ["DEFAULT_EXPIRES_IN", "ProgressCallback", "S3StorageBackend"]
