"""Moving bytes from a URL into the bucket, usable without any queue.

Public surface (everything else is private)::

    copy_url, Destination, CopyResult, CopyPaused, CopyProgress, CopyConfig, FetchPolicy,
    CheckpointStore, Checkpoint, MemoryCheckpointStore, FileCheckpointStore,
    TransferError (+ subclasses, each with ``code`` and ``retryable``)
"""

from genblaze_s3.transfer.checkpoint import (
    Checkpoint,
    CheckpointStore,
    FileCheckpointStore,
    MemoryCheckpointStore,
    PartRecord,
    SourceValidators,
)
from genblaze_s3.transfer.config import CopyConfig, FetchPolicy
from genblaze_s3.transfer.copy import copy_url
from genblaze_s3.transfer.errors import (
    Canceled,
    ChecksumMismatch,
    InvalidURL,
    SourceChanged,
    SourceConnectTimeout,
    SourceDNSFailed,
    SourceExpired,
    SourceNotFound,
    SourceNotReady,
    SourceRefused,
    SourceReset,
    SourceTLSFailed,
    SourceTooSlow,
    SourceTruncated,
    SourceUnavailable,
    StorageFailure,
    TooLarge,
    TransferError,
    URLBlocked,
)
from genblaze_s3.transfer.models import CopyPaused, CopyProgress, CopyResult, Destination
from genblaze_s3.transfer.multipart import abort_checkpointed_upload

__all__ = [
    "Canceled",
    "Checkpoint",
    "CheckpointStore",
    "ChecksumMismatch",
    "CopyConfig",
    "CopyPaused",
    "CopyProgress",
    "CopyResult",
    "Destination",
    "FetchPolicy",
    "FileCheckpointStore",
    "InvalidURL",
    "MemoryCheckpointStore",
    "PartRecord",
    "SourceChanged",
    "SourceConnectTimeout",
    "SourceDNSFailed",
    "SourceExpired",
    "SourceNotFound",
    "SourceNotReady",
    "SourceRefused",
    "SourceReset",
    "SourceTLSFailed",
    "SourceTooSlow",
    "SourceTruncated",
    "SourceUnavailable",
    "SourceValidators",
    "StorageFailure",
    "TooLarge",
    "TransferError",
    "URLBlocked",
    "abort_checkpointed_upload",
    "copy_url",
]
