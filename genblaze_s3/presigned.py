"""Import path of the public 0.3.x package: ``PresignedURL`` now lives in
:mod:`genblaze_s3.backend.presigned`."""

from genblaze_s3.backend.presigned import PresignedURL

__all__ = ["PresignedURL"]
