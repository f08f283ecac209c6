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
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any, cast, overload
from urllib.parse import urlsplit

from genblaze_core.storage.base import KeyStrategy
from genblaze_core.storage.transfer import _guess_extension

from genblaze_s3.transfer.checkpoint import Checkpoint, CheckpointStore, SourceValidators
from genblaze_s3.transfer.config import CopyConfig, FetchPolicy
from genblaze_s3.transfer.errors import (
    Canceled,
    ChecksumMismatch,
    KeyConflict,
    SourceChanged,
    SourceExpired,
    SourceTruncated,
    StorageFailure,
    TransferError,
    map_storage_error,
    s3_error_code,
)
from genblaze_s3.transfer.fetch import Fetcher, SourceStream, thread_fetcher
from genblaze_s3.transfer.hashing import ResumableSha256, hash_stream
from genblaze_s3.transfer.models import (
    CopyPaused,
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
    expected_size: int | None = None
    slice_deadline: float | None = None  # time.monotonic() at which a slice hands on
    source_seen: SourceValidators | None = None  # validators of the last body opened

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

    def may_slice(self, body: _Body) -> bool:
        """Whether this copy may stop early and be continued by a later call.

        Only with somewhere to keep the checkpoint, and only for a source that a
        Range request can continue provably: a stated length and a validator.
        """
        v = body.validators
        return (
            self.slice_deadline is not None
            and self.store is not None
            and body.length is not None
            and (v.etag is not None or v.last_modified is not None)
        )


@dataclass
class _Body:
    """The bytes a multipart copy still has to send, and what identifies the source.

    ``offset``: bytes before ``read_part``'s first byte (sent by earlier slices);
    ``first``/``first_len``: a part already read to choose between PUT and multipart.
    """

    read_part: Callable[[bytearray], int]
    validators: SourceValidators
    length: int | None
    offset: int = 0
    first: bytearray | None = None
    first_len: int = 0


@dataclass
class _Digest:
    """How the multipart path learns the SHA-256: hash while sending, or known already."""

    hasher: Any | None = None  # hashlib or ResumableSha256 object, fed in byte order
    known: str | None = None  # the spool already hashed every byte

    def hexdigest(self) -> str:
        if self.known is not None:
            return self.known
        if self.hasher is None:
            raise ValueError("a digest needs a hasher or a known SHA-256")
        return str(self.hasher.hexdigest())


@dataclass
class _Sent:
    """What the part pipeline saw of one slice (filled in as parts go out)."""

    size: int = 0


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
            return _dedup_result(job, key, head, expected_sha256)
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
    job: _Job,
    url: str,
    is_cas: bool,
    media_type: str | None,
    expected_size: int | None,
    resolver: Resolver | None,
) -> CopyResult | CopyPaused:
    dest, expected_sha256 = job.dest, job.expected_sha256
    job.check_cancel()
    boundary = _slice_boundary(job)
    if boundary is not None and boundary.phase == HASH_PHASE:
        with _fetcher(job, resolver) as fetcher:
            hashed = _continue_hash_pass(job, fetcher, url, boundary)
        if isinstance(hashed, CopyPaused):
            return hashed
        if hashed is not None:
            sha256, validators, served_type = hashed
            content_type = served_type or media_type
            hashed_key = cast(str, dest.build_key(url, content_type, sha256))
            return _upload_pass(job, url, hashed_key, sha256, validators, content_type, resolver)
    elif boundary is not None:
        with _fetcher(job, resolver) as fetcher:
            result = _continue_slice(job, fetcher, url, boundary)
        if result is not None:
            return result
    with _fetcher(job, resolver) as fetcher, fetcher.open(url) as src:
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
                return _dedup_result(job, key, head, cast(str, expected_sha256))
        if key is not None:
            return _copy_to_known_key(job, src, key, content_type)
        large = src.length is None or src.length >= job.config.part_size
        if not (large and _refetches(job.config.cas_mode, src)):
            return _copy_spooled(job, src, content_type)
        job.progress.passes = 2
        validators = src.validators
        hashed_here = _hash_pass(job, src.read_into, validators, src.length)
        if isinstance(hashed_here, CopyPaused):
            return hashed_here
        sha256 = hashed_here
        key = cast(str, dest.build_key(url, src.content_type or media_type, sha256))
    return _upload_pass(job, url, key, sha256, validators, content_type, resolver)


def _upload_pass(
    job: _Job,
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
        return _dedup_result(job, key, head, sha256)
    pinned = replace(job, expected_sha256=sha256)
    with _fetcher(job, resolver) as fetcher, fetcher.open(url) as src:
        job.source_seen = src.validators
        if not src.validators.matches(validators) and validators != src.validators:
            raise SourceChanged("source validators changed between the hash and upload passes")
        try:
            return _copy_to_known_key(pinned, src, key, content_type)
        except ChecksumMismatch as exc:
            raise SourceChanged("source bytes changed between the hash and upload passes") from exc


HASH_PHASE = "hash"
_HASH_BLOCK = 8 * 1024 * 1024


def _hash_pass(
    job: _Job,
    read_into: Callable[[bytearray], int],
    validators: SourceValidators,
    total: int | None,
    *,
    offset: int = 0,
    hasher: ResumableSha256 | None = None,
) -> str | CopyPaused:
    """First pass of a refetch: hash the body, store nothing.

    A bounded slice (a length and a validator to continue against) hashes with a
    state it can save and stops between blocks when its time is up, leaving a
    hash-phase checkpoint; otherwise the two-thread `hash_stream` reads and hashes.
    """
    sliceable = (
        job.slice_deadline is not None
        and job.store is not None
        and total is not None
        and (validators.etag is not None or validators.last_modified is not None)
    )
    if not sliceable and hasher is None:
        sha256, _size = hash_stream(read_into, on_block=job.progress.add, check=job.check_cancel)
        return sha256
    h = hasher or ResumableSha256()
    buf = bytearray(_HASH_BLOCK)
    done = offset
    while n := read_into(buf):
        h.update(memoryview(buf)[:n])
        done += n
        job.progress.add(n)
        job.check_cancel()
        if (
            sliceable
            and done < cast(int, total)
            and time.monotonic() >= cast(float, job.slice_deadline)
        ):
            cp = Checkpoint(
                bucket=job.bucket,
                key="",
                upload_id="",
                part_size=0,
                source=validators,
                offset=done,
                sha256_state=h.state(),
                phase=HASH_PHASE,
            )
            cast(CheckpointStore, job.store).save(cast(str, job.checkpoint_id), cp)
            # bytes_done as progress counts it: the hash pass is the first half of two
            return CopyPaused(bytes_done=done // 2, bytes_total=total, bytes_uploaded=0)
    return h.hexdigest()


def _continuation(src: SourceStream, cp: Checkpoint) -> SourceValidators:
    """What identifies the source this continuation reached (a 206's total as length);
    empty validators when the server answered another range than the one asked for."""
    validators = src.validators
    if src.status == 206:
        span = _range_start_and_total(src.content_range)
        validators = replace(validators, length=span[1] if span is not None else None)
        if span is None or span[0] != cp.offset:
            return SourceValidators()
    return validators


def _range_headers(cp: Checkpoint) -> dict[str, str]:
    headers = {"Range": f"bytes={cp.offset}-"}
    validator = cp.source.etag or cp.source.last_modified
    if validator is not None:
        headers["If-Range"] = validator
    return headers


def _continue_hash_pass(
    job: _Job, fetcher: Fetcher, url: str, cp: Checkpoint
) -> tuple[str, SourceValidators, str | None] | CopyPaused | None:
    """Go on hashing where the previous slice stopped; None: the source changed, start over.

    Returns (sha256, validators, content type) once the whole body is hashed.
    """
    store, cp_id = cast(CheckpointStore, job.store), cast(str, job.checkpoint_id)
    with fetcher.open(url, headers=_range_headers(cp)) as src:
        validators = _continuation(src, cp)
        job.source_seen = validators
        if not (validators.matches(cp.source) and cp.source.length is not None):
            logger.info("hash checkpoint no longer fits the source; starting over")
            store.clear(cp_id)
            return None
        if src.status != 206:
            _discard(src, cp.offset, _HASH_BLOCK)  # the source ignored Range
        job.progress.passes = 2
        job.progress.total = cp.source.length
        job.progress.add(cp.offset)
        hashed = _hash_pass(
            job,
            src.read_into,
            cp.source,
            cp.source.length,
            offset=cp.offset,
            hasher=ResumableSha256.from_state(cast(str, cp.sha256_state)),
        )
        if isinstance(hashed, CopyPaused):
            return hashed
        store.clear(cp_id)
        return hashed, cp.source, src.content_type


def _slice_boundary(job: _Job) -> Checkpoint | None:
    """The checkpoint of a slice that handed on (offset and hash state), if any."""
    if job.store is None or job.checkpoint_id is None:
        return None
    cp = job.store.load(job.checkpoint_id)
    if cp is None or cp.offset <= 0 or cp.sha256_state is None:
        return None
    return cp


def _range_start_and_total(content_range: str | None) -> tuple[int, int] | None:
    """(start, total) of a ``bytes START-END/TOTAL`` header, else None."""
    if not content_range or not content_range.startswith("bytes "):
        return None
    span, _, total = content_range[6:].partition("/")
    start, _, _end = span.partition("-")
    try:
        return int(start), int(total)
    except ValueError:
        return None


def _continue_slice(
    job: _Job, fetcher: Fetcher, url: str, cp: Checkpoint
) -> CopyResult | CopyPaused | None:
    """Go on from the byte where the previous slice stopped; None: start over instead.

    ``If-Range`` makes a changed source answer 200 with its new body, which the
    validators then reject: the old upload is aborted and the copy starts over
    rather than stitching two versions together.
    """
    if cp.expected_sha256 is not None:  # a refetch's upload pass: its hash pass pinned it
        job = replace(job, expected_sha256=cp.expected_sha256)
    with fetcher.open(url, headers=_range_headers(cp)) as src:
        validators = _continuation(src, cp)
        job.source_seen = validators
        same = (
            validators.matches(cp.source)
            and cp.source.length is not None
            and cp.bucket == job.bucket
            and cp.checksum_sha256 == job.checksums
        )
        upload = None
        if same:
            upload = MultipartUpload.resume(
                job.client, cp, config=job.config, store=job.store, checkpoint_id=job.checkpoint_id
            )
        first_parts = cp.offset // cp.part_size
        if upload is None or any(
            upload.existing_part(n) is None for n in range(1, first_parts + 1)
        ):
            logger.info("slice checkpoint for %s no longer fits; starting over", cp.key)
            if upload is not None:
                upload.abort()
            else:
                store, cp_id = cast(CheckpointStore, job.store), cast(str, job.checkpoint_id)
                abort_checkpointed_upload(job.client, store, cp_id, config=job.config)
            return None
        if src.status != 206:
            # The source ignored Range: read what earlier slices already sent, drop it.
            _discard(src, cp.offset, cp.part_size)
        job.progress.total = cp.source.length
        job.progress.add(cp.offset)
        body = _Body(
            read_part=src.read_into,
            validators=cp.source,
            length=cp.source.length,
            offset=cp.offset,
        )
        digest = _Digest(hasher=ResumableSha256.from_state(cast(str, cp.sha256_state)))
        content_type = src.content_type
        return _send_multipart(job, upload, body, digest, content_type, uploaded=cp.bytes_uploaded)


def _discard(src: SourceStream, n: int, block: int) -> None:
    """Read and drop the first ``n`` bytes of a source that ignored our Range request."""
    buf = bytearray(min(block, 8 * 1024 * 1024))
    left = n
    while left > 0:
        view = memoryview(buf)[: min(len(buf), left)]
        got = src.read_into(cast(bytearray, view))
        if got == 0:
            raise SourceTruncated(f"source ended at {n - left} bytes, before the slice offset {n}")
        left -= got


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


def _verify(job: _Job, sha256: str, size: int) -> None:
    """The bytes read are the bytes promised: the expected size, then the expected hash."""
    if job.expected_size is not None and size != job.expected_size:
        raise ChecksumMismatch(f"source sent {size} bytes, expected {job.expected_size}")
    if job.expected_sha256 is not None and sha256 != job.expected_sha256:
        raise ChecksumMismatch("SHA-256 of the source differs from the expected one")


_PRECONDITION_FAILED = ("PreconditionFailed", "412")
_CONDITIONAL_UNSUPPORTED = ("NotImplemented", "501")
# Set on a backend whose endpoint answered a conditional PUT with "not implemented":
# that backend gets HEAD + PUT from then on (kept per backend object, not per process).
NO_CONDITIONAL_PUT_ATTR = "_genblaze_no_conditional_put"


def _put_small_cas(
    job: _Job, key: str, data: memoryview, content_type: str | None, sha256: str
) -> CopyResult:
    """A small CAS object: one ``If-None-Match: *`` PUT instead of HEAD then PUT.

    Why: for small assets the dedupe HEAD costs as much as the upload itself
    (measured: ~45% of the S3 time per 64 KiB asset). A 412 means the content is
    already there (deduplicated). A store that ignores the header just rewrites
    identical bytes at the content-addressed key; one that rejects it is
    remembered (on the backend) and gets HEAD + PUT.
    """
    if not getattr(job.backend, NO_CONDITIONAL_PUT_ATTR, False):
        try:
            return _put_small(job, key, data, content_type, sha256, if_none_match=True)
        except TransferError as exc:
            code = s3_error_code(exc.__cause__) if exc.__cause__ is not None else None
            if code in _CONDITIONAL_UNSUPPORTED:
                setattr(job.backend, NO_CONDITIONAL_PUT_ATTR, True)
            elif code not in _PRECONDITION_FAILED:
                raise
    head = job.head(key)
    if head is not None:
        return _dedup_result(job, key, head, sha256)
    job.check_cancel()
    return _put_small(job, key, data, content_type, sha256)


def _endpoint(job: _Job) -> str:
    return str(getattr(job.client.meta, "endpoint_url", ""))


def _conditional(job: _Job) -> bool:
    """Whether writes to this backend carry ``If-None-Match: *`` (all but refusers)."""
    return not getattr(job.backend, NO_CONDITIONAL_PUT_ATTR, False)


# Stores documented to refuse a conditional write to an existing key with 412. Any
# other backend is marked (HONORS_CONDITIONAL_PUT_ATTR) the first time it answers 412.
_KNOWN_CONDITIONAL_HOSTS = (".amazonaws.com", ".r2.cloudflarestorage.com")
HONORS_CONDITIONAL_PUT_ATTR = "_genblaze_honors_conditional_put"


def _head_first(job: _Job, key: str) -> bool:
    """Whether a write to a non-content key must HEAD first (the equivalent check).

    Why: a store that silently ignores ``If-None-Match`` (Backblaze B2 does not
    document it) would let the PUT replace another job's object; a HEAD catches
    that except in a race. Content-addressed keys skip it (their bytes are their
    name), and so do stores known or seen to answer 412.
    """
    if job.dest.key_strategy == KeyStrategy.CONTENT_ADDRESSABLE and not job.dest.key:
        return False
    if not _conditional(job):
        return True
    host = (urlsplit(_endpoint(job)).hostname or "").lower()
    known = host.endswith(_KNOWN_CONDITIONAL_HOSTS) or host == "s3.amazonaws.com"
    return not (known or getattr(job.backend, HONORS_CONDITIONAL_PUT_ATTR, False))


def _precondition_failed(job: _Job, exc: BaseException) -> bool:
    """A 412 to our ``If-None-Match``: the key exists (and the store is proven to honor it)."""
    if _refused_as(exc, _PRECONDITION_FAILED):
        setattr(job.backend, HONORS_CONDITIONAL_PUT_ATTR, True)
        return True
    return False


def _refused_as(exc: BaseException, codes: tuple[str, ...]) -> bool:
    cause = exc.__cause__ if isinstance(exc, TransferError) else exc
    return cause is not None and s3_error_code(cause) in codes


def _put_small_new(
    job: _Job, key: str, data: memoryview, content_type: str | None, sha256: str
) -> CopyResult:
    """One PUT that never replaces an existing object (``If-None-Match: *``).

    Why: a HIERARCHICAL or explicit key does not change with the content, so
    another job (another tenant, a replayed run) may already have written it.
    A 412 then means: the same bytes (our own earlier attempt) -> deduplicated,
    other bytes -> KeyConflict. Stores not known to honor the header get a HEAD
    first (see `_head_first`); endpoints that answer 501 get HEAD, then PUT.
    """
    if _head_first(job, key) and (head := job.head(key)) is not None:
        return _existing(job, key, head, sha256, len(data))
    if _conditional(job):
        try:
            return _put_small(job, key, data, content_type, sha256, if_none_match=True)
        except TransferError as exc:
            if _precondition_failed(job, exc):
                return _existing(job, key, job.head(key), sha256, len(data))
            if not _refused_as(exc, _CONDITIONAL_UNSUPPORTED):
                raise
            setattr(job.backend, NO_CONDITIONAL_PUT_ATTR, True)
            if (head := job.head(key)) is not None:
                return _existing(job, key, head, sha256, len(data))
    job.check_cancel()
    return _put_small(job, key, data, content_type, sha256)


def _existing(
    job: _Job, key: str, head: dict[str, Any] | None, sha256: str, size: int
) -> CopyResult:
    """The key is taken: deduplicated if it holds exactly our bytes, else KeyConflict.

    Content-addressed keys hold their hash by construction. Other keys are
    compared by size, then by hashing the stored object (only on this rare path).
    """
    if head is None:  # gone between the refusal and the HEAD: let a retry write it
        raise StorageFailure("destination key changed during the write", retryable=True)
    is_cas = job.dest.key_strategy == KeyStrategy.CONTENT_ADDRESSABLE and not job.dest.key
    if not is_cas:
        same = int(head.get("ContentLength", -1)) == size and _stored_sha256(job, key) == sha256
        if not same:
            raise KeyConflict(
                "the destination key already holds other bytes; nothing was overwritten"
            )
    return _dedup_result(job, key, head, sha256)


def _stored_sha256(job: _Job, key: str) -> str:
    def read() -> str:
        body = job.client.get_object(Bucket=job.bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(1024 * 1024), b""):
            digest.update(chunk)
        return digest.hexdigest()

    return call_with_retries(read, what="GetObject", config=job.config)


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
        key=key,
        sha256=sha256,
        size=len(data),
        content_type=content_type,
        etag=resp.get("ETag"),
        deduplicated=False,
        bytes_uploaded=len(data),
        parts_uploaded=1,
        url=_durable_url(job.backend, key),
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
                # Re-read from byte 0 (the parts are checked, not re-sent): forget any
                # slice boundary, which this pass will write again as it goes.
                cp = replace(cp, offset=0, sha256_state=None)
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


def _send_multipart(
    job: _Job,
    upload: MultipartUpload,
    body: _Body,
    digest: _Digest,
    content_type: str | None,
    *,
    uploaded: int = 0,
) -> CopyResult | CopyPaused:
    """Send ``body``'s parts; complete, or (a bounded slice whose time is up) hand on.

    ``uploaded``: bytes earlier slices sent (so the result counts the whole copy).
    On a failure the upload is aborted unless the error is retryable and a
    checkpoint keeps it for the next attempt.
    """
    part_size = upload.checkpoint.part_size
    sent = _Sent(size=body.offset)
    sliced = job.may_slice(body) and isinstance(digest.hasher, ResumableSha256)
    deadline = cast(float, job.slice_deadline)

    def on_part(view: memoryview) -> None:
        sent.size += len(view)
        if digest.hasher is not None:
            digest.hasher.update(view)
        job.progress.add(len(view))

    def time_is_up() -> bool:
        return sent.size < cast(int, body.length) and time.monotonic() >= deadline

    try:
        n_parts = upload_parts(
            upload,
            body.read_part,
            part_size=part_size,
            concurrency=job.config.concurrency,
            buffers=job.config.part_buffers,
            first=body.first,
            first_len=body.first_len,
            on_part=on_part,
            should_cancel=job.should_cancel,
            first_number=body.offset // part_size,
            pause=time_is_up if sliced else None,
        )
        paused = sliced and sent.size < cast(int, body.length)
        if not paused:
            sha256 = digest.hexdigest()
            _verify(job, sha256, sent.size)
            job.check_cancel()
            key = upload.checkpoint.key
            if _head_first(job, key) and (head := job.head(key)) is not None:
                upload.abort()  # the store may not refuse for us: the equivalent check
                if job.store is not None and job.checkpoint_id is not None:
                    job.store.clear(job.checkpoint_id)
                return _existing(job, key, head, sha256, sent.size)
            resp = upload.complete(n_parts, if_none_match=_conditional(job))
    except BaseException as exc:
        keep = isinstance(exc, TransferError) and exc.retryable and job.store is not None
        if not keep:
            upload.abort()
        if _precondition_failed(job, exc):  # only CompleteMultipartUpload asks: sha256 is set
            if job.store is not None and job.checkpoint_id is not None:
                job.store.clear(job.checkpoint_id)
            key = upload.checkpoint.key
            return _existing(job, key, job.head(key), sha256, sent.size)
        if _refused_as(exc, _CONDITIONAL_UNSUPPORTED):
            setattr(job.backend, NO_CONDITIONAL_PUT_ATTR, True)  # the retry takes HEAD + PUT
            raise StorageFailure("store refuses conditional writes", retryable=True) from exc
        if isinstance(exc, TransferError) or not isinstance(exc, Exception):
            raise
        raise map_storage_error(exc, "multipart upload") from exc
    if paused:
        # Outside the handler above: a store that fails this write raises its own error
        # and the upload stays for the next delivery (which resumes from older state).
        upload.save_slice_boundary(
            sent.size,
            cast(ResumableSha256, digest.hasher).state(),
            uploaded + upload.bytes_uploaded,
            expected_sha256=job.expected_sha256,
        )
        return CopyPaused(
            bytes_done=sent.size,
            bytes_total=body.length,
            bytes_uploaded=upload.bytes_uploaded,
        )
    if job.store is not None and job.checkpoint_id is not None:
        job.store.clear(job.checkpoint_id)
    key = upload.checkpoint.key
    return CopyResult(
        key=key,
        sha256=sha256,
        size=sent.size,
        content_type=content_type,
        etag=resp.get("ETag"),
        deduplicated=False,
        bytes_uploaded=uploaded + upload.bytes_uploaded,
        parts_uploaded=upload.parts_uploaded,
        url=_durable_url(job.backend, key),
    )


def _copy_to_known_key(
    job: _Job, src: SourceStream, key: str, content_type: str | None
) -> CopyResult | CopyPaused:
    part_size = choose_part_size(
        src.length, minimum=job.config.part_size, fallback_max=job.policy.max_source_bytes
    )
    first = bytearray(part_size if src.length is None else min(part_size, src.length))
    first_len = src.read_into(first)
    resumable = job.store is not None and job.store.load(cast(str, job.checkpoint_id)) is not None
    if first_len < part_size and not resumable:
        view = memoryview(first)[:first_len]
        hasher = hashlib.sha256(view)
        job.progress.add(first_len)
        sha256 = hasher.hexdigest()
        _verify(job, sha256, first_len)
        job.check_cancel()
        return _put_small_new(job, key, view, content_type, sha256)
    body = _Body(
        read_part=src.read_into,
        validators=src.validators,
        length=src.length,
        first=first,
        first_len=first_len,
    )
    # A copy that may be sliced hashes with a state it can save (slower: see hashing.py).
    digest = _Digest(hasher=ResumableSha256() if job.may_slice(body) else hashlib.sha256())
    upload = _start_or_resume(job, key, part_size, src.validators, content_type)
    return _send_multipart(job, upload, body, digest, content_type)


def _copy_spooled(
    job: _Job, src: SourceStream, content_type: str | None
) -> CopyResult | CopyPaused:
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
        # The spool is local to this process: its upload runs to the end in this call.
        unsliced = replace(job, slice_deadline=None)
        upload = _start_or_resume(unsliced, key, part_size, src.validators, content_type)
        body = _Body(
            read_part=lambda b: file.readinto(b) or 0,
            validators=src.validators,
            length=size,
        )
        return _send_multipart(unsliced, upload, body, _Digest(known=sha256), content_type)
