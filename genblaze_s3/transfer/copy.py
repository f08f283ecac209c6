"""copy_url(): a source URL into the bucket -- streamed, SHA-256'd, multipart, resumable.

Three paths, chosen by what is known before the body arrives:

1. **Key known** (explicit key, HIERARCHICAL, or CAS with ``expected_sha256``):
   download and upload are pipelined straight to the final key; the object only
   appears at CompleteMultipartUpload, after the hash was verified.
2. **CAS, hash unknown**: the body is spooled to a temp file while hashed (the
   download is ~7x faster than SeaweedFS ingest, so this costs ~1/7 extra),
   then uploaded to the now-known key. Measured against staging key + server-side
   copy (see bench/results/copy.md): the copy costs seconds per GiB on
   SeaweedFS, the spool a fraction. Nothing is ever written under a staging key.
3. **Small** (body < one part): one PutObject from memory.

Keys are genblaze-core's own (``_build_key`` / ``_guess_extension`` /
``_cache_control_for``), so a copy lands exactly where ``ObjectStorageSink`` puts it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import IO, Any, cast

from genblaze_core.storage.base import KeyStrategy
from genblaze_core.storage.key_builder import KeyBuilder
from genblaze_core.storage.transfer import _build_key, _cache_control_for, _guess_extension

from genblaze_s3.transfer.checkpoint import CheckpointStore, SourceValidators
from genblaze_s3.transfer.config import CopyConfig, FetchPolicy
from genblaze_s3.transfer.errors import (
    Canceled,
    ChecksumMismatch,
    TransferError,
    map_storage_error,
    s3_error_code,
)
from genblaze_s3.transfer.fetch import Fetcher, SourceStream
from genblaze_s3.transfer.multipart import (
    MultipartUpload,
    call_with_retries,
    choose_part_size,
    sha256_b64,
)
from genblaze_s3.transfer.pipeline import upload_parts
from genblaze_s3.transfer.urlguard import Resolver, validate_url

logger = logging.getLogger("genblaze_s3.transfer")


@dataclass(frozen=True)
class Destination:
    """Where a copy lands: an explicit key, or genblaze-core's key strategy inputs."""

    key_strategy: KeyStrategy = KeyStrategy.CONTENT_ADDRESSABLE
    prefix: str = "genblaze"
    key: str | None = None
    asset_id: str | None = None
    run_id: str | None = None
    date_str: str | None = None
    tenant: str | None = None
    cache_control: str | None = None

    def effective_cache_control(self) -> str:
        return self.cache_control or _cache_control_for(self.key_strategy)

    def build_key(self, url: str, content_type: str | None, sha256: str | None) -> str | None:
        """The final key, or None while it still depends on the unknown hash."""
        if self.key:
            return self.key
        is_cas = self.key_strategy == KeyStrategy.CONTENT_ADDRESSABLE
        if is_cas and not sha256:
            return None
        if not is_cas and not self.asset_id:
            raise ValueError("HIERARCHICAL destinations need an asset_id")
        kb = KeyBuilder.from_prefix(self.prefix).append("assets" if is_cas else "runs")
        asset = SimpleNamespace(asset_id=self.asset_id or "")
        return _build_key(
            self.key_strategy,
            kb,
            cast(Any, asset),
            sha256 or "",
            _guess_extension(url, content_type),
            tenant=self.tenant,
            date_str=self.date_str,
            run_id=self.run_id,
        )


@dataclass(frozen=True)
class CopyProgress:
    bytes_done: int
    bytes_total: int | None


@dataclass(frozen=True)
class CopyResult:
    key: str
    sha256: str
    size: int
    content_type: str | None
    etag: str | None
    deduplicated: bool
    bytes_uploaded: int
    parts_uploaded: int
    url: str | None = None


ProgressCallback = Callable[[CopyProgress], None]


class _Progress:
    """Calls the callback at most every ``interval`` seconds, plus once at the end."""

    def __init__(self, cb: ProgressCallback | None, interval: float, total: int | None) -> None:
        self._cb = cb
        self._interval = interval
        self.total = total
        self.done = 0
        self._last = 0.0

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self._cb is not None and now - self._last >= self._interval:
            self._last = now
            self._cb(CopyProgress(self.done, self.total))

    def finish(self) -> None:
        if self._cb is not None:
            self._cb(CopyProgress(self.done, self.total if self.total is not None else self.done))


@dataclass
class _Job:
    """Everything one copy needs, passed around instead of a dozen arguments."""

    backend: Any
    url: str
    dest: Destination
    config: CopyConfig
    policy: FetchPolicy
    store: CheckpointStore | None
    checkpoint_id: str | None
    checksums: bool
    should_cancel: Callable[[], bool]
    progress: _Progress
    expected_sha256: str | None

    @property
    def client(self) -> Any:
        return self.backend.client

    @property
    def bucket(self) -> str:
        return str(self.backend.bucket)

    def extra(self, content_type: str | None) -> dict[str, Any]:
        extra: dict[str, Any] = {"CacheControl": self.dest.effective_cache_control()}
        if content_type:
            extra["ContentType"] = content_type
        return extra

    def head(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(
                call_with_retries(
                    lambda: self.client.head_object(Bucket=self.bucket, Key=key),
                    what="HeadObject",
                    config=self.config,
                )
            )
        except TransferError as exc:
            if s3_error_code(exc.__cause__) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def check_cancel(self) -> None:
        if self.should_cancel():
            raise Canceled("copy canceled by the caller")


def _durable_url(backend: Any, key: str) -> str | None:
    fn = getattr(backend, "get_durable_url", None)
    if fn is None:
        return None
    try:
        return str(fn(key))
    except Exception:
        return None


def _dedup_result(job: _Job, key: str, head: dict[str, Any], sha256: str) -> CopyResult:
    return CopyResult(
        key=key,
        sha256=sha256,
        size=int(head.get("ContentLength", 0)),
        content_type=head.get("ContentType"),
        etag=head.get("ETag"),
        deduplicated=True,
        bytes_uploaded=0,
        parts_uploaded=0,
        url=_durable_url(job.backend, key),
    )


def copy_url(
    backend: Any,
    url: str,
    dest: Destination,
    *,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    media_type: str | None = None,
    progress: ProgressCallback | None = None,
    checkpoint_store: CheckpointStore | None = None,
    checkpoint_id: str | None = None,
    policy: FetchPolicy | None = None,
    config: CopyConfig | None = None,
    should_cancel: Callable[[], bool] | None = None,
    resolver: Resolver | None = None,
) -> CopyResult:
    """Copy ``url`` into ``backend.bucket`` at the destination key; see the module doc.

    Raises a :class:`TransferError` subclass (``.code``, ``.retryable``). On a
    retryable failure with a checkpoint store, the multipart upload is kept for
    the next attempt; otherwise it is aborted. Nothing partial is ever visible at
    the final key.
    """
    policy = policy or FetchPolicy()
    config = config or CopyConfig()
    validate_url(url, policy)
    if expected_sha256 is not None:
        expected_sha256 = expected_sha256.lower()
    job = _Job(
        backend=backend,
        url=url,
        dest=dest,
        config=config,
        policy=policy,
        store=checkpoint_store if checkpoint_id else None,
        checkpoint_id=checkpoint_id,
        checksums=config.use_sha256_checksums
        and bool(getattr(backend, "supports_sha256_checksums", False)),
        should_cancel=should_cancel or (lambda: False),
        progress=_Progress(progress, config.progress_interval, expected_size),
        expected_sha256=expected_sha256,
    )
    is_cas = dest.key_strategy == KeyStrategy.CONTENT_ADDRESSABLE and not dest.key
    # CAS with a known hash: if the object exists, skip the download entirely.
    if is_cas and expected_sha256 and (media_type or _guess_extension(url, None)):
        key = dest.build_key(url, media_type, expected_sha256)
        head = job.head(key) if key else None
        if key and head is not None:
            job.progress.finish()
            return _dedup_result(job, key, head, expected_sha256)
    job.check_cancel()
    with Fetcher(policy, config, resolver=resolver) as fetcher, fetcher.open(url) as src:
        job.progress.total = src.length if src.length is not None else expected_size
        if expected_size is not None and src.length is not None and src.length != expected_size:
            raise ChecksumMismatch(f"source is {src.length} bytes, expected {expected_size}")
        content_type = src.content_type or media_type
        key = dest.build_key(url, src.content_type or media_type, expected_sha256)
        if key is not None and is_cas:
            head = job.head(key)
            if head is not None:
                job.progress.finish()
                return _dedup_result(job, key, head, cast(str, expected_sha256))
        if key is not None:
            result = _copy_to_known_key(job, src, key, content_type)
        else:
            result = _copy_spooled(job, src, content_type)
    job.progress.finish()
    return result


def _verify(job: _Job, sha256: str, size: int) -> None:
    if job.expected_sha256 is not None and sha256 != job.expected_sha256:
        raise ChecksumMismatch("SHA-256 of the source differs from the expected one")


def _put_small(
    job: _Job, key: str, data: memoryview, content_type: str | None, sha256: str
) -> CopyResult:
    params: dict[str, Any] = {
        "Bucket": job.bucket,
        "Key": key,
        "Body": bytes(data),
        **job.extra(content_type),
    }
    if job.checksums:
        params["ChecksumSHA256"] = sha256_b64(data)
    resp = call_with_retries(lambda: job.client.put_object(**params), what="PutObject",
                             config=job.config)
    return CopyResult(key, sha256, len(data), content_type, resp.get("ETag"), False,
                      len(data), 1, _durable_url(job.backend, key))


def _start_or_resume(
    job: _Job, key: str, part_size: int, source: SourceValidators, content_type: str | None
) -> MultipartUpload:
    """Resume the checkpointed upload if it is for this key and this source; else start anew.

    A checkpoint for a changed source (validators differ) is aborted and
    cleared first: restarting cleanly beats mixing two versions' bytes.
    """
    common = {"config": job.config, "store": job.store, "checkpoint_id": job.checkpoint_id}
    if job.store is not None and job.checkpoint_id is not None:
        cp = job.store.load(job.checkpoint_id)
        if cp is not None:
            same = (cp.bucket == job.bucket and cp.key == key and cp.part_size == part_size
                    and cp.checksum_sha256 == job.checksums and cp.source.matches(source))
            if same:
                upload = MultipartUpload.resume(job.client, cp, **common)  # type: ignore[arg-type]
                if upload is not None:
                    logger.info("resuming %s with %d parts", key, len(upload.checkpoint.parts))
                    return upload
            else:
                logger.info("checkpoint for %s is stale (source or key changed); restarting", key)
                MultipartUpload(job.client, cp, **common).abort()  # type: ignore[arg-type]
            job.store.clear(job.checkpoint_id)
    return MultipartUpload.create(
        job.client, bucket=job.bucket, key=key, part_size=part_size, source=source,
        extra=job.extra(content_type), checksum_sha256=job.checksums, **common,  # type: ignore[arg-type]
    )


def _multipart(
    job: _Job,
    key: str,
    read_part: Callable[[bytearray], int],
    first: bytearray | None,
    first_len: int,
    part_size: int,
    source: SourceValidators,
    content_type: str | None,
    hasher: Any | None,
    known_sha256: str | None,
) -> CopyResult:
    upload = _start_or_resume(job, key, part_size, source, content_type)
    size = 0

    def on_part(view: memoryview) -> None:
        nonlocal size
        size += len(view)
        if hasher is not None:
            hasher.update(view)
            job.progress.add(len(view))

    try:
        n_parts = upload_parts(
            upload, read_part, part_size=part_size, concurrency=job.config.concurrency,
            first=first, first_len=first_len, on_part=on_part, should_cancel=job.should_cancel,
        )
        sha256 = known_sha256 or hasher.hexdigest()
        _verify(job, sha256, size)
        job.check_cancel()
        resp = upload.complete(n_parts)
    except BaseException as exc:
        keep = (isinstance(exc, TransferError) and exc.retryable and job.store is not None)
        if not keep:
            upload.abort()
        if isinstance(exc, TransferError) or not isinstance(exc, Exception):
            raise
        raise map_storage_error(exc, "multipart upload") from exc
    if job.store is not None and job.checkpoint_id is not None:
        job.store.clear(job.checkpoint_id)
    return CopyResult(key, sha256, size, content_type, resp.get("ETag"), False,
                      upload.bytes_uploaded, upload.parts_uploaded, _durable_url(job.backend, key))


def _copy_to_known_key(
    job: _Job, src: SourceStream, key: str, content_type: str | None
) -> CopyResult:
    part_size = choose_part_size(src.length, minimum=job.config.part_size,
                                 fallback_max=job.policy.max_source_bytes)
    hasher = hashlib.sha256()
    first = bytearray(part_size if src.length is None else min(part_size, src.length))
    first_len = src.read_into(first)
    resumable = job.store is not None and job.store.load(cast(str, job.checkpoint_id)) is not None
    if first_len < part_size and not resumable:
        view = memoryview(first)[:first_len]
        hasher.update(view)
        job.progress.add(first_len)
        sha256 = hasher.hexdigest()
        _verify(job, sha256, first_len)
        job.check_cancel()
        return _put_small(job, key, view, content_type, sha256)
    return _multipart(job, key, src.read_into, first, first_len, part_size, src.validators,
                      content_type, hasher, None)


def _copy_spooled(job: _Job, src: SourceStream, content_type: str | None) -> CopyResult:
    """CAS with unknown hash: hash while spooling to disk, then upload to the known key."""
    part_size = choose_part_size(src.length, minimum=job.config.part_size,
                                 fallback_max=job.policy.max_source_bytes)
    hasher = hashlib.sha256()
    first = bytearray(part_size if src.length is None else min(part_size, src.length))
    first_len = src.read_into(first)
    hasher.update(memoryview(first)[:first_len])
    job.progress.add(first_len)
    if first_len < part_size:
        sha256 = hasher.hexdigest()
        _verify(job, sha256, first_len)
        key = cast(str, job.dest.build_key(job.url, src.content_type or content_type, sha256))
        head = job.head(key)
        if head is not None:
            return _dedup_result(job, key, head, sha256)
        job.check_cancel()
        return _put_small(job, key, memoryview(first)[:first_len], content_type, sha256)
    fd, path = tempfile.mkstemp(prefix="genblaze-spool-", dir=job.config.spool_dir)
    try:
        with os.fdopen(fd, "w+b", buffering=0) as f:
            f.write(memoryview(first)[:first_len])
            del first
            size = first_len
            buf = bytearray(min(part_size, 8 * 1024 * 1024))
            while True:
                n = src.read_into(buf)
                if n == 0:
                    break
                view = memoryview(buf)[:n]
                hasher.update(view)
                f.write(view)
                size += n
                job.progress.add(n)
                job.check_cancel()
            sha256 = hasher.hexdigest()
            _verify(job, sha256, size)
            key = cast(str, job.dest.build_key(job.url, src.content_type or content_type, sha256))
            head = job.head(key)
            if head is not None:
                return _dedup_result(job, key, head, sha256)
            f.seek(0)
            file = cast(IO[bytes], f)
            return _multipart(job, key, lambda b: file.readinto(b) or 0, None, 0,
                              part_size, src.validators, content_type, None, sha256)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
