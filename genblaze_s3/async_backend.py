"""Import path of the public 0.3.x package: ``AsyncS3StorageBackend`` now lives in
:mod:`genblaze_s3.backend.async_backend`."""

from genblaze_s3.backend.async_backend import AsyncS3StorageBackend

__all__ = ["AsyncS3StorageBackend"]
