"""``AsyncS3StorageBackend``: native asyncio S3 access on aioboto3 (extra ``async``).

The hot paths are native coroutines: ``aget``, ``astream`` (a real async
iterator with back-pressure: one chunk in memory at a time), ``aput``,
``ahead``, ``alist``, ``aexists``, ``adelete``. They send the same requests
and read the answers the same way as the sync backend, because both build them
with :mod:`genblaze_s3.backend.calls`. The rest (copy, bulk deletes, presigning,
lifecycle) delegate to the companion sync backend in a thread, where they are
either rare or pure local computation.

aioboto3 is imported lazily so ``import genblaze_s3`` never needs it; building
an ``AsyncS3StorageBackend`` without it raises an ``ImportError`` that names the
extra to install.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Sequence
from typing import Any, BinaryIO, Unpack

from genblaze_core.storage.types import DeleteResult, ListPage, ObjectMetadata
from genblaze_core.storage.url_policy import URLPolicy

from genblaze_s3.backend import calls
from genblaze_s3.backend.calls import PutOptions
from genblaze_s3.backend.client import botocore_config, client_kwargs
from genblaze_s3.backend.encryption import Encryption
from genblaze_s3.backend.errors import install_log_redaction, storage_errors
from genblaze_s3.backend.presigned import PresignedURL
from genblaze_s3.backend.progress import ProgressCallback, reporter_for
from genblaze_s3.backend.sync_backend import S3StorageBackend
from genblaze_s3.backend.urls import DEFAULT_EXPIRES_IN

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

    Construct it from a sync backend with :meth:`from_sync` (shares its
    connection, so a verified region costs no second HeadBucket), or with the
    same keyword arguments as :class:`S3StorageBackend`.
    """

    def __init__(self, bucket: str, **kwargs: Any) -> None:
        self._init(S3StorageBackend(bucket, **kwargs))

    def _init(self, sync: S3StorageBackend) -> None:
        self._aioboto3 = _require_aioboto3()
        self._sync = sync
        self._connection = sync.connection
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
        """The companion sync backend.

        Both use its connection (client, region, preflight); its ``public_url_base``,
        configuration and URL methods are this backend's too.
        """
        return self._sync

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return self._sync.bucket

    # ------------------------------------------------------------------ lifecycle

    async def _aclient(self) -> Any:
        """The aiobotocore client, created on first use for the connection's current region."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                # The preflight (and any region correction) runs once, on the shared
                # connection; from_sync of a verified backend makes this a no-op.
                await asyncio.to_thread(self._connection.ready)
                settings = self._connection.settings
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
        call = calls.get_object(self.bucket, key, encryption, operation="stream")
        response = await calls.asend(await self._aclient(), call)
        total = response.get("ContentLength")
        reporter = reporter_for(progress, operation="stream", key=key, total=total)
        body = response["Body"]
        try:
            while True:
                with storage_errors("stream", key, encryption):
                    chunk = await body.read(chunk_size)
                if not chunk:
                    break
                if reporter is not None:
                    reporter.add(len(chunk))
                yield chunk
        finally:
            body.close()  # also on early exit: frees the connection
        if reporter is not None:
            reporter.finish()

    async def aput(self, key: str, data: bytes | BinaryIO, **options: Unpack[PutOptions]) -> str:
        """Upload ``data`` to ``key``; returns ``key``. Options and limits as in ``put``.

        Bytes up to the multipart threshold (or with a pinned ``ChecksumSHA256``)
        go in one PutObject; larger bodies and streams in parts.
        """
        request = self._connection.put_request(key, data, **options)
        client = await self._aclient()
        threshold = self._connection.config.multipart_threshold
        body = calls.single_put_body(data, request.args, threshold)
        raw = bytes(data) if isinstance(data, bytes | bytearray | memoryview) else None
        if body is not None:  # the one decision of both backends (calls.single_put_body)
            call = calls.put_object(self.bucket, key, body, request.args, request.encryption)
            await calls.asend(client, call)
        else:
            with storage_errors("put", key, request.encryption):
                await client.upload_fileobj(
                    io.BytesIO(raw) if raw is not None else data,
                    self.bucket,
                    key,
                    ExtraArgs=request.args,
                    Callback=request.reporter,
                    Config=self._connection.transfer,
                )
        request.finish()
        return key

    async def ahead(
        self, key: str, *, encryption: Encryption | None = None
    ) -> ObjectMetadata | None:
        """Metadata of ``key``; ``None`` when missing or hidden (404/403), as in ``head``."""
        client = await self._aclient()
        return await calls.asend(client, calls.head(self.bucket, key, encryption))

    async def aexists(self, key: str, *, encryption: Encryption | None = None) -> bool:
        """Whether ``key`` exists (403 counts as absent), as in ``exists``."""
        client = await self._aclient()
        return await calls.asend(client, calls.exists(self.bucket, key, encryption))

    async def adelete(self, key: str) -> None:
        """Delete ``key``."""
        client = await self._aclient()
        await calls.asend(client, calls.delete(self.bucket, key))

    async def alist(
        self, prefix: str = "", *, max_keys: int = 1000, continuation_token: str | None = None
    ) -> ListPage:
        """One ListObjectsV2 page (same contract as :meth:`S3StorageBackend.list`)."""
        call = calls.list_page(self.bucket, prefix, max_keys, continuation_token, op="alist")
        return await calls.asend(await self._aclient(), call)

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

    @property
    def public_url_base(self) -> str | None:
        """Base of public object URLs (the sync companion's; change it there)."""
        return self._sync.public_url_base

    async def aget_durable_url(self, key: str) -> str:
        return self._sync.get_durable_url(key)

    def get_durable_url(self, key: str) -> str:
        return self._sync.get_durable_url(key)

    def key_from_url(self, url: str) -> str | None:
        return self._sync.key_from_url(url)


__all__ = ["AsyncS3StorageBackend"]
