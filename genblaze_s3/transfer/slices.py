"""Bounded slices: where a copy stopped, and how the next call goes on from there.

A slice boundary is a checkpoint with ``offset`` and the SHA-256 state. The next
call asks for ``Range: bytes=<offset>-`` with ``If-Range`` (a changed source then
answers 200 with its new body, which the validators reject: the copy starts over
rather than stitching two versions). A source that ignores Range is read from the
start and the first ``offset`` bytes are discarded: one extra download of what
earlier slices read, nothing hashed or uploaded twice. The hash pass of a refetch
CAS copy leaves a hash-phase checkpoint (no upload yet) the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import cast

from genblaze_s3.transfer.checkpoint import Checkpoint, CheckpointStore, SourceValidators
from genblaze_s3.transfer.copy_job import Body, CopyJob, Digest
from genblaze_s3.transfer.errors import (
    SourceTruncated,
)
from genblaze_s3.transfer.fetch import Fetcher, SourceStream
from genblaze_s3.transfer.hashing import ResumableSha256, hash_stream
from genblaze_s3.transfer.models import (
    CopyPaused,
    CopyResult,
)
from genblaze_s3.transfer.multipart import (
    MultipartUpload,
    abort_checkpointed_upload,
)
from genblaze_s3.transfer.upload import send_multipart

logger = logging.getLogger("genblaze_s3.transfer")


HASH_PHASE = "hash"
_HASH_BLOCK = 8 * 1024 * 1024


def hash_pass(
    job: CopyJob,
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
        span = range_start_and_total(src.content_range)
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


def continue_hash_pass(
    job: CopyJob, fetcher: Fetcher, url: str, cp: Checkpoint
) -> tuple[str, SourceValidators, str | None] | CopyPaused | None:
    """Go on hashing where the previous slice stopped; None: the source changed, start over.

    Returns (sha256, validators, content type) once the whole body is hashed.
    """
    store, cp_id = cast(CheckpointStore, job.store), cast(str, job.checkpoint_id)
    with job.watch(fetcher.open(url, headers=_range_headers(cp))) as src:
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
        hashed = hash_pass(
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


def slice_boundary(job: CopyJob) -> Checkpoint | None:
    """The checkpoint of a slice that handed on (offset and hash state), if any."""
    if job.store is None or job.checkpoint_id is None:
        return None
    cp = job.store.load(job.checkpoint_id)
    job.checkpoint_absent = cp is None
    if cp is None or cp.offset <= 0 or cp.sha256_state is None:
        return None
    return cp


def range_start_and_total(content_range: str | None) -> tuple[int, int] | None:
    """(start, total) of a ``bytes START-END/TOTAL`` header, else None."""
    if not content_range or not content_range.startswith("bytes "):
        return None
    span, _, total = content_range[6:].partition("/")
    start, _, _end = span.partition("-")
    try:
        return int(start), int(total)
    except ValueError:
        return None


def continue_upload(
    job: CopyJob, fetcher: Fetcher, url: str, cp: Checkpoint
) -> CopyResult | CopyPaused | None:
    """Go on from the byte where the previous slice stopped; None: start over instead.

    ``If-Range`` makes a changed source answer 200 with its new body, which the
    validators then reject: the old upload is aborted and the copy starts over
    rather than stitching two versions together.
    """
    caller = job
    if cp.expected_sha256 is not None:  # a refetch's upload pass: its hash pass pinned it
        job = replace(job, expected_sha256=cp.expected_sha256)
    with job.watch(fetcher.open(url, headers=_range_headers(cp))) as src:
        validators = _continuation(src, cp)
        caller.source_seen = validators  # fetch provenance, seen by copy_url
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
        body = Body(
            read_part=src.read_into,
            validators=cp.source,
            length=cp.source.length,
            offset=cp.offset,
        )
        digest = Digest(hasher=ResumableSha256.from_state(cast(str, cp.sha256_state)))
        content_type = src.content_type
        return send_multipart(job, upload, body, digest, content_type, uploaded=cp.bytes_uploaded)


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
