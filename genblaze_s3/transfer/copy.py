"""copy_url(): a source URL into the bucket -- streamed, SHA-256'd, multipart, resumable.

Three paths, chosen by what is known before the body arrives:

1. **Key known** (explicit key, HIERARCHICAL, or CAS with ``expected_sha256``):
   download and upload are pipelined straight to the final key; the object only
   appears at CompleteMultipartUpload, after the hash was verified.
2. **CAS, hash unknown**: the key exists only after the last byte is hashed.
   ``cas_mode="spool"`` hashes while writing an anonymous temp file, then
   uploads it to the now-known key; ``cas_mode="refetch"`` hashes a first
   download and streams a second one to the key; ``"auto"`` (default) refetches
   sources that state a length and a validator and spools the rest. Measured
   against staging key + server-side copy (bench/results/copy.md): SeaweedFS
   copies 1 GiB in 1.6-4.9 s, so staging ties with refetch at best, while
   writing every byte twice into the store and leaving a staging object behind
   if the worker dies; spool and refetch never write anything but the final key.
3. **Small** (body < one part): one PutObject from memory.

Keys are genblaze-core's own (``_build_key`` / ``_guess_extension`` /
``_cache_control_for``), so a copy lands exactly where ``ObjectStorageSink`` puts it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any, cast

from genblaze_core.storage.base import KeyStrategy
from genblaze_core.storage.transfer import _guess_extension

from genblaze_s3.transfer.checkpoint import CheckpointStore, SourceValidators
from genblaze_s3.transfer.config import CopyConfig, FetchPolicy
from genblaze_s3.transfer.errors import (
    Canceled,
    ChecksumMismatch,
    SourceChanged,
    TransferError,
    map_storage_error,
    s3_error_code,
)
from genblaze_s3.transfer.fetch import Fetcher, SourceStream, thread_fetcher
from genblaze_s3.transfer.hashing import hash_stream
from genblaze_s3.transfer.models import (
    CopyResult,
    Destination,
    Progress,
    ProgressCallback,
)
from genblaze_s3.transfer.multipart import (
    MultipartUpload,
    abort_checkpointed_upload,
    b64_of_hex_digest,
    call_with_retries,
    choose_part_size,
    install_part_signing_hook,
)
from genblaze_s3.transfer.pipeline import upload_parts
from genblaze_s3.transfer.urlguard import Resolver, validate_url

logger = logging.getLogger("genblaze_s3.transfer")


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
    progress: Progress
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
            cause = exc.__cause__
            if cause is not None and s3_error_code(cause) in ("404", "NoSuchKey", "NotFound"):
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
        progress=Progress(progress, config.progress_interval, expected_size),
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
    try:
        result = _fetch_and_store(job, url, is_cas, media_type, expected_size, resolver)
    except TransferError as exc:
        # A permanent failure (expired URL on a resume, cancel, mismatch...) must not
        # leave a checkpointed upload behind for a retry that will never come.
        if not exc.retryable and job.store is not None and job.checkpoint_id is not None:
            try:
                abort_checkpointed_upload(job.client, job.store, job.checkpoint_id, config=config)
            except Exception:
                logger.warning("could not abort checkpointed upload %s", job.checkpoint_id)
        raise
    job.progress.finish()
    return result


def _fetch_and_store(
    job: _Job,
    url: str,
    is_cas: bool,
    media_type: str | None,
    expected_size: int | None,
    resolver: Resolver | None,
) -> CopyResult:
    dest, expected_sha256 = job.dest, job.expected_sha256
    job.check_cancel()
    with _fetcher(job, resolver) as fetcher, fetcher.open(url) as src:
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
            return _copy_to_known_key(job, src, key, content_type)
        large = src.length is None or src.length >= job.config.part_size
        if large and _refetches(job.config.cas_mode, src):
            job.progress.passes = 2
            sha256 = _hash_only(job, src)
            key = cast(str, dest.build_key(url, src.content_type or media_type, sha256))
            validators = src.validators
        else:
            return _copy_spooled(job, src, content_type)
    # Second pass ("refetch"): the key is known now, so stream straight to it.
    head = job.head(key)
    if head is not None:
        job.progress.skip_second_pass()  # already stored: the hash pass was the copy
        job.progress.finish()
        return _dedup_result(job, key, head, sha256)
    pinned = replace(job, expected_sha256=sha256)
    with _fetcher(job, resolver) as fetcher, fetcher.open(url) as src:
        if not src.validators.matches(validators) and validators != src.validators:
            raise SourceChanged("source validators changed between the hash and upload passes")
        try:
            return _copy_to_known_key(pinned, src, key, content_type)
        except ChecksumMismatch as exc:
            raise SourceChanged("source bytes changed between the hash and upload passes") from exc


def _fetcher(job: _Job, resolver: Resolver | None) -> AbstractContextManager[Fetcher]:
    """The thread's keep-alive fetcher; a private one when a test injects a resolver."""
    if resolver is not None:
        return Fetcher(job.policy, job.config, resolver=resolver)
    return nullcontext(thread_fetcher(job.policy, job.config))


def _refetches(mode: str, src: SourceStream) -> bool:
    """Whether a CAS copy with an unknown hash reads the source twice instead of spooling.

    ``auto`` refetches only a source whose second read can be checked up front
    (a length and an ETag or Last-Modified): a source without validators may be
    generated per request, and would only be caught by the hash at the very end.
    """
    if mode == "auto":
        v = src.validators
        return src.length is not None and (v.etag is not None or v.last_modified is not None)
    return mode == "refetch"


def _hash_only(job: _Job, src: SourceStream) -> str:
    """First pass of ``cas_mode="refetch"``: read and hash the body, store nothing."""
    sha256, _size = hash_stream(src.read_into, on_block=job.progress.add, check=job.check_cancel)
    return sha256


def _verify(job: _Job, sha256: str, size: int) -> None:
    if job.expected_sha256 is not None and sha256 != job.expected_sha256:
        raise ChecksumMismatch("SHA-256 of the source differs from the expected one")


# Endpoints that answered a conditional PUT with "not implemented": HEAD + PUT there.
_NO_CONDITIONAL_PUT: set[str] = set()
_PRECONDITION_FAILED = ("PreconditionFailed", "412")
_CONDITIONAL_UNSUPPORTED = ("NotImplemented", "501")


def _put_small_cas(
    job: _Job, key: str, data: memoryview, content_type: str | None, sha256: str
) -> CopyResult:
    """A small CAS object: one ``If-None-Match: *`` PUT instead of HEAD then PUT.

    Why: for small assets the dedupe HEAD costs as much as the upload itself
    (measured: ~45% of the S3 time per 64 KiB asset). A 412 means the content is
    already there (deduplicated). A store that ignores the header just rewrites
    identical bytes at the content-addressed key; one that rejects it is
    remembered and gets HEAD + PUT.
    """
    endpoint = str(getattr(job.client.meta, "endpoint_url", ""))
    if endpoint not in _NO_CONDITIONAL_PUT:
        try:
            return _put_small(job, key, data, content_type, sha256, if_none_match=True)
        except TransferError as exc:
            code = s3_error_code(exc.__cause__) if exc.__cause__ is not None else None
            if code in _CONDITIONAL_UNSUPPORTED:
                _NO_CONDITIONAL_PUT.add(endpoint)
            elif code not in _PRECONDITION_FAILED:
                raise
    head = job.head(key)
    if head is not None:
        return _dedup_result(job, key, head, sha256)
    job.check_cancel()
    return _put_small(job, key, data, content_type, sha256)


def _put_small(
    job: _Job,
    key: str,
    data: memoryview,
    content_type: str | None,
    sha256: str,
    *,
    if_none_match: bool = False,
) -> CopyResult:
    body = data.obj if data.nbytes == len(data.obj) else bytes(data)  # type: ignore[arg-type]
    params: dict[str, Any] = {
        "Bucket": job.bucket,
        "Key": key,
        "Body": body,
        **job.extra(content_type),
    }
    if if_none_match:
        params["IfNoneMatch"] = "*"
    if job.checksums:
        # The object's SHA-256 is already known: no second pass over the bytes.
        params["ChecksumSHA256"] = b64_of_hex_digest(sha256)
        if job.config.unsigned_checksummed_parts:
            install_part_signing_hook(job.client)
    resp = call_with_retries(
        lambda: job.client.put_object(**params), what="PutObject", config=job.config
    )
    return CopyResult(
        key,
        sha256,
        len(data),
        content_type,
        resp.get("ETag"),
        False,
        len(data),
        1,
        _durable_url(job.backend, key),
    )


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
            same = (
                cp.bucket == job.bucket
                and cp.key == key
                and cp.part_size == part_size
                and cp.checksum_sha256 == job.checksums
                and cp.source.matches(source)
            )
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
        job.client,
        bucket=job.bucket,
        key=key,
        part_size=part_size,
        source=source,
        extra=job.extra(content_type),
        checksum_sha256=job.checksums,
        **common,  # type: ignore[arg-type]
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
    hasher: Any,
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
            upload,
            read_part,
            part_size=part_size,
            concurrency=job.config.concurrency,
            buffers=job.config.part_buffers,
            first=first,
            first_len=first_len,
            on_part=on_part,
            should_cancel=job.should_cancel,
        )
        sha256 = known_sha256 if known_sha256 is not None else hasher.hexdigest()
        _verify(job, sha256, size)
        job.check_cancel()
        resp = upload.complete(n_parts)
    except BaseException as exc:
        keep = isinstance(exc, TransferError) and exc.retryable and job.store is not None
        if not keep:
            upload.abort()
        if isinstance(exc, TransferError) or not isinstance(exc, Exception):
            raise
        raise map_storage_error(exc, "multipart upload") from exc
    if job.store is not None and job.checkpoint_id is not None:
        job.store.clear(job.checkpoint_id)
    return CopyResult(
        key,
        sha256,
        size,
        content_type,
        resp.get("ETag"),
        False,
        upload.bytes_uploaded,
        upload.parts_uploaded,
        _durable_url(job.backend, key),
    )


def _copy_to_known_key(
    job: _Job, src: SourceStream, key: str, content_type: str | None
) -> CopyResult:
    part_size = choose_part_size(
        src.length, minimum=job.config.part_size, fallback_max=job.policy.max_source_bytes
    )
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
    return _multipart(
        job,
        key,
        src.read_into,
        first,
        first_len,
        part_size,
        src.validators,
        content_type,
        hasher,
        None,
    )


def _copy_spooled(job: _Job, src: SourceStream, content_type: str | None) -> CopyResult:
    """CAS with unknown hash: hash while spooling to disk, then upload to the known key."""
    part_size = choose_part_size(
        src.length, minimum=job.config.part_size, fallback_max=job.policy.max_source_bytes
    )
    first = bytearray(part_size if src.length is None else min(part_size, src.length))
    first_len = src.read_into(first)
    if first_len < part_size:
        job.progress.add(first_len)
        sha256 = hashlib.sha256(memoryview(first)[:first_len]).hexdigest()
        _verify(job, sha256, first_len)
        key = cast(str, job.dest.build_key(job.url, src.content_type or content_type, sha256))
        job.check_cancel()
        return _put_small_cas(job, key, memoryview(first)[:first_len], content_type, sha256)
    job.progress.passes = 2  # spool, then upload
    job.progress.add(first_len)
    # An anonymous file (O_TMPFILE / unlinked at once): even a SIGKILLed worker
    # leaves no spool behind, and the disk space is freed when the process dies.
    with tempfile.TemporaryFile(
        buffering=0, prefix="genblaze-spool-", dir=job.config.spool_dir
    ) as f:
        sha256, size = hash_stream(
            src.read_into,
            first=memoryview(first)[:first_len],
            write=f.write,
            on_block=job.progress.add,
            check=job.check_cancel,
        )
        del first
        _verify(job, sha256, size)
        key = cast(str, job.dest.build_key(job.url, src.content_type or content_type, sha256))
        head = job.head(key)
        if head is not None:
            job.progress.skip_second_pass()  # already stored: the spool was the copy
            return _dedup_result(job, key, head, sha256)
        f.seek(0)
        file = cast(io.RawIOBase, f)
        return _multipart(
            job,
            key,
            lambda b: file.readinto(b) or 0,
            None,
            0,
            part_size,
            src.validators,
            content_type,
            None,
            sha256,
        )
