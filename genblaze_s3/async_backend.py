"""``AsyncS3StorageBackend``: native asyncio S3 access on aioboto3 (extra ``async``).

The hot paths are native coroutines: ``aget``, ``astream`` (a real async
iterator with back-pressure: one chunk in memory at a time), ``aput``,
``ahead``, ``alist``, ``aexists``, ``adelete``. The rest (copy, bulk deletes,
presigning, lifecycle) delegate to the companion sync backend in a thread,
where they are either rare or pure local computation.

aioboto3 is imported lazily so ``import genblaze_s3`` never needs it; building
an ``AsyncS3StorageBackend`` without it raises an ``ImportError`` that names the
extra to install.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Sequence
from typing import Any, BinaryIO

from botocore.exceptions import ClientError
from genblaze_core.storage.base import ObjectLockConfig
from genblaze_core.storage.types import DeleteResult, ListPage, ObjectMetadata

from genblaze_s3._backend_client import (
    ProgressReporter,
    botocore_config,
    client_kwargs,
    transfer_config,
)
from genblaze_s3._backend_errors import (
    error_code_of,
    install_log_redaction,
    status_of,
    to_storage_error,
)
from genblaze_s3._backend_reads import list_page_from_response, list_request
from genblaze_s3.backend import DEFAULT_EXPIRES_IN, ProgressCallback, S3StorageBackend
from genblaze_s3.encryption import Encryption
from genblaze_s3.presigned import PresignedURL
from genblaze_s3.url_policy import URLPolicy

_STREAM_CHUNK = 8 * 1024 * 1024


def _require_aioboto3() -> Any:
    try:
        import aioboto3
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "AsyncS3StorageBackend needs aioboto3: pip install 'genblaze-s3[async]'"
        ) from exc
    return aioboto3


class AsyncS3StorageBackend:
    """Async S3 backend. Use ``async with`` (or ``await aclose()``) to release the client.

    Construct it from a sync backend with :meth:`from_sync` (keeps its verified
    region: no second HeadBucket), or with the same keyword arguments as
    :class:`S3StorageBackend`.
    """

    def __init__(self, bucket: str, **kwargs: Any) -> None:
        self._init(S3StorageBackend(bucket, **kwargs))

    def _init(self, sync: S3StorageBackend) -> None:
        self._aioboto3 = _require_aioboto3()
        self._sync = sync
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_sync(cls, backend: S3StorageBackend) -> AsyncS3StorageBackend:
        """Wrap ``backend``: same bucket, credentials and (already verified) region."""
        self = cls.__new__(cls)
        self._init(backend)
        return self

    @property
    def sync(self) -> S3StorageBackend:
        """The companion sync backend (shares settings and preflight state)."""
        return self._sync

    @property
    def bucket(self) -> str:
        return self._sync.bucket

    @property
    def public_url_base(self) -> str | None:
        return self._sync.public_url_base

    # ------------------------------------------------------------------ lifecycle

    async def _aclient(self) -> Any:
        """The aiobotocore client, created on first use for the sync backend's current region."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                # Preflight (and any region correction) happens once, on the sync side;
                # from_sync of a verified backend makes this a no-op.
                await asyncio.to_thread(self._sync._ready)
                settings = self._sync._settings
                install_log_redaction()  # aiobotocore's loggers exist only now
                stack = contextlib.AsyncExitStack()
                session = self._aioboto3.Session()
                kwargs = client_kwargs(settings, botocore_config(settings))
                self._client = await stack.enter_async_context(session.client("s3", **kwargs))
                self._stack = stack
        return self._client

    async def aclose(self) -> None:
        """Close the async client (idempotent). The sync companion stays open."""
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> AsyncS3StorageBackend:
        await self._aclient()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ native

    async def aget(
        self,
        key: str,
        *,
        encryption: Encryption | None = None,
        progress: ProgressCallback | None = None,
    ) -> bytes:
        """Download ``key`` whole."""
        buf = bytearray()
        async for chunk in self.astream(key, encryption=encryption, progress=progress):
            buf += chunk
        return bytes(buf)

    async def astream(
        self,
        key: str,
        *,
        chunk_size: int = _STREAM_CHUNK,
        encryption: Encryption | None = None,
        progress: ProgressCallback | None = None,
    ) -> AsyncIterator[bytes]:
        """Yield ``key`` in ``chunk_size`` pieces as they arrive from the network."""
        if chunk_size < 1:
            raise ValueError(f"astream: chunk_size must be >= 1, got {chunk_size}")
        client = await self._aclient()
        read_args = encryption.to_read_args() if encryption is not None else {}
        try:
            resp = await client.get_object(Bucket=self.bucket, Key=key, **read_args)
        except Exception as exc:
            raise to_storage_error(exc, operation="stream", key=key, encryption=encryption) from exc
        total = resp.get("ContentLength")
        reporter = (
            ProgressReporter(progress, operation="stream", key=key, total=total)
            if progress is not None
            else None
        )
        done = 0
        body = resp["Body"]
        try:
            while True:
                try:
                    chunk = await body.read(chunk_size)
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
        finally:
            body.close()  # also on early exit: frees the connection
        if reporter is not None:
            reporter.finish(done)

    async def aput(
        self,
        key: str,
        data: bytes | BinaryIO,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        extra_args: dict[str, Any] | None = None,
        encryption: Encryption | None = None,
        object_lock: ObjectLockConfig | None = None,
        progress: ProgressCallback | None = None,
    ) -> str:
        """Upload ``data`` to ``key``; returns ``key``. Multipart above the threshold."""
        args = self._sync._put_args(content_type, metadata, extra_args, encryption, object_lock)
        client = await self._aclient()
        raw = bytes(data) if isinstance(data, bytes | bytearray | memoryview) else None
        size = len(raw) if raw is not None else None
        reporter = (
            ProgressReporter(progress, operation="put", key=key, total=size)
            if progress is not None
            else None
        )
        config = self._sync.config
        try:
            single = raw is not None and (
                len(raw) <= config.multipart_threshold or "ChecksumSHA256" in args
            )
            if raw is not None and single:
                await client.put_object(Bucket=self.bucket, Key=key, Body=raw, **args)
            else:
                body = io.BytesIO(raw) if raw is not None else data
                await client.upload_fileobj(
                    body,
                    self.bucket,
                    key,
                    ExtraArgs=args,
                    Callback=reporter,
                    Config=transfer_config(config),
                )
        except Exception as exc:
            raise to_storage_error(exc, operation="put", key=key, encryption=encryption) from exc
        if reporter is not None:
            reporter.finish(size)
        return key

    async def ahead(
        self, key: str, *, encryption: Encryption | None = None
    ) -> ObjectMetadata | None:
        """Metadata of ``key``; ``None`` when missing or hidden (404/403)."""
        client = await self._aclient()
        read_args = encryption.to_read_args() if encryption is not None else {}
        try:
            resp = await client.head_object(Bucket=self.bucket, Key=key, **read_args)
        except ClientError as exc:
            if status_of(exc) in (403, 404) or error_code_of(exc) in {"404", "403", "NoSuchKey"}:
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

    async def aexists(self, key: str, *, encryption: Encryption | None = None) -> bool:
        """Whether ``key`` exists (403 counts as absent, like the sync backend)."""
        client = await self._aclient()
        read_args = encryption.to_read_args() if encryption is not None else {}
        try:
            await client.head_object(Bucket=self.bucket, Key=key, **read_args)
            return True
        except ClientError as exc:
            status = status_of(exc)
            if status in (403, 404):
                return False
            if status == 400 and encryption is None:
                return True  # an SSE-C object HEADed without its key
            raise to_storage_error(exc, operation="exists", key=key) from exc

    async def adelete(self, key: str) -> None:
        """Delete ``key``."""
        client = await self._aclient()
        try:
            await client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise to_storage_error(exc, operation="delete", key=key) from exc

    async def alist(
        self, prefix: str = "", *, max_keys: int = 1000, continuation_token: str | None = None
    ) -> ListPage:
        """One ListObjectsV2 page (same contract as :meth:`S3StorageBackend.list`)."""
        kwargs = list_request(self.bucket, prefix, max_keys, continuation_token, op="alist")
        client = await self._aclient()
        try:
            resp = await client.list_objects_v2(**kwargs)
        except Exception as exc:
            raise to_storage_error(exc, operation="list", key=prefix or None) from exc
        return list_page_from_response(resp)

    # ------------------------------------------------------------------ delegated

    async def aget_range(
        self, key: str, *, offset: int, length: int, encryption: Encryption | None = None
    ) -> bytes:
        return await asyncio.to_thread(
            self._sync.get_range, key, offset=offset, length=length, encryption=encryption
        )

    async def acopy(
        self, src_key: str, dst_key: str, *, encryption: Encryption | None = None
    ) -> None:
        await asyncio.to_thread(self._sync.copy, src_key, dst_key, encryption=encryption)

    async def adelete_many(self, keys: Sequence[str], *, dry_run: bool = False) -> DeleteResult:
        return await asyncio.to_thread(self._sync.delete_many, keys, dry_run=dry_run)

    async def adelete_prefix(self, prefix: str, *, dry_run: bool = True) -> DeleteResult:
        return await asyncio.to_thread(self._sync.delete_prefix, prefix, dry_run=dry_run)

    async def aget_url(
        self, key: str, *, expires_in: int | None = None, policy: URLPolicy = URLPolicy.AUTO
    ) -> str:
        if expires_in is None:
            return await asyncio.to_thread(self._sync.get_url, key, policy=policy)
        return await asyncio.to_thread(
            self._sync.get_url, key, expires_in=expires_in, policy=policy
        )

    async def apresigned_get(
        self, key: str, *, expires_in: int = DEFAULT_EXPIRES_IN
    ) -> PresignedURL:
        return await asyncio.to_thread(self._sync.presigned_get, key, expires_in=expires_in)

    async def apresigned_put(
        self, key: str, *, expires_in: int = DEFAULT_EXPIRES_IN, content_type: str | None = None
    ) -> PresignedURL:
        return await asyncio.to_thread(
            self._sync.presigned_put, key, expires_in=expires_in, content_type=content_type
        )

    async def aget_durable_url(self, key: str) -> str:
        return self._sync.get_durable_url(key)

    def get_durable_url(self, key: str) -> str:
        return self._sync.get_durable_url(key)

    def key_from_url(self, url: str) -> str | None:
        return self._sync.key_from_url(url)


__all__ = ["AsyncS3StorageBackend"]
