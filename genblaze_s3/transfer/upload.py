"""The store side of a copy: one PutObject for a small body, or a multipart upload
that completes, or (a bounded slice whose time is up) hands on with its checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import replace
from typing import Any, cast
from urllib.parse import urlsplit

from genblaze_core.storage.base import KeyStrategy

from genblaze_s3.backend.lean import lean_s3_for
from genblaze_s3.transfer.checkpoint import SourceValidators
from genblaze_s3.transfer.copy_job import (
    Body,
    CopyJob,
    Digest,
    Sent,
    dedup_result,
    durable_url,
    verify,
)
from genblaze_s3.transfer.errors import (
    CheckpointStoreUnavailable,
    KeyConflict,
    StorageFailure,
    TransferError,
    map_storage_error,
    s3_error_code,
)
from genblaze_s3.transfer.hashing import ResumableSha256
from genblaze_s3.transfer.models import (
    CopyPaused,
    CopyResult,
)
from genblaze_s3.transfer.multipart import (
    MultipartUpload,
    b64_of_hex_digest,
    call_with_retries,
    install_part_signing_hook,
)
from genblaze_s3.transfer.pipeline import upload_parts

logger = logging.getLogger("genblaze_s3.transfer")


_PRECONDITION_FAILED = ("PreconditionFailed", "412")
_CONDITIONAL_UNSUPPORTED = ("NotImplemented", "501")
# Set on a backend whose endpoint answered a conditional PUT with "not implemented":
# that backend gets HEAD + PUT from then on (kept per backend object, not per process).
NO_CONDITIONAL_PUT_ATTR = "_genblaze_no_conditional_put"


def put_small_cas(
    job: CopyJob, key: str, data: memoryview, content_type: str | None, sha256: str
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
            return put_small(job, key, data, content_type, sha256, if_none_match=True)
        except TransferError as exc:
            code = s3_error_code(exc.__cause__) if exc.__cause__ is not None else None
            if code in _CONDITIONAL_UNSUPPORTED:
                setattr(job.backend, NO_CONDITIONAL_PUT_ATTR, True)
            elif code not in _PRECONDITION_FAILED:
                raise
    head = job.head(key)
    if head is not None:
        return dedup_result(job, key, head, sha256)
    job.check_cancel()
    return put_small(job, key, data, content_type, sha256)


def _endpoint(job: CopyJob) -> str:
    return str(getattr(job.client.meta, "endpoint_url", ""))


def _conditional(job: CopyJob) -> bool:
    """Whether writes to this backend carry ``If-None-Match: *`` (all but refusers)."""
    return not getattr(job.backend, NO_CONDITIONAL_PUT_ATTR, False)


# Stores documented to refuse a conditional write to an existing key with 412. Any
# other backend is marked (HONORS_CONDITIONAL_PUT_ATTR) the first time it answers 412.
_KNOWN_CONDITIONAL_HOSTS = (".amazonaws.com", ".r2.cloudflarestorage.com")
HONORS_CONDITIONAL_PUT_ATTR = "_genblaze_honors_conditional_put"


def _head_first(job: CopyJob, key: str) -> bool:
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


def _precondition_failed(job: CopyJob, exc: BaseException) -> bool:
    """A 412 to our ``If-None-Match``: the key exists (and the store is proven to honor it)."""
    if _refused_as(exc, _PRECONDITION_FAILED):
        setattr(job.backend, HONORS_CONDITIONAL_PUT_ATTR, True)
        return True
    return False


def _refused_as(exc: BaseException, codes: tuple[str, ...]) -> bool:
    cause = exc.__cause__ if isinstance(exc, TransferError) else exc
    return cause is not None and s3_error_code(cause) in codes


def put_small_new(
    job: CopyJob, key: str, data: memoryview, content_type: str | None, sha256: str
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
            return put_small(job, key, data, content_type, sha256, if_none_match=True)
        except TransferError as exc:
            if _precondition_failed(job, exc):
                return _existing(job, key, job.head(key), sha256, len(data))
            if not _refused_as(exc, _CONDITIONAL_UNSUPPORTED):
                raise
            setattr(job.backend, NO_CONDITIONAL_PUT_ATTR, True)
            if (head := job.head(key)) is not None:
                return _existing(job, key, head, sha256, len(data))
    job.check_cancel()
    return put_small(job, key, data, content_type, sha256)


def _existing(
    job: CopyJob, key: str, head: dict[str, Any] | None, sha256: str, size: int
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
    return dedup_result(job, key, head, sha256)


def _stored_sha256(job: CopyJob, key: str) -> str:
    def read() -> str:
        body = job.client.get_object(Bucket=job.bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(1024 * 1024), b""):
            digest.update(chunk)
        return digest.hexdigest()

    return call_with_retries(read, what="GetObject", config=job.config)


def put_small(
    job: CopyJob,
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
    lean = lean_s3_for(job.client)
    if lean is not None and lean.accepts(params):
        # botocore's request pipeline is most of a small PUT's CPU (backend/lean/);
        # its signature covers the payload with the hash already known (no second pass).
        resp = call_with_retries(
            lambda: lean.put(params, sha256_hex=sha256), what="PutObject", config=job.config
        )
    else:
        if job.checksums and job.config.unsigned_checksummed_parts:
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
        url=durable_url(job.backend, key),
    )


def start_or_resume(
    job: CopyJob, key: str, part_size: int, source: SourceValidators, content_type: str | None
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


def send_multipart(
    job: CopyJob,
    upload: MultipartUpload,
    body: Body,
    digest: Digest,
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
    sent = Sent(size=body.offset)
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
            verify(job, sha256, sent.size)
            job.check_cancel()
            key = upload.checkpoint.key
            if _head_first(job, key) and (head := job.head(key)) is not None:
                upload.abort()  # the store may not refuse for us: the equivalent check
                if job.store is not None and job.checkpoint_id is not None:
                    job.store.clear(job.checkpoint_id)
                return _existing(job, key, head, sha256, sent.size)
            resp = upload.complete(n_parts, if_none_match=_conditional(job))
    except BaseException as exc:
        if isinstance(exc, CheckpointStoreUnavailable):
            raise  # the caller hands the work back; the upload stays for the resume
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
        url=durable_url(job.backend, key),
    )
