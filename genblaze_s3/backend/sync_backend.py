"""``S3StorageBackend``: genblaze-core's ``StorageBackend`` on boto3.

Works against AWS S3, Backblaze B2, Cloudflare R2, MinIO, SeaweedFS, Wasabi and
Ceph. This class is the public face; the work lives in small modules of this
package: the bucket's client, settings and preflight in ``connection``, the
requests and their answers (shared with the async backend) in ``calls``,
uploads in ``uploads``, URLs in ``urls``, bulk deletes and lifecycle rules in
``bulk``, server-side copy in ``server_copy``, error mapping in ``errors``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, Unpack

from genblaze_core.exceptions import StorageError
from genblaze_core.storage.base import StorageBackend
from genblaze_core.storage.config import StorageConfig
from genblaze_core.storage.types import DeleteResult, ListPage, ObjectMetadata
from genblaze_core.storage.url_policy import URLPolicy

from genblaze_s3.backend import bulk, calls
from genblaze_s3.backend.backblaze import B2Target, b2_service
from genblaze_s3.backend.calls import PutOptions
from genblaze_s3.backend.client import ClientSettings, RetryMode
from genblaze_s3.backend.connection import BucketConnection
from genblaze_s3.backend.encryption import Encryption
from genblaze_s3.backend.errors import install_log_redaction, storage_errors
from genblaze_s3.backend.presigned import PresignedURL
from genblaze_s3.backend.progress import ProgressCallback, ProgressReporter, reporter_for
from genblaze_s3.backend.regions import (
    EndpointTemplate,
    RegionalService,
    endpoint_for,
    service_for,
    signing_region,
)
from genblaze_s3.backend.server_copy import (
    DEFAULT_COPY_PART_SIZE,
    DEFAULT_COPY_THRESHOLD,
    copy_within_bucket,
)
from genblaze_s3.backend.uploads import upload
from genblaze_s3.backend.urls import DEFAULT_EXPIRES_IN, UNSET, BucketURLs

logger = logging.getLogger("genblaze_s3.backend")

_GET_PROGRESS_CHUNK = 1024 * 1024  # get(progress=...) reads and reports in 1 MiB steps


def _resolve_alias(name: str, value: str | None, alias: str, alias_value: str | None) -> str | None:
    """Accept either spelling of one credential; both at once is a caller bug."""
    if value is not None and alias_value is not None:
        raise TypeError(f"pass only one of {name}= and {alias}=: they name the same credential")
    return value if value is not None else alias_value


class S3StorageBackend(StorageBackend):
    """S3-compatible object storage for genblaze pipelines.

    Args:
        bucket: bucket name.
        endpoint_url: S3 endpoint for non-AWS stores (B2, R2, MinIO...); ``None`` = AWS.
        region: signing region; on AWS ``None`` uses boto3's configuration.
        public_url_base: base of public, never-expiring object URLs (a CDN or
            B2 friendly URL). ``get_url`` / ``get_durable_url`` use it when set.
        access_key_id / aws_access_key_id, secret_access_key / aws_secret_access_key:
            credentials (either spelling; both spellings at once raise ``TypeError``).
            Omitted: boto3's default credential chain.
        auto_lifecycle: apply :meth:`ensure_lifecycle_defaults` at construction
            (merged with the bucket's rules; a failure is logged, not raised).
        preflight: verify the bucket with one HeadBucket now. Otherwise the same
            check runs lazily before the first network operation.
        config: genblaze-core ``StorageConfig`` (pool size, timeouts, multipart
            threshold / part size, retries, user-agent suffix).
        retry_mode: botocore retry mode, ``"standard"`` or ``"adaptive"``.
        sha256_checksums: send ``ChecksumAlgorithm=SHA256`` on uploads;
            ``None`` = on unless the store is known not to support it.
        copy_multipart_threshold / copy_part_size: sources larger than the
            threshold are copied with UploadPartCopy parts of this size.
        regional_service: set for providers whose endpoint derives from the
            region (``for_backblaze`` sets B2); enables region auto-correct and
            the B2 403 region probe.
        share_client: use this process's one boto3 client (and connection pool)
            for these settings, shared with every other backend built with the same
            endpoint, region, credentials and config and ``share_client=True``; for
            services that write to many buckets (the ingestion workers do). A
            shared client lives as long as the process.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        public_url_base: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        auto_lifecycle: bool = False,
        preflight: bool = False,
        config: StorageConfig | None = None,
        retry_mode: RetryMode = "standard",
        sha256_checksums: bool | None = None,
        copy_multipart_threshold: int = DEFAULT_COPY_THRESHOLD,
        copy_part_size: int = DEFAULT_COPY_PART_SIZE,
        regional_service: RegionalService | None = None,
        share_client: bool = False,
    ) -> None:
        if not bucket:
            raise ValueError("S3StorageBackend needs a bucket name")
        key_id = _resolve_alias(
            "aws_access_key_id", aws_access_key_id, "access_key_id", access_key_id
        )
        secret = _resolve_alias(
            "aws_secret_access_key", aws_secret_access_key, "secret_access_key", secret_access_key
        )
        install_log_redaction()
        settings = ClientSettings(
            endpoint_url,
            signing_region(endpoint_url, region),
            key_id,
            secret,
            config or StorageConfig(),
            retry_mode,
        )
        self._connection = BucketConnection(
            bucket,
            settings,
            service=service_for(endpoint_url, regional_service),
            sha256_checksums=sha256_checksums,
            share_client=share_client,
        )
        self._urls = BucketURLs(self._connection, public_url_base)
        self._copy_threshold = copy_multipart_threshold
        self._copy_part_size = copy_part_size
        if preflight:
            self._connection.ready()
        if auto_lifecycle:
            try:
                self.ensure_lifecycle_defaults()
            except StorageError as exc:
                logger.warning("lifecycle defaults not applied to %s: %s", bucket, exc)

    @classmethod
    def for_backblaze(
        cls,
        bucket: str | None = None,
        *,
        region: str | None = None,
        key_id: str | None = None,
        app_key: str | None = None,
        public_url_base: str | None = None,
        auto_lifecycle: bool = False,
        preflight: bool = True,
        config: StorageConfig | None = None,
        endpoint_template: EndpointTemplate | None = None,
        regions: Sequence[str] | None = None,
    ) -> S3StorageBackend:
        """A backend for a Backblaze B2 bucket, configured from arguments or the environment.

        Environment: ``B2_BUCKET`` (or ``B2_BUCKET_NAME``), ``B2_REGION`` (default
        ``us-west-004``), ``B2_KEY_ID`` (or ``B2_APPLICATION_KEY_ID``),
        ``B2_APP_KEY`` (or ``B2_APPLICATION_KEY``). Missing bucket or
        credentials raise ``ValueError`` here rather than a cryptic error at the
        first upload. ``preflight=False`` makes no network call at all;
        ``endpoint_template`` / ``regions`` exist so tests can point the region
        logic at local servers.
        """
        target = B2Target.resolve(bucket=bucket, region=region, key_id=key_id, app_key=app_key)
        if auto_lifecycle and not preflight:
            raise ValueError(
                "auto_lifecycle=True needs the network at construction; with preflight=False "
                "call backend.ensure_lifecycle_defaults() later instead"
            )
        service = b2_service(endpoint_template, regions)
        return cls(
            target.bucket,
            endpoint_url=endpoint_for(service.endpoint_template, target.region),
            region=target.region,
            public_url_base=public_url_base,
            access_key_id=target.key_id,
            secret_access_key=target.app_key,
            auto_lifecycle=auto_lifecycle,
            preflight=preflight,
            config=config,
            regional_service=service,
        )

    # ------------------------------------------------------------------ properties

    @property
    def connection(self) -> BucketConnection:
        """The bucket's client, settings and preflight (shared with ``AsyncS3StorageBackend``)."""
        return self._connection

    @property
    def bucket(self) -> str:
        return self._connection.bucket

    @property
    def endpoint_url(self) -> str | None:
        return self._connection.settings.endpoint_url

    @property
    def region(self) -> str:
        return self._connection.region

    @property
    def config(self) -> StorageConfig:
        return self._connection.config

    @property
    def client(self) -> Any:
        """The boto3 S3 client (thread-safe). Re-read after a region correction."""
        return self._connection.client

    @property
    def region_verified(self) -> bool:
        """True once the bucket preflight succeeded."""
        return self._connection.verified

    @property
    def supports_sha256_checksums(self) -> bool:
        """Whether uploads send ``ChecksumAlgorithm=SHA256`` (integrity checked server-side)."""
        return self._connection.supports_sha256_checksums

    @property
    def public_url_base(self) -> str | None:
        """Base of public object URLs (no trailing slash), or ``None``."""
        return self._urls.public_url_base

    @public_url_base.setter
    def public_url_base(self, value: str | None) -> None:
        self._urls.public_url_base = value.rstrip("/") if value else None

    # ------------------------------------------------------------------ reads

    def get(
        self,
        key: str,
        *,
        encryption: Encryption | None = None,
        progress: ProgressCallback | None = None,
    ) -> bytes:
        """Download ``key`` whole (use :meth:`stream` for objects that should not sit in RAM)."""
        self._connection.ready()
        call = calls.get_object(self.bucket, key, encryption, operation="get")
        response = calls.send(self.client, call)
        total = response.get("ContentLength")
        reporter = reporter_for(progress, operation="get", key=key, total=total)
        with storage_errors("get", key, encryption):
            return _read_whole(response["Body"], reporter)

    def get_range(
        self, key: str, *, offset: int, length: int, encryption: Encryption | None = None
    ) -> bytes:
        """``length`` bytes from ``offset`` via an HTTP Range request (``0`` = no request)."""
        byte_range = calls.byte_range(offset, length)
        if byte_range is None:
            return b""
        self._connection.ready()
        call = calls.get_object(
            self.bucket, key, encryption, operation="get_range", byte_range=byte_range
        )
        response = calls.send(self.client, call)
        with storage_errors("get_range", key, encryption):
            return bytes(response["Body"].read())

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
        self._connection.ready()
        response = calls.send(
            self.client, calls.get_object(self.bucket, key, encryption, operation="stream")
        )
        total = response.get("ContentLength")
        reporter = reporter_for(progress, operation="stream", key=key, total=total)
        return _iter_body(response["Body"], chunk_size, reporter, key, encryption)

    def exists(self, key: str, *, encryption: Encryption | None = None) -> bool:
        """Whether ``key`` exists (403 counts as absent; see :func:`calls.exists`)."""
        self._connection.ready()
        return calls.send(self.client, calls.exists(self.bucket, key, encryption))

    def head(self, key: str, *, encryption: Encryption | None = None) -> ObjectMetadata | None:
        """Metadata of ``key``, or ``None`` when missing (404) or hidden (403)."""
        self._connection.ready()
        return calls.send(self.client, calls.head(self.bucket, key, encryption))

    def list(
        self, prefix: str = "", *, max_keys: int = 1000, continuation_token: str | None = None
    ) -> ListPage:
        """One ListObjectsV2 page; pass ``page.next_token`` back for the next one."""
        call = calls.list_page(self.bucket, prefix, max_keys, continuation_token, op="list")
        self._connection.ready()
        return calls.send(self.client, call)

    # ------------------------------------------------------------------ writes

    def put(self, key: str, data: bytes | BinaryIO, **options: Unpack[PutOptions]) -> str:
        """Upload ``data`` (bytes or a binary file-like) to ``key``; returns ``key``.

        Options (:class:`~genblaze_s3.backend.calls.PutOptions`, keyword only):
        ``content_type``, ``metadata``, ``extra_args``, ``encryption``,
        ``object_lock``, ``progress``.

        Above ``config.multipart_threshold`` (16 MiB) the upload is multipart:
        16 MiB parts, four in flight, each part retried on transient errors; a
        file-like source is read part by part, never whole (a file on disk is
        streamed by path, without buffering parts). ``progress``
        receives monotonic cumulative counts ending at the total, from any part
        thread. A pinned whole-object ``ChecksumSHA256`` in ``extra_args``
        forces a single PutObject (S3 only accepts it there).
        """
        request = self._connection.put_request(key, data, **options)
        self._connection.ready()
        with storage_errors("put", key, request.encryption):
            upload(self._connection, request, data)
        request.finish()
        return key

    def copy(self, src_key: str, dst_key: str, *, encryption: Encryption | None = None) -> None:
        """Server-side copy within the bucket; bytes never pass through this process.

        Sources above ``copy_multipart_threshold`` (5 GiB, CopyObject's limit)
        are copied as parallel UploadPartCopy parts, keeping content type and
        user metadata. ``encryption`` decrypts an SSE-C source and encrypts the
        destination the same way.
        """
        self._connection.ready()
        with storage_errors("copy", src_key, encryption):
            copy_within_bucket(
                self.client,
                self.bucket,
                src_key,
                dst_key,
                encryption=encryption,
                threshold=self._copy_threshold,
                part_size=self._copy_part_size,
            )

    def delete(self, key: str) -> None:
        """Delete ``key`` (a missing key is not an error, as in S3)."""
        self._connection.ready()
        calls.send(self.client, calls.delete(self.bucket, key))

    def delete_many(self, keys: Sequence[str], *, dry_run: bool = False) -> DeleteResult:
        """Delete ``keys`` in 1000-key DeleteObjects batches; failures are per key."""
        keys = [k for k in keys]
        if dry_run or not keys:
            return DeleteResult(deleted=tuple(keys), errors=(), dry_run=dry_run)
        self._connection.ready()
        return bulk.delete_keys(self.client, self.bucket, keys)

    def delete_prefix(self, prefix: str, *, dry_run: bool = True) -> DeleteResult:
        """Delete everything under ``prefix`` page by page (dry run unless told otherwise).

        An empty or blank prefix is refused: it would match the whole bucket.
        A listing failure mid-walk returns the partial result with a
        ``list_failed`` error instead of losing track of what was deleted.
        """
        if not prefix or not prefix.strip():
            raise ValueError(
                "delete_prefix refuses an empty prefix (it would match the whole bucket); "
                "list keys yourself and pass them to delete_many() if that is intended"
            )
        return bulk.delete_pages(
            prefix,
            list_page=lambda token: self.list(prefix, continuation_token=token),
            delete=lambda keys: self.delete_many(keys),
            dry_run=dry_run,
        )

    def ensure_lifecycle_defaults(
        self,
        *,
        cancel_multipart_after_days: int = bulk.DEFAULT_ABORT_MULTIPART_DAYS,
        noncurrent_version_expire_days: int | None = bulk.DEFAULT_NONCURRENT_DAYS,
    ) -> bulk.LifecycleRules:
        """Add genblaze's lifecycle rules, keeping every rule the bucket already has.

        Rules: abort incomplete multipart uploads after 7 days; expire
        noncurrent versions after 30 days (``None`` keeps all versions).
        Idempotent. Returns the rules now on the bucket.
        """
        ours = bulk.default_lifecycle_rules(
            cancel_multipart_after_days, noncurrent_version_expire_days
        )
        self._connection.ready()
        with storage_errors("ensure_lifecycle_defaults"):
            merged = bulk.ensure_lifecycle_rules(self.client, self.bucket, ours)
        logger.info("lifecycle rules on %s: %s", self.bucket, [r.get("ID") for r in merged])
        return merged

    # ------------------------------------------------------------------ URLs

    def get_url(
        self, key: str, *, expires_in: int = UNSET, policy: URLPolicy = URLPolicy.AUTO
    ) -> str:
        """A URL to hand to a client right now; never persist it (see :meth:`get_durable_url`).

        ``AUTO``: public URL when ``public_url_base`` is set, else presigned.
        ``PUBLIC``: public URL; ``URLPolicyError`` without ``public_url_base`` or
        with an explicit ``expires_in`` (public URLs do not expire).
        ``PRESIGNED``: always a SigV4 URL honouring ``expires_in`` (default 3600 s).
        """
        return self._urls.get_url(key, expires_in=expires_in, policy=policy)

    def presigned_get(self, key: str, *, expires_in: int = DEFAULT_EXPIRES_IN) -> PresignedURL:
        """A SigV4 GET URL for ``key``; its repr/str redact signature and credential."""
        return self._urls.presigned_get(key, expires_in=expires_in)

    def presigned_put(
        self, key: str, *, expires_in: int = DEFAULT_EXPIRES_IN, content_type: str | None = None
    ) -> PresignedURL:
        """A SigV4 PUT URL; with ``content_type`` the upload must send that exact header."""
        return self._urls.presigned_put(key, expires_in=expires_in, content_type=content_type)

    def presigned_get_url(self, key: str, *, expires_in: int = DEFAULT_EXPIRES_IN) -> str:
        """The live presigned GET URL as ``str`` (for the point where it leaves the process)."""
        return self._urls.presigned_get(key, expires_in=expires_in).url

    def presigned_put_url(
        self, key: str, *, expires_in: int = DEFAULT_EXPIRES_IN, content_type: str | None = None
    ) -> str:
        """The live presigned PUT URL as ``str``."""
        return self._urls.presigned_put(key, expires_in=expires_in, content_type=content_type).url

    def get_durable_url(self, key: str) -> str:
        """A credential-free URL safe to persist: public base, else path-style endpoint URL.

        Pure string work: no request is made.
        """
        return self._urls.get_durable_url(key)

    def key_from_url(self, url: str) -> str | None:
        """Inverse of :meth:`get_durable_url`; ``None`` for a URL of another bucket/host.

        Also recognises a B2 URL of this bucket minted for another B2 region
        (B2 bucket names are global). No network.
        """
        return self._urls.key_from_url(url)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Release pooled connections. Idempotent; a later call simply reconnects."""
        self._connection.close()

    def __enter__(self) -> S3StorageBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.endpoint_url or "aws"
        return (
            f"S3StorageBackend(bucket={self.bucket!r}, endpoint={where!r}, region={self.region!r})"
        )


def _read_whole(body: Any, reporter: ProgressReporter | None) -> bytes:
    """A GetObject body as bytes, reporting progress per 1 MiB when asked."""
    if reporter is None:
        return bytes(body.read())
    buf = bytearray()
    for chunk in iter(lambda: body.read(_GET_PROGRESS_CHUNK), b""):
        buf += chunk
        reporter.add(len(chunk))
    reporter.finish(len(buf))
    return bytes(buf)


def _iter_body(
    body: Any,
    chunk_size: int,
    reporter: ProgressReporter | None,
    key: str,
    encryption: Encryption | None,
) -> Iterator[bytes]:
    """The chunks of a GetObject body; closing the iterator early releases the connection."""
    try:
        while True:
            with storage_errors("stream", key, encryption):
                chunk = body.read(chunk_size)
            if not chunk:
                break
            if reporter is not None:
                reporter.add(len(chunk))
            yield chunk
        if reporter is not None:
            reporter.finish()
    finally:
        body.close()


__all__ = ["DEFAULT_EXPIRES_IN", "ProgressCallback", "S3StorageBackend"]
