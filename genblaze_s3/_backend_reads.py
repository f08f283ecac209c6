"""Read operations of S3StorageBackend: get, get_range, stream, exists, head, list.

A mixin so ``backend.py`` stays readable; it relies on the backend's ``_bucket``,
``_client`` and ``_ready()`` (the lazy bucket preflight).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import ClientError
from genblaze_core.storage.types import FileEntry, ListPage, ObjectMetadata, TransferProgress

from genblaze_s3._backend_client import ProgressReporter
from genblaze_s3._backend_errors import error_code_of, status_of, to_storage_error
from genblaze_s3.encryption import Encryption

logger = logging.getLogger("genblaze_s3.backend")

ProgressCallback = Callable[[TransferProgress], None]
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})
_GET_PROGRESS_CHUNK = 1024 * 1024


def list_request(
    bucket: str, prefix: str, max_keys: int, continuation_token: str | None, *, op: str
) -> dict[str, Any]:
    """ListObjectsV2 arguments, shared by the sync and async backends."""
    if max_keys < 1:
        raise ValueError(f"{op}: max_keys must be >= 1, got {max_keys}")
    kwargs: dict[str, Any] = {"Bucket": bucket, "MaxKeys": min(max_keys, 1000)}
    if prefix:
        kwargs["Prefix"] = prefix
    if continuation_token:
        kwargs["ContinuationToken"] = continuation_token
    return kwargs


def list_page_from_response(resp: dict[str, Any]) -> ListPage:
    """A ListObjectsV2 response as genblaze-core's ListPage."""
    entries = tuple(
        FileEntry(
            key=item["Key"],
            size=int(item.get("Size", 0)),
            last_modified=item["LastModified"],
            etag=item.get("ETag", ""),
            storage_class=item.get("StorageClass"),
        )
        for item in resp.get("Contents") or []
    )
    token = resp.get("NextContinuationToken") if resp.get("IsTruncated") else None
    return ListPage(entries=entries, next_token=token)


class ReadOps:
    """GET / HEAD / LIST for one bucket, all accepting ``encryption=`` where S3 needs it."""

    _bucket: str
    _client: Any

    def _ready(self) -> None:  # provided by the backend
        raise NotImplementedError

    def get(
        self,
        key: str,
        *,
        encryption: Encryption | None = None,
        progress: ProgressCallback | None = None,
    ) -> bytes:
        """Download ``key`` whole (use :meth:`stream` for objects that should not sit in RAM)."""
        self._ready()
        try:
            resp = self._get_object(key, encryption)
            body = resp["Body"]
            if progress is None:
                return bytes(body.read())
            total = resp.get("ContentLength")
            reporter = ProgressReporter(progress, operation="get", key=key, total=total)
            buf = bytearray()
            for chunk in iter(lambda: body.read(_GET_PROGRESS_CHUNK), b""):
                buf += chunk
                reporter.add(len(chunk))
            reporter.finish(len(buf))
            return bytes(buf)
        except Exception as exc:
            raise to_storage_error(exc, operation="get", key=key, encryption=encryption) from exc

    def _get_object(self, key: str, encryption: Encryption | None, **extra: Any) -> Any:
        read_args = encryption.to_read_args() if encryption is not None else {}
        return self._client.get_object(Bucket=self._bucket, Key=key, **read_args, **extra)

    def get_range(
        self, key: str, *, offset: int, length: int, encryption: Encryption | None = None
    ) -> bytes:
        """``length`` bytes from ``offset`` via an HTTP Range request (``0`` = no request)."""
        if offset < 0 or length < 0:
            raise ValueError(f"get_range needs offset >= 0 and length >= 0, got {offset}, {length}")
        if length == 0:
            return b""
        self._ready()
        try:
            rng = f"bytes={offset}-{offset + length - 1}"
            return bytes(self._get_object(key, encryption, Range=rng)["Body"].read())
        except Exception as exc:
            raise to_storage_error(
                exc, operation="get_range", key=key, encryption=encryption
            ) from exc

    def stream(
        self,
        key: str,
        *,
        chunk_size: int = 8 * 1024 * 1024,
        encryption: Encryption | None = None,
        progress: ProgressCallback | None = None,
    ) -> Iterator[bytes]:
        """Yield ``key`` in ``chunk_size`` pieces; memory holds one chunk at a time.

        The GET is issued here, not at first iteration, so a missing key or a
        wrong SSE-C key raises at the call site. Closing the iterator early
        releases the connection.
        """
        if chunk_size < 1:
            raise ValueError(f"stream: chunk_size must be >= 1, got {chunk_size}")
        self._ready()
        try:
            resp = self._get_object(key, encryption)
        except Exception as exc:
            raise to_storage_error(exc, operation="stream", key=key, encryption=encryption) from exc
        reporter = (
            ProgressReporter(progress, operation="stream", key=key, total=resp.get("ContentLength"))
            if progress is not None
            else None
        )
        return self._iter_body(resp["Body"], key, chunk_size, reporter, encryption)

    @staticmethod
    def _iter_body(
        body: Any,
        key: str,
        chunk_size: int,
        reporter: ProgressReporter | None,
        encryption: Encryption | None,
    ) -> Iterator[bytes]:
        done = 0
        try:
            while True:
                try:
                    chunk = body.read(chunk_size)
                except Exception as exc:
                    raise to_storage_error(
                        exc, operation="stream", key=key, encryption=encryption
                    ) from exc
                if not chunk:
                    break
                done += len(chunk)
                if reporter is not None:
                    reporter.add(len(chunk))
                yield chunk
            if reporter is not None:
                reporter.finish(done)
        finally:
            body.close()

    def exists(self, key: str, *, encryption: Encryption | None = None) -> bool:
        """Whether ``key`` exists.

        403 counts as absent: least-privilege keys (B2, AWS) get 403 for
        missing keys they may not list. An SSE-C object HEADed without its key
        answers 400; it exists, so that is ``True``.
        """
        self._ready()
        try:
            read_args = encryption.to_read_args() if encryption is not None else {}
            self._client.head_object(Bucket=self._bucket, Key=key, **read_args)
            return True
        except ClientError as exc:
            code, status = error_code_of(exc), status_of(exc)
            if code in _NOT_FOUND_CODES or status == 404:
                return False
            if code in _DENIED_CODES or status == 403:
                logger.debug("HEAD %s answered 403: treating as absent", key)
                return False
            if status == 400 and encryption is None:
                return True
            raise to_storage_error(exc, operation="exists", key=key, encryption=encryption) from exc
        except Exception as exc:
            raise to_storage_error(exc, operation="exists", key=key, encryption=encryption) from exc

    def head(self, key: str, *, encryption: Encryption | None = None) -> ObjectMetadata | None:
        """Metadata of ``key``, or ``None`` when missing (404) or hidden (403)."""
        self._ready()
        try:
            read_args = encryption.to_read_args() if encryption is not None else {}
            resp = self._client.head_object(Bucket=self._bucket, Key=key, **read_args)
        except ClientError as exc:
            code, status = error_code_of(exc), status_of(exc)
            if code in _NOT_FOUND_CODES | _DENIED_CODES or status in (403, 404):
                return None
            raise to_storage_error(exc, operation="head", key=key, encryption=encryption) from exc
        except Exception as exc:
            raise to_storage_error(exc, operation="head", key=key, encryption=encryption) from exc
        return ObjectMetadata(
            key=key,
            size=int(resp.get("ContentLength", 0)),
            last_modified=resp["LastModified"],
            etag=resp.get("ETag", ""),
            content_type=resp.get("ContentType"),
            storage_class=resp.get("StorageClass"),
            metadata=dict(resp.get("Metadata") or {}),
        )

    def list(
        self, prefix: str = "", *, max_keys: int = 1000, continuation_token: str | None = None
    ) -> ListPage:
        """One ListObjectsV2 page; pass ``page.next_token`` back for the next one."""
        kwargs = list_request(self._bucket, prefix, max_keys, continuation_token, op="list")
        self._ready()
        try:
            resp = self._client.list_objects_v2(**kwargs)
        except Exception as exc:
            raise to_storage_error(exc, operation="list", key=prefix or None) from exc
        return list_page_from_response(resp)
