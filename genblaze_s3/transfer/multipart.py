"""Resumable multipart upload: one object owns the upload id, its parts and its checkpoint.

Why this shape (after s3transfer's CreateMultipartUploadTask): the moment
CreateMultipartUpload returns an id, the id is written to the checkpoint, so
neither a crash nor an exception can orphan it -- either a later attempt resumes
it, or :meth:`MultipartUpload.abort` (called by the owner on any permanent
failure) removes it. Parts are retried here, each in a bounded loop with the
package's one backoff policy (`genblaze_s3.backoff`) on transient S3 errors only.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from genblaze_s3.backoff import backoff_delay
from genblaze_s3.transfer.checkpoint import (
    Checkpoint,
    CheckpointStore,
    PartRecord,
    SourceValidators,
)
from genblaze_s3.transfer.config import MAX_PART_SIZE, MAX_PARTS, CopyConfig
from genblaze_s3.transfer.errors import (
    is_retryable_storage_error,
    map_storage_error,
    s3_error_code,
)

logger = logging.getLogger("genblaze_s3.transfer")
T = TypeVar("T")


def choose_part_size(
    size: int | None, *, minimum: int, fallback_max: int, max_parts: int = MAX_PARTS
) -> int:
    """The smallest power-of-two multiple of ``minimum`` that keeps ``size`` within max_parts.

    When the size is unknown (no Content-Length), plan for ``fallback_max`` (the
    source size cap), so even the largest allowed body fits in 10,000 parts.
    """
    planned = size if size is not None else fallback_max
    part = minimum
    while part * max_parts < planned and part < MAX_PART_SIZE:
        part *= 2
    return min(part, MAX_PART_SIZE)


def sha256_b64(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def b64_of_hex_digest(hex_digest: str) -> str:
    """An already computed SHA-256 (hex) in the x-amz-checksum-sha256 spelling."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def call_with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    config: CopyConfig,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run an S3 call, retrying transient failures; raise StorageFailure with the last cause."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            if attempt >= config.max_part_attempts or not is_retryable_storage_error(exc):
                raise map_storage_error(exc, what) from exc
            delay = backoff_delay(attempt, base=config.backoff_base, cap=config.backoff_cap)
            logger.info(
                "%s failed (%s), retry %d in %.2fs", what, s3_error_code(exc), attempt, delay
            )
            sleep(delay)


def _skip_redundant_payload_hash(request: Any, **_: Any) -> None:
    """An UploadPart that carries ``x-amz-checksum-sha256`` is verified by the server
    against that checksum; SigV4-hashing the same bytes again (botocore always does
    on http endpoints) is a redundant SHA-256 pass over every byte. Sign it
    UNSIGNED-PAYLOAD instead, unless the client's config decided explicitly.
    """
    from botocore.config import Config

    if "x-amz-checksum-sha256" not in request.headers:
        return
    cfg = request.context.get("client_config")
    if cfg is None:
        return
    s3 = dict(getattr(cfg, "s3", None) or {})
    if s3.get("payload_signing_enabled") is not None:
        return
    s3["payload_signing_enabled"] = False
    request.context["client_config"] = cfg.merge(Config(s3=s3))


def install_part_signing_hook(client: Any) -> None:
    """Register :func:`_skip_redundant_payload_hash` once per client (idempotent).

    Only UploadPart and PutObject, and only requests that carry a SHA-256
    checksum header, are affected; every other request is signed as before.
    """
    for op in ("UploadPart", "PutObject"):
        client.meta.events.register(
            f"before-sign.s3.{op}",
            _skip_redundant_payload_hash,
            unique_id=f"genblaze-s3-skip-payload-hash-{op}",
        )


class MultipartUpload:
    """One multipart upload of one key: id, parts, checkpoint. Thread-safe part uploads."""

    def __init__(
        self,
        client: Any,
        checkpoint: Checkpoint,
        *,
        config: CopyConfig,
        store: CheckpointStore | None,
        checkpoint_id: str | None,
    ) -> None:
        self.client = client
        self.config = config
        self._cp = checkpoint
        self._store = store
        self._cp_id = checkpoint_id
        self._lock = threading.Lock()
        self._parts: dict[int, PartRecord] = {p.number: p for p in checkpoint.parts}
        self.bytes_uploaded = 0
        self.parts_uploaded = 0
        self.closed = False

    # -- lifecycle ------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        client: Any,
        *,
        bucket: str,
        key: str,
        part_size: int,
        source: SourceValidators,
        extra: dict[str, Any],
        checksum_sha256: bool,
        config: CopyConfig,
        store: CheckpointStore | None,
        checkpoint_id: str | None,
    ) -> MultipartUpload:
        """CreateMultipartUpload and record the id at once (the cleanup handle)."""
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, **extra}
        if checksum_sha256:
            params["ChecksumAlgorithm"] = "SHA256"
            if config.unsigned_checksummed_parts:
                install_part_signing_hook(client)
        resp = call_with_retries(
            lambda: client.create_multipart_upload(**params),
            what="CreateMultipartUpload",
            config=config,
        )
        cp = Checkpoint(
            bucket=bucket,
            key=key,
            upload_id=str(resp["UploadId"]),
            part_size=part_size,
            source=source,
            checksum_sha256=checksum_sha256,
        )
        upload = cls(client, cp, config=config, store=store, checkpoint_id=checkpoint_id)
        upload._save()
        return upload

    @classmethod
    def resume(
        cls,
        client: Any,
        cp: Checkpoint,
        *,
        config: CopyConfig,
        store: CheckpointStore | None,
        checkpoint_id: str | None,
    ) -> MultipartUpload | None:
        """Rebuild from a checkpoint, trusting ListParts over the checkpoint's part list.

        Returns None when the server no longer knows the upload (aborted or expired).
        """
        parts: list[PartRecord] = []
        recorded = {p.number: p for p in cp.parts}
        marker = 0
        try:
            while True:
                resp: dict[str, Any] = call_with_retries(
                    functools.partial(
                        client.list_parts,
                        Bucket=cp.bucket,
                        Key=cp.key,
                        UploadId=cp.upload_id,
                        PartNumberMarker=marker,
                    ),
                    what="ListParts",
                    config=config,
                )
                for p in resp.get("Parts", []):
                    number, etag = int(p["PartNumber"]), str(p["ETag"])
                    # Some stores (SeaweedFS) list no checksums: the checkpoint's record of
                    # the same part (same ETag) has it, as CompleteMultipartUpload needs.
                    known = recorded.get(number)
                    same = known is not None and known.etag == etag
                    parts.append(
                        PartRecord(
                            number=number,
                            etag=etag,
                            size=int(p["Size"]),
                            checksum_sha256=p.get("ChecksumSHA256")
                            or (known.checksum_sha256 if same and known else None),
                        )
                    )
                if not resp.get("IsTruncated"):
                    break
                marker = int(resp.get("NextPartNumberMarker") or 0)
                if marker == 0:
                    break
        except Exception as exc:
            if s3_error_code(exc.__cause__ or exc) in ("NoSuchUpload", "404"):
                return None
            raise
        restored = replace(cp, parts=tuple(sorted(parts, key=lambda p: p.number)))
        if cp.checksum_sha256 and config.unsigned_checksummed_parts:
            install_part_signing_hook(client)
        return cls(client, restored, config=config, store=store, checkpoint_id=checkpoint_id)

    @property
    def checkpoint(self) -> Checkpoint:
        return self._cp

    @property
    def upload_id(self) -> str:
        return self._cp.upload_id

    def existing_part(self, number: int) -> PartRecord | None:
        with self._lock:
            return self._parts.get(number)

    def adopt_part(self, number: int, data: memoryview) -> None:
        """Keep a part the server already has; fill in its checksum if ListParts omitted it."""
        with self._lock:
            part = self._parts[number]
            if self._cp.checksum_sha256 and part.checksum_sha256 is None:
                self._parts[number] = replace(part, checksum_sha256=sha256_b64(data))

    def _save(self) -> None:
        if self._store is None or self._cp_id is None:
            return
        with self._lock:
            cp = replace(
                self._cp, parts=tuple(sorted(self._parts.values(), key=lambda p: p.number))
            )
        try:
            self._store.save(self._cp_id, cp)
        except Exception:  # a lost checkpoint write costs a re-upload, never the copy
            logger.warning("checkpoint save failed for %s", self._cp.key, exc_info=True)

    def save_slice_boundary(
        self,
        offset: int,
        sha256_state: str,
        bytes_uploaded: int,
        *,
        expected_sha256: str | None = None,
    ) -> None:
        """Record where a bounded slice stopped: every part below ``offset`` is uploaded.

        The next slice restores the hash from ``sha256_state`` and asks the source
        for ``offset`` onwards. Unlike a part's checkpoint write, a failed write
        here raises: a continuation without it would re-read from an older point.
        """
        with self._lock:
            self._cp = replace(
                self._cp,
                parts=tuple(sorted(self._parts.values(), key=lambda p: p.number)),
                offset=offset,
                sha256_state=sha256_state,
                bytes_uploaded=bytes_uploaded,
                expected_sha256=expected_sha256,
            )
            cp = self._cp
        if self._store is not None and self._cp_id is not None:
            self._store.save(self._cp_id, cp)

    # -- parts ----------------------------------------------------------------------
    def upload_part(self, number: int, data: bytes | bytearray | memoryview) -> PartRecord:
        """UploadPart with retries; record and checkpoint the part."""
        cp = self._cp
        params: dict[str, Any] = {
            "Bucket": cp.bucket,
            "Key": cp.key,
            "UploadId": cp.upload_id,
            "PartNumber": number,
            # botocore takes bytes/bytearray bodies; a short last-part view is copied.
            "Body": bytes(data) if isinstance(data, memoryview) else data,
            "ContentLength": len(data),
        }
        checksum = None
        if cp.checksum_sha256:
            checksum = sha256_b64(data)
            params["ChecksumSHA256"] = checksum
        resp = call_with_retries(
            lambda: self.client.upload_part(**params),
            what=f"UploadPart {number}",
            config=self.config,
        )
        record = PartRecord(number, str(resp["ETag"]), len(data), checksum)
        with self._lock:
            self._parts[number] = record
            self.bytes_uploaded += len(data)
            self.parts_uploaded += 1
        self._save()
        return record

    def complete(self, total_parts: int, *, if_none_match: bool = False) -> dict[str, Any]:
        """CompleteMultipartUpload with parts 1..total_parts; returns the S3 response.

        `if_none_match`: only if the key does not exist yet (412 PreconditionFailed
        otherwise; the upload stays open for the caller to abort).
        """
        conditional = {"IfNoneMatch": "*"} if if_none_match else {}
        with self._lock:
            parts = [self._parts[n] for n in range(1, total_parts + 1)]
        listed = []
        for p in parts:
            item: dict[str, Any] = {"PartNumber": p.number, "ETag": p.etag}
            if self._cp.checksum_sha256 and p.checksum_sha256:
                item["ChecksumSHA256"] = p.checksum_sha256
            listed.append(item)
        cp = self._cp

        def _complete() -> dict[str, Any]:
            try:
                return dict(
                    self.client.complete_multipart_upload(
                        Bucket=cp.bucket,
                        Key=cp.key,
                        UploadId=cp.upload_id,
                        MultipartUpload={"Parts": listed},
                        **conditional,
                    )
                )
            except Exception as exc:
                # A retry after a lost response sees NoSuchUpload though the object
                # was assembled: accept it if the key now exists with our part count.
                if s3_error_code(exc) == "NoSuchUpload":
                    head = self.client.head_object(Bucket=cp.bucket, Key=cp.key)
                    tag = str(head.get("ETag", ""))
                    if tag.strip('"').endswith(f"-{total_parts}"):
                        return {"ETag": tag}
                raise

        resp = call_with_retries(_complete, what="CompleteMultipartUpload", config=self.config)
        self.closed = True
        return resp

    def abort(self) -> None:
        """AbortMultipartUpload (best effort, retried); the id's cleanup, always safe to call."""
        if self.closed:
            return
        cp = self._cp
        if not cp.upload_id:  # a hash-pass checkpoint: nothing was uploaded yet
            self.closed = True
            if self._store is not None and self._cp_id is not None:
                self._store.clear(self._cp_id)
            return
        try:
            call_with_retries(
                lambda: self.client.abort_multipart_upload(
                    Bucket=cp.bucket, Key=cp.key, UploadId=cp.upload_id
                ),
                what="AbortMultipartUpload",
                config=self.config,
            )
        except Exception as exc:
            if s3_error_code(exc.__cause__ or exc) not in ("NoSuchUpload", "404"):
                logger.warning("abort of %s failed; bucket lifecycle must reap it", cp.key)
        self.closed = True
        if self._store is not None and self._cp_id is not None:
            self._store.clear(self._cp_id)


def abort_checkpointed_upload(
    client: Any, store: CheckpointStore, checkpoint_id: str, *, config: CopyConfig | None = None
) -> bool:
    """Abort the upload a checkpoint names and clear it (for a job that will not be retried).

    Returns True when there was a checkpoint. Safe to call twice.
    """
    cp = store.load(checkpoint_id)
    if cp is None:
        return False
    upload = MultipartUpload(
        client, cp, config=config or CopyConfig(), store=store, checkpoint_id=checkpoint_id
    )
    upload.abort()
    return True
