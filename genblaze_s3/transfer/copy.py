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

**Bounded slices** (``slice_seconds``): a multipart copy to a known key whose
source states a length and a validator stops reading once the slice's time is
up, lets the parts in flight finish, and saves the upload id, the parts and the
SHA-256 state (:class:`~genblaze_s3.transfer.hashing.ResumableSha256`) in the
checkpoint; ``copy_url`` then returns :class:`CopyPaused`. The next call with the
same checkpoint asks for ``Range: bytes=<offset>-`` with ``If-Range``, so no byte
is downloaded or hashed twice. A source that ignores Range (answers 200) is read
from the start and the first ``offset`` bytes are discarded: one extra download
of what earlier slices read, nothing uploaded or hashed again. The hash pass
of a CAS copy with an unknown hash (``refetch``) is sliced the same way (a
hash-phase checkpoint: offset and hash state, no upload yet). A source without a
length or a validator, and the spool of ``cas_mode="spool"`` (a local file), run
in one call: a continuation could not prove it reads the same bytes. A slice ends
between parts (8 MiB blocks in the hash pass), so a source slower than one part
per slice overruns it by up to one part's read.

Keys are genblaze-core's own (``_build_key`` / ``_guess_extension`` /
``_cache_control_for``), so a copy lands exactly where ``ObjectStorageSink`` puts it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast, overload

from genblaze_core.storage.base import KeyStrategy
from genblaze_core.storage.transfer import _guess_extension

from genblaze_s3.transfer.checkpoint import CheckpointStore, SourceValidators
from genblaze_s3.transfer.config import CopyConfig, FetchPolicy
from genblaze_s3.transfer.copy_job import (
    Body,
    CopyJob,
    Digest,
    dedup_result,
    fetcher_for,
    verify,
)
from genblaze_s3.transfer.errors import (
    ChecksumMismatch,
    SourceChanged,
    SourceExpired,
    TransferError,
)
from genblaze_s3.transfer.fetch import SourceStream
from genblaze_s3.transfer.hashing import ResumableSha256, hash_stream
from genblaze_s3.transfer.models import (
    CopyPaused,
    CopyResult,
    Destination,
    Progress,
    ProgressCallback,
)
from genblaze_s3.transfer.multipart import (
    abort_checkpointed_upload,
    choose_part_size,
)
from genblaze_s3.transfer.slices import (
    HASH_PHASE,
    continue_hash_pass,
    continue_upload,
    hash_pass,
    slice_boundary,
)
from genblaze_s3.transfer.upload import (
    HONORS_CONDITIONAL_PUT_ATTR,
    NO_CONDITIONAL_PUT_ATTR,
    put_small_cas,
    put_small_new,
    send_multipart,
    start_or_resume,
)
from genblaze_s3.transfer.urlguard import Resolver, validate_url

logger = logging.getLogger("genblaze_s3.transfer")


@overload
def copy_url(
    backend: Any,
    url: str,
    dest: Destination,
    *,
    expected_sha256: str | None = ...,
    expected_size: int | None = ...,
    media_type: str | None = ...,
    progress: ProgressCallback | None = ...,
    checkpoint_store: CheckpointStore | None = ...,
    checkpoint_id: str | None = ...,
    policy: FetchPolicy | None = ...,
    config: CopyConfig | None = ...,
    should_cancel: Callable[[], bool] | None = ...,
    resolver: Resolver | None = ...,
    slice_seconds: None = ...,
    refreshable_source: bool = ...,
) -> CopyResult: ...


@overload
def copy_url(
    backend: Any,
    url: str,
    dest: Destination,
    *,
    expected_sha256: str | None = ...,
    expected_size: int | None = ...,
    media_type: str | None = ...,
    progress: ProgressCallback | None = ...,
    checkpoint_store: CheckpointStore | None = ...,
    checkpoint_id: str | None = ...,
    policy: FetchPolicy | None = ...,
    config: CopyConfig | None = ...,
    should_cancel: Callable[[], bool] | None = ...,
    resolver: Resolver | None = ...,
    slice_seconds: float,
    refreshable_source: bool = ...,
) -> CopyResult | CopyPaused: ...


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
    slice_seconds: float | None = None,
    refreshable_source: bool = False,
) -> CopyResult | CopyPaused:
    """Copy ``url`` into ``backend.bucket`` at the destination key; see the module doc.

    Raises a :class:`TransferError` subclass (``.code``, ``.retryable``). On a
    retryable failure with a checkpoint store, the multipart upload is kept for
    the next attempt; otherwise it is aborted. Nothing partial is ever visible at
    the final key. With ``slice_seconds`` (and a checkpoint store) a long copy
    may return :class:`CopyPaused` instead: call again with the same checkpoint.
    ``refreshable_source``: the caller answers ``source_expired`` by calling again
    with a fresh URL, so that failure keeps the checkpoint too (resumed if the fresh
    URL serves the same validators); a caller that then gives up aborts it with
    :func:`abort_checkpointed_upload`.
    """
    if slice_seconds is not None and slice_seconds <= 0:
        raise ValueError("slice_seconds must be positive")
    policy = policy or FetchPolicy()
    config = config or CopyConfig()
    validate_url(url, policy)
    if expected_sha256 is not None:
        expected_sha256 = expected_sha256.lower()
    job = CopyJob(
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
        expected_size=expected_size,
        slice_deadline=None if slice_seconds is None else time.monotonic() + slice_seconds,
    )
    is_cas = dest.key_strategy == KeyStrategy.CONTENT_ADDRESSABLE and not dest.key
    # CAS with a known hash: if the object exists, skip the download entirely.
    if is_cas and expected_sha256 and (media_type or _guess_extension(url, None)):
        key = dest.build_key(url, media_type, expected_sha256)
        head = job.head(key) if key else None
        if key and head is not None:
            job.progress.finish()
            return dedup_result(job, key, head, expected_sha256)
    try:
        result = _fetch_and_store(job, url, is_cas, media_type, expected_size, resolver)
        if isinstance(result, CopyResult) and job.source_seen is not None:
            result = replace(result, source=job.source_seen)  # fetch provenance
    except TransferError as exc:
        # A permanent failure (expired URL on a resume, cancel, mismatch...) must not
        # leave a checkpointed upload behind for a retry that will never come.
        kept = exc.retryable or (refreshable_source and isinstance(exc, SourceExpired))
        if not kept and job.store is not None and job.checkpoint_id is not None:
            try:
                abort_checkpointed_upload(job.client, job.store, job.checkpoint_id, config=config)
            except Exception:
                logger.warning("could not abort checkpointed upload %s", job.checkpoint_id)
        raise
    if isinstance(result, CopyResult):
        job.progress.finish()
    return result


def _fetch_and_store(
    job: CopyJob,
    url: str,
    is_cas: bool,
    media_type: str | None,
    expected_size: int | None,
    resolver: Resolver | None,
) -> CopyResult | CopyPaused:
    dest, expected_sha256 = job.dest, job.expected_sha256
    job.check_cancel()
    boundary = slice_boundary(job)
    if boundary is not None and boundary.phase == HASH_PHASE:
        with fetcher_for(job, resolver) as fetcher:
            hashed = continue_hash_pass(job, fetcher, url, boundary)
        if isinstance(hashed, CopyPaused):
            return hashed
        if hashed is not None:
            sha256, validators, served_type = hashed
            content_type = served_type or media_type
            hashed_key = cast(str, dest.build_key(url, content_type, sha256))
            return _upload_pass(job, url, hashed_key, sha256, validators, content_type, resolver)
    elif boundary is not None:
        with fetcher_for(job, resolver) as fetcher:
            result = continue_upload(job, fetcher, url, boundary)
        if result is not None:
            return result
    with fetcher_for(job, resolver) as fetcher, job.watch(fetcher.open(url)) as src:
        job.source_seen = src.validators
        job.progress.total = src.length if src.length is not None else expected_size
        if expected_size is not None and src.length is not None and src.length != expected_size:
            raise ChecksumMismatch(f"source is {src.length} bytes, expected {expected_size}")
        content_type = src.content_type or media_type
        key = dest.build_key(url, src.content_type or media_type, expected_sha256)
        if key is not None and is_cas:
            head = job.head(key)
            if head is not None:
                job.progress.finish()
                return dedup_result(job, key, head, cast(str, expected_sha256))
        if key is not None:
            return _copy_to_known_key(job, src, key, content_type)
        large = src.length is None or src.length >= job.config.part_size
        if not (large and _refetches(job.config.cas_mode, src)):
            return _copy_spooled(job, src, content_type)
        job.progress.passes = 2
        validators = src.validators
        hashed_here = hash_pass(job, src.read_into, validators, src.length)
        if isinstance(hashed_here, CopyPaused):
            return hashed_here
        sha256 = hashed_here
        key = cast(str, dest.build_key(url, src.content_type or media_type, sha256))
    return _upload_pass(job, url, key, sha256, validators, content_type, resolver)


def _upload_pass(
    job: CopyJob,
    url: str,
    key: str,
    sha256: str,
    validators: SourceValidators,
    content_type: str | None,
    resolver: Resolver | None,
) -> CopyResult | CopyPaused:
    """Second pass of a refetch: the key is known now, so stream straight to it."""
    head = job.head(key)
    if head is not None:
        job.progress.skip_second_pass()  # already stored: the hash pass was the copy
        job.progress.finish()
        return dedup_result(job, key, head, sha256)
    pinned = replace(job, expected_sha256=sha256)
    with fetcher_for(job, resolver) as fetcher, job.watch(fetcher.open(url)) as src:
        job.source_seen = src.validators
        if not src.validators.matches(validators) and validators != src.validators:
            raise SourceChanged("source validators changed between the hash and upload passes")
        try:
            return _copy_to_known_key(pinned, src, key, content_type)
        except ChecksumMismatch as exc:
            raise SourceChanged("source bytes changed between the hash and upload passes") from exc


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


def _copy_to_known_key(
    job: CopyJob, src: SourceStream, key: str, content_type: str | None
) -> CopyResult | CopyPaused:
    part_size = choose_part_size(
        src.length, minimum=job.config.part_size, fallback_max=job.policy.max_source_bytes
    )
    first = bytearray(part_size if src.length is None else min(part_size, src.length))
    first_len = src.read_into(first)
    resumable = (
        job.store is not None
        and not job.checkpoint_absent
        and job.store.load(cast(str, job.checkpoint_id)) is not None
    )
    if first_len < part_size and not resumable:
        view = memoryview(first)[:first_len]
        hasher = hashlib.sha256(view)
        job.progress.add(first_len)
        sha256 = hasher.hexdigest()
        verify(job, sha256, first_len)
        job.check_cancel()
        return put_small_new(job, key, view, content_type, sha256)
    body = Body(
        read_part=src.read_into,
        validators=src.validators,
        length=src.length,
        first=first,
        first_len=first_len,
    )
    # A copy that may be sliced hashes with a state it can save (slower: see hashing.py).
    digest = Digest(hasher=ResumableSha256() if job.may_slice(body) else hashlib.sha256())
    upload = start_or_resume(job, key, part_size, src.validators, content_type)
    return send_multipart(job, upload, body, digest, content_type)


def _copy_spooled(
    job: CopyJob, src: SourceStream, content_type: str | None
) -> CopyResult | CopyPaused:
    """CAS with unknown hash: hash while spooling to disk, then upload to the known key."""
    part_size = choose_part_size(
        src.length, minimum=job.config.part_size, fallback_max=job.policy.max_source_bytes
    )
    first = bytearray(part_size if src.length is None else min(part_size, src.length))
    # Spool, then upload: each pass counts for half, from the first byte read (progress is
    # reported while the first part fills); a body within one part is one pass after all.
    job.progress.passes = 2
    first_len = src.read_into(first)
    if first_len < part_size:
        job.progress.passes = 1
        job.progress.add(first_len)
        sha256 = hashlib.sha256(memoryview(first)[:first_len]).hexdigest()
        verify(job, sha256, first_len)
        key = cast(str, job.dest.build_key(job.url, src.content_type or content_type, sha256))
        job.check_cancel()
        return put_small_cas(job, key, memoryview(first)[:first_len], content_type, sha256)
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
        verify(job, sha256, size)
        key = cast(str, job.dest.build_key(job.url, src.content_type or content_type, sha256))
        head = job.head(key)
        if head is not None:
            job.progress.skip_second_pass()  # already stored: the spool was the copy
            return dedup_result(job, key, head, sha256)
        f.seek(0)
        file = cast(io.RawIOBase, f)
        # The spool is local to this process: its upload runs to the end in this call.
        unsliced = replace(job, slice_deadline=None)
        upload = start_or_resume(unsliced, key, part_size, src.validators, content_type)
        body = Body(
            read_part=lambda b: file.readinto(b) or 0,
            validators=src.validators,
            length=size,
        )
        return send_multipart(unsliced, upload, body, Digest(known=sha256), content_type)


__all__ = ["HONORS_CONDITIONAL_PUT_ATTR", "NO_CONDITIONAL_PUT_ATTR", "copy_url"]
