"""S3 requests and what their answers mean, written once for the sync and async backends.

Each request both backends send is built here as an :class:`S3Call`: the
client method, its parameters, how to read the answer, and which failures are
answers rather than errors (a HEAD miss means "absent"). The sync backend sends
a call with :func:`send`, the async one with :func:`asend`; the two senders
differ only by ``await``, so the backends cannot disagree about what a request
carries or what a response means. (They did: ``ahead`` once missed
``NotFound``/``AccessDenied``, and ``aexists`` let connection errors escape
unmapped.)
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Generic, NoReturn, TypedDict, TypeVar

from genblaze_core.storage.base import ObjectLockConfig
from genblaze_core.storage.types import FileEntry, ListPage, ObjectMetadata

from genblaze_s3.backend import s3errors
from genblaze_s3.backend.encryption import Encryption
from genblaze_s3.backend.errors import to_storage_error
from genblaze_s3.backend.progress import ProgressCallback, ProgressReporter, reporter_for

logger = logging.getLogger("genblaze_s3.backend")

T = TypeVar("T")

# Keys of the SSE and Object Lock envelopes: mixing a value object with
# overlapping extra_args would silently produce a half-and-half envelope.
SSE_KEYS = frozenset(
    {
        "ServerSideEncryption",
        "SSEKMSKeyId",
        "SSEKMSEncryptionContext",
        "SSECustomerAlgorithm",
        "SSECustomerKey",
        "SSECustomerKeyMD5",
        "BucketKeyEnabled",
    }
)
LOCK_KEYS = frozenset({"ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus"})
CHECKSUM_KEYS = frozenset(
    {"ChecksumAlgorithm", "ChecksumSHA256", "ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1"}
)
LIST_PAGE_MAX = 1000  # ListObjectsV2 returns at most this many keys per page

UploadData = bytes | bytearray | memoryview | BinaryIO


class PutOptions(TypedDict, total=False):
    """The keyword options of ``put`` and ``aput``, defined once for both.

    ``content_type`` / ``metadata``: stored with the object. ``extra_args``:
    boto3 ``ExtraArgs`` passthrough (Cache-Control, a pinned ``ChecksumSHA256``...).
    ``encryption``: SSE-S3, SSE-KMS or SSE-C. ``object_lock``: retention or
    legal hold. ``progress``: called with monotonic cumulative
    ``TransferProgress`` counts ending at the total, from any part thread.
    """

    content_type: str | None
    metadata: dict[str, str] | None
    extra_args: dict[str, Any] | None
    encryption: Encryption | None
    object_lock: ObjectLockConfig | None
    progress: ProgressCallback | None


@dataclass(frozen=True, slots=True)
class PutRequest:
    """An upload ready to send: its ``ExtraArgs``, progress reporter and encryption."""

    key: str
    args: dict[str, Any]
    reporter: ProgressReporter | None
    encryption: Encryption | None

    def finish(self) -> None:
        """Report the final progress count once the upload succeeded."""
        if self.reporter is not None:
            self.reporter.finish()


@dataclass(frozen=True, slots=True)
class S3Call(Generic[T]):
    """One S3 request and the meaning of its outcome, independent of sync or async I/O.

    ``recover`` receives any exception the request raised and either returns
    the answer it stands for or raises the mapped ``StorageError``.
    """

    method: str
    params: dict[str, Any]
    parse: Callable[[Any], T]
    recover: Callable[[BaseException], T]


def send(client: Any, call: S3Call[T]) -> T:
    """Send ``call`` on a boto3 client."""
    try:
        response = getattr(client, call.method)(**call.params)
    except Exception as exc:
        return call.recover(exc)
    return call.parse(response)


async def asend(client: Any, call: S3Call[T]) -> T:
    """Send ``call`` on an aiobotocore client."""
    try:
        response = await getattr(client, call.method)(**call.params)
    except Exception as exc:
        return call.recover(exc)
    return call.parse(response)


def raise_mapped(
    operation: str, key: str | None, encryption: Encryption | None = None
) -> Callable[[BaseException], NoReturn]:
    """A ``recover`` for calls whose every failure is an error: map it and raise."""

    def recover(exc: BaseException) -> NoReturn:
        raise to_storage_error(exc, operation=operation, key=key, encryption=encryption) from exc

    return recover


# ---------------------------------------------------------------- request parts


def read_args(encryption: Encryption | None) -> dict[str, Any]:
    """GetObject / HeadObject parameters for ``encryption`` (only SSE-C needs any)."""
    return encryption.to_read_args() if encryption is not None else {}


def put_request(
    key: str,
    data: UploadData,
    *,
    sha256_checksums: bool,
    content_type: str | None = None,
    metadata: dict[str, str] | None = None,
    extra_args: dict[str, Any] | None = None,
    encryption: Encryption | None = None,
    object_lock: ObjectLockConfig | None = None,
    progress: ProgressCallback | None = None,
) -> PutRequest:
    """Everything an upload of ``data`` to ``key`` sends, from the :class:`PutOptions`.

    ``ValueError`` when ``extra_args`` and ``encryption`` / ``object_lock`` both
    set one envelope (the result would be half one, half the other).
    """
    extra = dict(extra_args or {})
    if encryption is not None and SSE_KEYS & extra.keys():
        raise ValueError(
            f"encryption= conflicts with extra_args keys {sorted(SSE_KEYS & extra.keys())}"
        )
    if object_lock is not None and LOCK_KEYS & extra.keys():
        raise ValueError(
            f"object_lock= conflicts with extra_args keys {sorted(LOCK_KEYS & extra.keys())}"
        )
    args: dict[str, Any] = {}
    if encryption is not None:
        args.update(encryption.to_put_args())
    if object_lock is not None:
        args.update(object_lock.to_extra_args())
    if content_type:
        args["ContentType"] = content_type
    if metadata:
        args["Metadata"] = dict(metadata)
    args.update(extra)
    if sha256_checksums and not CHECKSUM_KEYS & args.keys():
        args["ChecksumAlgorithm"] = "SHA256"
    total = remaining_size(data) if progress is not None else None
    reporter = reporter_for(progress, operation="put", key=key, total=total)
    return PutRequest(key=key, args=args, reporter=reporter, encryption=encryption)


def remaining_size(data: UploadData) -> int | None:
    """Bytes left to upload from ``data``; ``None`` for a stream that cannot seek."""
    if isinstance(data, bytes | bytearray | memoryview):
        return len(data)
    try:
        if not data.seekable():
            return None
        here = data.tell()
        end = data.seek(0, io.SEEK_END)
        data.seek(here)
        return max(0, end - here)
    except (AttributeError, OSError, ValueError):
        return None


def byte_range(offset: int, length: int) -> str | None:
    """The HTTP Range of ``length`` bytes from ``offset``; ``None`` when nothing is asked."""
    if offset < 0 or length < 0:
        raise ValueError(f"get_range needs offset >= 0 and length >= 0, got {offset}, {length}")
    return f"bytes={offset}-{offset + length - 1}" if length else None


# ---------------------------------------------------------------- answers


def object_metadata(key: str, response: dict[str, Any]) -> ObjectMetadata:
    """A HeadObject response as genblaze-core's ``ObjectMetadata``."""
    return ObjectMetadata(
        key=key,
        size=int(response.get("ContentLength", 0)),
        last_modified=response["LastModified"],
        etag=response.get("ETag", ""),
        content_type=response.get("ContentType"),
        storage_class=response.get("StorageClass"),
        metadata=dict(response.get("Metadata") or {}),
    )


def list_page_from_response(response: dict[str, Any]) -> ListPage:
    """A ListObjectsV2 response as genblaze-core's ``ListPage``."""
    entries = tuple(
        FileEntry(
            key=item["Key"],
            size=int(item.get("Size", 0)),
            last_modified=item["LastModified"],
            etag=item.get("ETag", ""),
            storage_class=item.get("StorageClass"),
        )
        for item in response.get("Contents") or []
    )
    token = response.get("NextContinuationToken") if response.get("IsTruncated") else None
    return ListPage(entries=entries, next_token=token)


# ---------------------------------------------------------------- calls


def head(bucket: str, key: str, encryption: Encryption | None) -> S3Call[ObjectMetadata | None]:
    """HeadObject: the metadata, or ``None`` when the key is missing or hidden (404/403)."""
    mapped = raise_mapped("head", key, encryption)

    def recover(exc: BaseException) -> None:
        if s3errors.is_absent(exc):
            return None
        mapped(exc)

    return S3Call(
        "head_object",
        {"Bucket": bucket, "Key": key, **read_args(encryption)},
        parse=lambda response: object_metadata(key, response),
        recover=recover,
    )


def exists(bucket: str, key: str, encryption: Encryption | None) -> S3Call[bool]:
    """HeadObject as a yes/no question.

    403 counts as absent: least-privilege keys (B2, AWS) get 403 for missing
    keys they may not list. An SSE-C object HEADed without its key answers
    400; it exists, so that is ``True``.
    """
    mapped = raise_mapped("exists", key, encryption)

    def recover(exc: BaseException) -> bool:
        if s3errors.is_not_found(exc):
            return False
        if s3errors.is_access_denied(exc):
            logger.debug("HEAD %s answered 403: treating as absent", key)
            return False
        if s3errors.http_status(exc) == 400 and encryption is None:
            return True
        mapped(exc)

    return S3Call(
        "head_object",
        {"Bucket": bucket, "Key": key, **read_args(encryption)},
        parse=lambda _response: True,
        recover=recover,
    )


def get_object(
    bucket: str,
    key: str,
    encryption: Encryption | None,
    *,
    operation: str,
    byte_range: str | None = None,
) -> S3Call[dict[str, Any]]:
    """GetObject (whole or one Range); the answer is the response with its open ``Body``."""
    params: dict[str, Any] = {"Bucket": bucket, "Key": key, **read_args(encryption)}
    if byte_range is not None:
        params["Range"] = byte_range
    return S3Call(
        "get_object",
        params,
        parse=lambda response: response,
        recover=raise_mapped(operation, key, encryption),
    )


def single_put_body(data: Any, args: dict[str, Any], threshold: int) -> Any | None:
    """The body to send in one PutObject, or None when the upload goes through the managed
    (multipart above the threshold) transfer. The one decision of the sync and the async
    backend: a pinned whole-object ``ChecksumSHA256`` forces one PutObject (S3 accepts it
    only there); bytes up to the multipart threshold go in one PutObject (one request, no
    transfer-manager overhead); everything else (larger bytes, streams, files) in parts."""
    if "ChecksumSHA256" in args:
        return data
    if isinstance(data, bytes | bytearray | memoryview) and len(data) <= threshold:
        return bytes(data)
    return None


def put_object(
    bucket: str, key: str, body: Any, args: dict[str, Any], encryption: Encryption | None
) -> S3Call[None]:
    """PutObject of a body sent in one request (small, or with a pinned whole-object hash)."""
    return S3Call(
        "put_object",
        {"Bucket": bucket, "Key": key, "Body": body, **args},
        parse=lambda _response: None,
        recover=raise_mapped("put", key, encryption),
    )


def delete(bucket: str, key: str) -> S3Call[None]:
    """DeleteObject (a missing key is not an error, as in S3)."""
    return S3Call(
        "delete_object",
        {"Bucket": bucket, "Key": key},
        parse=lambda _response: None,
        recover=raise_mapped("delete", key),
    )


def list_page(
    bucket: str, prefix: str, max_keys: int, continuation_token: str | None, *, op: str
) -> S3Call[ListPage]:
    """One ListObjectsV2 page; ``ValueError`` for ``max_keys < 1`` before any request."""
    if max_keys < 1:
        raise ValueError(f"{op}: max_keys must be >= 1, got {max_keys}")
    params: dict[str, Any] = {"Bucket": bucket, "MaxKeys": min(max_keys, LIST_PAGE_MAX)}
    if prefix:
        params["Prefix"] = prefix
    if continuation_token:
        params["ContinuationToken"] = continuation_token
    return S3Call(
        "list_objects_v2",
        params,
        parse=list_page_from_response,
        recover=raise_mapped("list", prefix or None),
    )


__all__ = [
    "CHECKSUM_KEYS",
    "LOCK_KEYS",
    "SSE_KEYS",
    "PutOptions",
    "PutRequest",
    "S3Call",
    "UploadData",
    "asend",
    "byte_range",
    "delete",
    "exists",
    "get_object",
    "head",
    "list_page",
    "list_page_from_response",
    "object_metadata",
    "put_object",
    "put_request",
    "raise_mapped",
    "read_args",
    "remaining_size",
    "send",
]
