"""Write the manifest and its DSSE envelope, exactly once, locked (finalize's I/O).

The manifest is put the way genblaze-core's ``ObjectStorageSink._write_run_impl``
puts it (canonical JSON at ``manifest_key_for(run)``, its Cache-Control and Object
Lock arguments), so ``ObjectStorageSink(...).read_manifest(run)`` verifies it; with a
signer, the envelope (:mod:`.attestation`) goes beside it with the same lock.

Why the envelope costs little: it is computed and put while the manifest uploads
(the upload waits on the network, not the GIL), and the two keys are checked for
existing objects in parallel (bench/bench_finalize.py measures it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from genblaze_core.models.manifest import Manifest
from genblaze_core.storage.base import KeyStrategy, ObjectLockConfig
from genblaze_core.storage.sink import ObjectStorageSink

from genblaze_s3.backend import s3errors
from genblaze_s3.backend.errors import storage_errors
from genblaze_s3.backend.lean import (
    head_object,
    head_object_or_none,
    lean_s3_for,
    plain_key,
    put_object,
)
from genblaze_s3.ingest.finalize.attestation import (
    ENVELOPE_CONTENT_TYPE,
    EnvelopeError,
    check_envelope,
    s3_uri,
    sign_envelope,
)
from genblaze_s3.ingest.finalize.document import _fill, _same_run_content, manifest_document
from genblaze_s3.ingest.finalize.record import (
    IngestRecord,
    LockRecord,
    envelope_key_for,
    record_of,
)
from genblaze_s3.ingest.finalize.signing import ManifestSigner
from genblaze_s3.ingest.models import AssetRecord, JobMeta, ManifestInfo

logger = logging.getLogger("genblaze_s3.ingest.finalize.write")


class ManifestConflict(Exception):
    """The manifest key holds another job's manifest (same run ids, other content)."""


def _sink_for(backend: Any, meta: JobMeta) -> ObjectStorageSink:
    lock = meta.manifest_lock
    return ObjectStorageSink(
        backend,
        prefix=meta.destination.prefix,
        key_strategy=KeyStrategy(meta.destination.key_strategy),
        manifest_lock=ObjectLockConfig(retain_until=lock.retain_until, mode=lock.mode)  # type: ignore[arg-type]
        if lock
        else None,
    )


def _exists(backend: Any, key: str) -> bool:
    """``backend.exists(key)``, answered as it answers (404 and 403: absent)."""
    client = getattr(backend, "client", None)  # a backend may be no boto3 one at all
    if client is None or lean_s3_for(client) is None or not plain_key(key):
        return bool(backend.exists(key))
    try:
        found = head_object_or_none(client, backend.bucket, key)  # 404: None, no error built
    except ClientError as exc:
        if s3errors.is_access_denied(exc):
            return False
        return bool(backend.exists(key))  # anything else: the backend's own answer and errors
    return found is not None


def _put(
    backend: Any,
    key: str,
    body: bytes,
    content_type: str,
    extra: dict[str, Any],
    *,
    pin_checksum: bool = False,
) -> None:
    """``backend.put(key, body, content_type=..., extra_args=extra)``: on the lean path
    (`backend.lean.put_object`) where the backend's client and the key allow it, with
    what ``backend.put`` would send (its SHA-256 checksum where the store takes one, the
    lock and Cache-Control in the PUT itself); else through the backend. `pin_checksum`:
    the body's SHA-256 goes with it whatever the store (and one PutObject, never parts)."""
    client = getattr(backend, "client", None)  # a backend may be no boto3 one at all
    connection = getattr(backend, "connection", None)
    if client is None or connection is None or lean_s3_for(client) is None or not plain_key(key):
        pinned = _checksum(hashlib.sha256(body).digest()) if pin_checksum else {}
        backend.put(key, body, content_type=content_type, extra_args={**extra, **pinned})
        return
    connection.ready()  # the bucket's preflight, once, as backend.put runs it
    digest = hashlib.sha256(body).digest()
    params = {"Bucket": backend.bucket, "Key": key, "Body": body, "ContentType": content_type}
    params.update(extra)
    if pin_checksum or getattr(backend, "supports_sha256_checksums", False):
        params.update(_checksum(digest))
    with storage_errors("put", key):
        put_object(client, params, sha256_hex=digest.hex())


def _checksum(digest: bytes) -> dict[str, str]:
    """A PutObject's SHA-256 checksum parameters, from the body's digest."""
    return {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": base64.b64encode(digest).decode()}


def _retain_until(backend: Any, key: str) -> datetime | None:
    """The lock actually on the stored manifest (the truth, also after a redelivery)."""
    try:
        head = head_object(backend.client, backend.bucket, key)  # twice a run: the lean path
    except Exception:  # head is best effort: the manifest itself is written
        return None
    value = head.get("ObjectLockRetainUntilDate")
    return value if isinstance(value, datetime) else None


def _record(meta: JobMeta, key: str, signer: ManifestSigner | None) -> IngestRecord:
    lock = meta.manifest_lock
    return IngestRecord(
        job_id=meta.job_id,
        tenant=meta.tenant,
        bucket=meta.destination.bucket,
        manifest_key=key,
        key_strategy=str(meta.destination.key_strategy),
        lock=LockRecord(mode=lock.mode, retain_until=lock.retain_until) if lock else None,
        envelope_key=envelope_key_for(key) if signer is not None else None,
        key_id=signer.key_id if signer is not None else None,
        signed_at=datetime.now(UTC) if signer is not None else None,
    )


def write_manifest(
    backend: Any,
    meta: JobMeta,
    payload: str,
    assets: dict[str, AssetRecord],
    *,
    signer: ManifestSigner | None = None,
) -> ManifestInfo:
    """Put the manifest (and, signed, its DSSE envelope) unless one exists; returns its
    key, URL and lock.

    Both objects get the job's Object Lock; both are put at once. Neither overwrites
    an object. A delivery that died between the two puts is finished by the next:
    a stored manifest gets its envelope rebuilt from its bytes (all the envelope is
    a function of); an envelope without its manifest, signed by this job with this
    key, gets the manifest it attests (rebuilt with the envelope's signing time:
    the same bytes, the signature is deterministic), and any other object at the
    envelope key is a conflict (nothing is written).
    """
    manifest = Manifest.model_validate_json(payload)
    sink = _sink_for(backend, meta)
    key = sink.manifest_key_for(manifest.run)
    record = _record(meta, key, signer)
    extra: dict[str, Any] = {"CacheControl": sink._manifest_cache_control()}
    if sink._manifest_object_lock is not None:
        extra.update(sink._manifest_object_lock.to_extra_args())
    with ThreadPoolExecutor(2, thread_name_prefix="finalize") as pool:
        envelope_taken = (
            pool.submit(backend.exists, record.envelope_key) if record.envelope_key else None
        )
        if _exists(backend, key):
            # Ours from an earlier delivery, or the same run replayed with the same bytes
            # (its fetch provenance and signature differ, its content does not):
            # recorded, not rewritten. Another run's manifest at the same key: never
            # overwritten, never claimed as ours.
            _fill(manifest, assets, record)
            stored = backend.get(key)
            if not _same_run_content(stored, manifest):
                raise ManifestConflict(key)
            _finish_envelope(backend, meta, key, stored, signer, extra)
            locked = _retain_until(backend, key) if meta.manifest_lock else None
            record = _stored_record(stored) or record.model_copy(
                update={"envelope_key": None, "key_id": None}
            )
        elif signer is not None and envelope_taken is not None and envelope_taken.result():
            locked = _write_attested(backend, meta, manifest, assets, record, signer, extra)
        else:
            _fill(manifest, assets, record, rehash=False)  # manifest_document hashes
            locked = _write_new(pool, backend, meta, manifest, record, signer, extra)
    return ManifestInfo(
        key=key,
        url=backend.get_durable_url(key),
        locked_until=locked,
        envelope_key=record.envelope_key,
        key_id=record.key_id if record.envelope_key else None,
    )


def _stored_record(stored: bytes) -> IngestRecord | None:
    """The ingest record of a manifest already in the bucket (None: none, or unreadable)."""
    try:
        return record_of(json.loads(stored))
    except ValueError:
        return None


def _write_new(
    pool: ThreadPoolExecutor,
    backend: Any,
    meta: JobMeta,
    manifest: Manifest,
    record: IngestRecord,
    signer: ManifestSigner | None,
    extra: dict[str, Any],
) -> datetime | None:
    """Put a fresh manifest and its envelope; the lock actually on the manifest.

    The envelope is computed and put while the manifest uploads (the upload waits
    on the network, not the GIL): signing costs little more than its CPU.
    """
    key = record.manifest_key
    document, body = manifest_document(manifest, signer)
    if signer is None or record.envelope_key is None:
        _put(backend, key, body, "application/json", extra)
        logger.info("job %s: manifest written at %s", meta.job_id, key)
        return _retain_until(backend, key) if meta.manifest_lock else None
    upload = pool.submit(_put, backend, key, body, "application/json", extra)
    try:
        envelope = sign_envelope(signer, document, body, record.bucket, key)
        _put_envelope(backend, record.envelope_key, envelope, extra)
    finally:
        upload.result()  # the manifest's own error first, when both failed
    logger.info("job %s: manifest and envelope written at %s", meta.job_id, key)
    return _retain_until(backend, key) if meta.manifest_lock else None


def _write_attested(
    backend: Any,
    meta: JobMeta,
    manifest: Manifest,
    assets: dict[str, AssetRecord],
    record: IngestRecord,
    signer: ManifestSigner,
    extra: dict[str, Any],
) -> datetime | None:
    """The envelope is there, its manifest is not: put the manifest it attests, if ours."""
    envelope_key = str(record.envelope_key)
    attested = _own_envelope(backend, meta, record, signer)
    if attested is None:
        raise ManifestConflict(envelope_key)
    signed_at, digest = attested
    record = record.model_copy(update={"signed_at": signed_at})
    _fill(manifest, assets, record, rehash=False)  # manifest_document hashes
    _, body = manifest_document(manifest, signer)
    if hashlib.sha256(body).hexdigest() != digest:
        raise ManifestConflict(envelope_key)  # the records changed since: not that manifest
    _put(backend, record.manifest_key, body, "application/json", extra)
    logger.info("job %s: manifest written at %s (envelope was first)", meta.job_id, envelope_key)
    return _retain_until(backend, record.manifest_key) if meta.manifest_lock else None


def _own_envelope(
    backend: Any, meta: JobMeta, record: IngestRecord, signer: ManifestSigner
) -> tuple[datetime, str] | None:
    """(signing time, manifest digest) of an envelope this job and key wrote, else None."""
    try:
        raw = backend.get(str(record.envelope_key))
        check = check_envelope(raw, {signer.key_id: signer.public_key})
        predicate = check.statement["predicate"]
        mine = (
            signer.key_id in check.valid_key_ids
            and predicate["job_id"] == meta.job_id
            and predicate["manifest"]["object"] == s3_uri(record.bucket, record.manifest_key)
        )
        if not mine:
            return None
        signed_at = datetime.fromisoformat(str(predicate["signed_at"]).replace("Z", "+00:00"))
        return signed_at, str(predicate["manifest"]["sha256"])
    except (EnvelopeError, KeyError, TypeError, ValueError):
        return None


def _finish_envelope(
    backend: Any,
    meta: JobMeta,
    key: str,
    stored: bytes,
    signer: ManifestSigner | None,
    extra: dict[str, Any],
) -> None:
    """Write the envelope an earlier delivery of this job meant to write and did not.

    Only for a manifest this job wrote (its record names this job, an envelope key
    and this signer's key id): a replayed run's manifest keeps whatever it has.
    """
    if signer is None:
        return
    try:
        document = json.loads(stored)
        record = record_of(document)
    except ValueError:
        return
    if (
        record is None
        or record.job_id != meta.job_id
        or record.envelope_key is None
        or record.key_id != signer.key_id
        or backend.exists(record.envelope_key)
    ):
        return
    envelope = sign_envelope(signer, document, stored, record.bucket, key)
    _put(backend, record.envelope_key, envelope, ENVELOPE_CONTENT_TYPE, extra)
    logger.info("job %s: envelope written at %s", meta.job_id, record.envelope_key)


def _put_envelope(backend: Any, key: str, envelope: bytes, extra: dict[str, Any]) -> None:
    """One PutObject with the manifest's lock and a pinned SHA-256 (the store checks the
    bytes it keeps; a single request, not a transfer manager round)."""
    _put(backend, key, envelope, ENVELOPE_CONTENT_TYPE, extra, pin_checksum=True)
