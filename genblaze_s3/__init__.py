"""genblaze-s3: S3-compatible storage for genblaze pipelines (B2, AWS S3, R2, MinIO, SeaweedFS).

The public surface is what this module names. ``AsyncS3StorageBackend`` loads
lazily so that ``import genblaze_s3`` works without the ``async`` extra
(aioboto3); nothing here imports Celery.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from genblaze_core.storage.url_policy import URLPolicy, URLPolicyError

from genblaze_s3.backend import S3StorageBackend
from genblaze_s3.backend.encryption import Encryption, EncryptionMode
from genblaze_s3.backend.presigned import PresignedURL

if TYPE_CHECKING:
    from genblaze_s3.backend.async_backend import AsyncS3StorageBackend
    from genblaze_s3.ingest.finalize.verify import verify_manifest

try:
    __version__ = version("genblaze-s3")
except PackageNotFoundError:  # running from a source checkout
    __version__ = "0.0.0+local"


def __getattr__(name: str) -> Any:
    if name == "AsyncS3StorageBackend":
        value = import_module("genblaze_s3.backend.async_backend").AsyncS3StorageBackend
        globals()[name] = value
        return value
    if name == "verify_manifest":
        value = import_module("genblaze_s3.ingest.finalize.verify").verify_manifest
        globals()[name] = value
        return value
    raise AttributeError(f"module 'genblaze_s3' has no attribute {name!r}")


__all__ = [
    "AsyncS3StorageBackend",
    "Encryption",
    "EncryptionMode",
    "PresignedURL",
    "S3StorageBackend",
    "URLPolicy",
    "URLPolicyError",
    "__version__",
    "verify_manifest",
]
