"""``S3StorageBackend``: genblaze-core's ``StorageBackend`` on boto3.

Works against AWS S3, Backblaze B2, Cloudflare R2, MinIO, SeaweedFS, Wasabi and
Ceph. The pieces live in small modules: client settings and progress in
``_backend_client``, error mapping in ``_backend_errors``, the bucket preflight
in ``preflight``, reads in ``_backend_reads``, URLs in ``_backend_urls``, bulk
deletes / lifecycle in ``_backend_bulk``, server-side copy in ``_backend_copy``;
this class owns construction, writes and the bucket settings, and wires the
rest into the public API.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from typing import Any, BinaryIO, cast

from genblaze_core.exceptions import StorageError
from genblaze_core.storage.base import ObjectLockConfig, StorageBackend
from genblaze_core.storage.config import StorageConfig
from genblaze_core.storage.types import (
    DeleteResult,
)

from genblaze_s3 import _backend_bulk as bulk
from genblaze_s3._backend_client import (
    ClientSettings,
    ProgressReporter,
    RetryMode,
    build_client,
    transfer_config,
)
from genblaze_s3._backend_copy import (
    DEFAULT_COPY_PART_SIZE,
    DEFAULT_COPY_THRESHOLD,
    multipart_copy,
)
from genblaze_s3._backend_errors import (
    install_log_redaction,
    to_storage_error,
)
from genblaze_s3._backend_reads import ProgressCallback, ReadOps
from genblaze_s3._backend_urls import DEFAULT_EXPIRES_IN, URLOps
from genblaze_s3.encryption import Encryption
from genblaze_s3.preflight import (
    B2,
    B2_DEFAULT_REGION,
    BucketPreflight,
    EndpointTemplate,
    RegionalService,
    endpoint_for,
    host_of,
    is_b2_host,
)

logger = logging.getLogger("genblaze_s3.backend")


# Keys of the SSE and Object Lock envelopes: mixing a value object with
# overlapping extra_args would silently produce a half-and-half envelope.
_SSE_KEYS = frozenset(
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
_LOCK_KEYS = frozenset({"ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus"})
_CHECKSUM_KEYS = frozenset(
    {"ChecksumAlgorithm", "ChecksumSHA256", "ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1"}
)

# Stores known to reject x-amz-checksum-sha256 (GCS's S3 interoperability API).
_NO_SHA256_HOSTS = ("storage.googleapis.com",)


def _remaining_size(data: bytes | bytearray | memoryview | BinaryIO) -> int | None:
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


def _regular_file_path(data: object) -> str | None:
    """Path of ``data`` when it is a binary file on disk opened at its start, else ``None``.

    s3transfer buffers every part of a file *object* in memory (up to one part
    per worker plus one), but streams parts of a file *path* straight from disk.
    Uploading an opened regular file by its path keeps a 1 GiB upload's peak RSS
    near the interpreter's own.
    """
    if not isinstance(data, io.BufferedReader | io.FileIO):
        return None
    name = getattr(data, "name", None)
    try:
        if not isinstance(name, str) or "r" not in data.mode or data.tell() != 0:
            return None
        return name if os.path.isfile(name) else None
    except (OSError, ValueError):
        return None


def _resolve_alias(name: str, value: str | None, alias: str, alias_value: str | None) -> str | None:
    """Accept either spelling of one credential; both at once is a caller bug."""
    if value is not None and alias_value is not None:
        raise TypeError(f"pass only one of {name}= and {alias}=: they name the same credential")
    return value if value is not None else alias_value


class S3StorageBackend(ReadOps, URLOps, StorageBackend):
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
    ) -> None:
        if not bucket:
            raise ValueError("S3StorageBackend needs a bucket name")
        key_id = _resolve_alias(
            "aws_access_key_id", aws_access_key_id, "access_key_id", access_key_id
        )
        secret = _resolve_alias(
            "aws_secret_access_key", aws_secret_access_key, "secret_access_key", secret_access_key
        )
        if regional_service is None and is_b2_host(host_of(endpoint_url)):
            regional_service = B2
        host = host_of(endpoint_url)
        if region is None and is_b2_host(host) and host.startswith("s3."):
            region = host.split(".")[1]  # s3.<region>.backblazeb2.com: B2 signs per region
        if region is None and endpoint_url:
            region = "us-east-1"  # what S3-compatible stores expect in the SigV4 scope
        install_log_redaction()
        self._bucket = bucket
        self.public_url_base: str | None = public_url_base.rstrip("/") if public_url_base else None
        self._config = config or StorageConfig()
        self._settings = ClientSettings(
            endpoint_url, region, key_id, secret, self._config, retry_mode
        )
        self._service = regional_service
        self._sha256 = sha256_checksums
        self._copy_threshold = copy_multipart_threshold
        self._copy_part_size = copy_part_size
        self._client = build_client(self._settings)
        self._transfer = transfer_config(self._config)
        self._preflight = BucketPreflight(
            bucket,
            head_bucket=lambda: self._client.head_bucket(Bucket=self._bucket),
            settings=lambda: self._settings,
            relocate=self._relocate,
            service=regional_service,
        )
        if preflight:
            self._preflight.ensure()
        if auto_lifecycle:
            try:
                self.ensure_lifecycle_defaults()
            except StorageError as exc:
                logger.warning("lifecycle defaults not applied to %s: %s", bucket, exc)

    # ------------------------------------------------------------------ construction

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
        from genblaze_s3.settings import load_b2_settings

        env = load_b2_settings()
        name = bucket or env.bucket
        if not name:
            raise ValueError("Backblaze B2 bucket missing: pass bucket= or set B2_BUCKET")
        key = key_id or (env.key_id.get_secret_value() if env.key_id else None)
        secret = app_key or (env.app_key.get_secret_value() if env.app_key else None)
        if not key or not secret:
            raise ValueError(
                "Backblaze B2 credentials missing: pass key_id= and app_key=, or set "
                "B2_KEY_ID and B2_APP_KEY (B2_APPLICATION_KEY_ID / B2_APPLICATION_KEY)"
            )
        if auto_lifecycle and not preflight:
            raise ValueError(
                "auto_lifecycle=True needs the network at construction; with preflight=False "
                "call backend.ensure_lifecycle_defaults() later instead"
            )
        chosen_region = region or env.region or B2_DEFAULT_REGION
        service = RegionalService(
            B2.name,
            endpoint_template or B2.endpoint_template,
            tuple(regions) if regions is not None else B2.regions,
        )
        return cls(
            name,
            endpoint_url=endpoint_for(service.endpoint_template, chosen_region),
            region=chosen_region,
            public_url_base=public_url_base,
            access_key_id=key,
            secret_access_key=secret,
            auto_lifecycle=auto_lifecycle,
            preflight=preflight,
            config=config,
            regional_service=service,
        )

    def _relocate(self, region: str) -> None:
        """Point the client at ``region`` (the preflight found the bucket there)."""
        endpoint = self._settings.endpoint_url
        if self._service is not None:
            endpoint = endpoint_for(self._service.endpoint_template, region)
        old = self._client
        self._settings = self._settings.with_endpoint(endpoint, region)
        self._client = build_client(self._settings)
        old.close()

    # ------------------------------------------------------------------ properties

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def endpoint_url(self) -> str | None:
        return self._settings.endpoint_url

    @property
    def region(self) -> str:
        return self._settings.region or str(self._client.meta.region_name or "us-east-1")

    @property
    def config(self) -> StorageConfig:
        return self._config

    @property
    def client(self) -> Any:
        """The boto3 S3 client (thread-safe). Re-read after a region correction."""
        return self._client

    @property
    def region_verified(self) -> bool:
        """True once the bucket preflight succeeded."""
        return self._preflight.verified

    @property
    def supports_sha256_checksums(self) -> bool:
        """Whether uploads send ``ChecksumAlgorithm=SHA256`` (integrity checked server-side)."""
        if self._sha256 is not None:
            return self._sha256
        host = host_of(self._settings.endpoint_url)
        return not any(host == h or host.endswith("." + h) for h in _NO_SHA256_HOSTS)

    def _ready(self) -> None:
        self._preflight.ensure()

    # ------------------------------------------------------------------ writes

    def _put_args(
        self,
        content_type: str | None,
        metadata: dict[str, str] | None,
        extra_args: dict[str, Any] | None,
        encryption: Encryption | None,
        object_lock: ObjectLockConfig | None,
    ) -> dict[str, Any]:
        extra = dict(extra_args or {})
        if encryption is not None and _SSE_KEYS & extra.keys():
            raise ValueError(
                f"encryption= conflicts with extra_args keys {sorted(_SSE_KEYS & extra.keys())}"
            )
        if object_lock is not None and _LOCK_KEYS & extra.keys():
            raise ValueError(
                f"object_lock= conflicts with extra_args keys {sorted(_LOCK_KEYS & extra.keys())}"
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
        if self.supports_sha256_checksums and not _CHECKSUM_KEYS & args.keys():
            args["ChecksumAlgorithm"] = "SHA256"
        return args

    def put(
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
        """Upload ``data`` (bytes or a binary file-like) to ``key``; returns ``key``.

        Above ``config.multipart_threshold`` (16 MiB) the upload is multipart:
        16 MiB parts, four in flight, each part retried on transient errors; a
        file-like source is read part by part, never whole (a file on disk is
        streamed by path, without buffering parts). ``progress``
        receives monotonic cumulative counts ending at the total, from any part
        thread. A pinned whole-object ``ChecksumSHA256`` in ``extra_args``
        forces a single PutObject (S3 only accepts it there).
        """
        args = self._put_args(content_type, metadata, extra_args, encryption, object_lock)
        reporter = (
            ProgressReporter(progress, operation="put", key=key, total=_remaining_size(data))
            if progress is not None
            else None
        )
        self._ready()
        try:
            path = _regular_file_path(data)
            if "ChecksumSHA256" in args:
                self._client.put_object(Bucket=self._bucket, Key=key, Body=data, **args)
            elif path is not None:
                self._client.upload_file(
                    path,
                    self._bucket,
                    key,
                    ExtraArgs=args,
                    Config=self._transfer,
                    Callback=reporter,
                )
                cast(BinaryIO, data).seek(
                    0, io.SEEK_END
                )  # consumed, as upload_fileobj would leave it
            else:
                body = (
                    io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
                )
                self._client.upload_fileobj(
                    body,
                    self._bucket,
                    key,
                    ExtraArgs=args,
                    Config=self._transfer,
                    Callback=reporter,
                )
        except Exception as exc:
            raise to_storage_error(exc, operation="put", key=key, encryption=encryption) from exc
        if reporter is not None:
            reporter.finish()
        return key

    def copy(self, src_key: str, dst_key: str, *, encryption: Encryption | None = None) -> None:
        """Server-side copy within the bucket; bytes never pass through this process.

        Sources above ``copy_multipart_threshold`` (5 GiB, CopyObject's limit)
        are copied as parallel UploadPartCopy parts, keeping content type and
        user metadata. ``encryption`` decrypts an SSE-C source and encrypts the
        destination the same way.
        """
        self._ready()
        try:
            read_args = encryption.to_read_args() if encryption is not None else {}
            head = self._client.head_object(Bucket=self._bucket, Key=src_key, **read_args)
            if int(head.get("ContentLength", 0)) > self._copy_threshold:
                multipart_copy(
                    self._client,
                    self._bucket,
                    src_key,
                    dst_key,
                    source_head=head,
                    part_size=self._copy_part_size,
                    encryption=encryption,
                )
                return
            copy_args = encryption.to_copy_args() if encryption is not None else {}
            self._client.copy_object(
                Bucket=self._bucket,
                Key=dst_key,
                CopySource={"Bucket": self._bucket, "Key": src_key},
                **copy_args,
            )
        except Exception as exc:
            raise to_storage_error(
                exc, operation="copy", key=src_key, encryption=encryption
            ) from exc

    def delete(self, key: str) -> None:
        """Delete ``key`` (a missing key is not an error, as in S3)."""
        self._ready()
        try:
            self._client.delete_object(Bucket=self._bucket, Key=key)
        except Exception as exc:
            raise to_storage_error(exc, operation="delete", key=key) from exc

    def delete_many(self, keys: Sequence[str], *, dry_run: bool = False) -> DeleteResult:
        """Delete ``keys`` in 1000-key DeleteObjects batches; failures are per key."""
        keys = [k for k in keys]
        if dry_run or not keys:
            return DeleteResult(deleted=tuple(keys), errors=(), dry_run=dry_run)
        self._ready()
        return bulk.delete_keys(self._client, self._bucket, keys)

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

    # ------------------------------------------------------------------ bucket settings

    def ensure_lifecycle_defaults(
        self,
        *,
        cancel_multipart_after_days: int = bulk.DEFAULT_ABORT_MULTIPART_DAYS,
        noncurrent_version_expire_days: int | None = bulk.DEFAULT_NONCURRENT_DAYS,
    ) -> list[dict[str, Any]]:
        """Add genblaze's lifecycle rules, keeping every rule the bucket already has.

        Rules: abort incomplete multipart uploads after 7 days; expire
        noncurrent versions after 30 days (``None`` keeps all versions).
        Idempotent. Returns the rules now on the bucket.
        """
        ours = bulk.default_lifecycle_rules(
            cancel_multipart_after_days, noncurrent_version_expire_days
        )
        self._ready()
        try:
            merged = bulk.merge_lifecycle_rules(
                bulk.read_lifecycle_rules(self._client, self._bucket), ours
            )
            self._client.put_bucket_lifecycle_configuration(
                Bucket=self._bucket, LifecycleConfiguration={"Rules": merged}
            )
        except Exception as exc:
            raise to_storage_error(exc, operation="ensure_lifecycle_defaults") from exc
        logger.info("lifecycle rules on %s: %s", self._bucket, [r.get("ID") for r in merged])
        return merged

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Release pooled connections. Idempotent; a later call simply reconnects."""
        self._client.close()

    def __enter__(self) -> S3StorageBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self._settings.endpoint_url or "aws"
        return (
            f"S3StorageBackend(bucket={self._bucket!r}, endpoint={where!r}, region={self.region!r})"
        )


__all__ = ["DEFAULT_EXPIRES_IN", "ProgressCallback", "S3StorageBackend"]
