"""Finalize a job: write and lock the run manifest, exactly once, then notify.

The manifest is built the way genblaze-core's `ObjectStorageSink._write_run_impl`
builds it (rewrite each asset's url / sha256 / size_bytes, clear
transfer_failures, recompute the canonical hash, put canonical JSON with the
same Cache-Control and Object Lock arguments at `manifest_key_for(run)`), so
`ObjectStorageSink(...).read_manifest(run)` verifies it. If any asset failed, no
manifest is written: a manifest must never claim bytes the bucket lacks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from genblaze_core.models.manifest import Manifest
from genblaze_core.storage.base import KeyStrategy, ObjectLockConfig
from genblaze_core.storage.sink import ObjectStorageSink

from genblaze_s3.ingest.finalize.signing import ManifestSigner
from genblaze_s3.ingest.models import (
    TERMINAL_ASSET_STATES,
    TERMINAL_JOB_STATES,
    AssetRecord,
    AssetState,
    ErrorInfo,
    JobMeta,
    JobState,
    ManifestInfo,
)
from genblaze_s3.ingest.provenance import PROVENANCE_KEY, apply_provenance
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.transitions import job_outcome

logger = logging.getLogger("genblaze_s3.ingest.finalize.manifest")


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


def build_manifest(
    payload: str, assets: dict[str, AssetRecord], signer: ManifestSigner | None = None
) -> Manifest:
    """The stored manifest JSON with every asset pointing at its bucket copy (pure).

    Each asset also gets its fetch provenance (``metadata["fetch"]``, hashed) and,
    with a signer, the manifest its Ed25519 signature over the canonical hash.
    """
    manifest = Manifest.model_validate_json(payload)
    for step in manifest.run.steps:
        for asset in step.assets:
            rec = assets[asset.asset_id]
            asset.url = rec.url or asset.url
            asset.sha256 = rec.sha256
            asset.size_bytes = rec.size
            apply_provenance(asset.metadata, rec.provenance)
    manifest.transfer_failures = []
    manifest.compute_hash()
    if signer is not None:
        signer.sign(manifest)
    return manifest


def _content_identity(manifest: Manifest) -> str:
    """The manifest's canonical JSON without what one fetch adds (provenance, signature)."""
    bare = manifest.model_copy(deep=True)
    for step in bare.run.steps:
        for asset in step.assets:
            asset.metadata.pop(PROVENANCE_KEY, None)
    bare.signature = None
    bare.compute_hash()
    return bare.to_canonical_json()


def _same_run_content(stored: bytes, ours: Manifest) -> bool:
    """True when the stored manifest records the same run, assets, keys and bytes."""
    try:
        theirs = Manifest.model_validate_json(stored)
    except ValueError:
        return False  # not a genblaze manifest: someone else's object
    return _content_identity(theirs) == _content_identity(ours)


def failure_summary(assets: list[AssetRecord]) -> ErrorInfo:
    failed = [a for a in assets if a.state == AssetState.FAILED]
    codes = sorted({a.error.code for a in failed if a.error})
    return ErrorInfo(
        code="assets_failed",
        message=f"{len(failed)}/{len(assets)} asset(s) failed ({', '.join(codes)}); "
        "no manifest was written",
        transfer_failures=[a.asset_id for a in failed],
    )


def _retain_until(backend: Any, key: str) -> datetime | None:
    """The lock actually on the stored manifest (the truth, also after a redelivery)."""
    try:
        head = backend.client.head_object(Bucket=backend.bucket, Key=key)
    except Exception:  # head is best effort: the manifest itself is written
        return None
    value = head.get("ObjectLockRetainUntilDate")
    return value if isinstance(value, datetime) else None


def finalize_job(
    store: StatusStore,
    backend_for: Callable[[Any], Any],
    job_id: str,
    *,
    notify: Callable[[JobMeta, str], None] | None = None,
    signer: ManifestSigner | None = None,
) -> JobState | None:
    """Write the manifest (or fail the job) and return the job's state afterwards.

    A state that is not terminal means some asset is not terminal yet: nothing was
    done, and the last asset to finish asks for finalize again. None: the job is
    gone (expired). Idempotent: a job already terminal is left alone; a manifest
    already in the bucket is never overwritten (its existing lock is recorded instead).
    """
    meta = store.get_meta(job_id)
    state = store.job_state(job_id)
    if meta is None or state is None:
        return None
    if state in TERMINAL_JOB_STATES:
        return state
    assets = store.get_assets(job_id, meta.asset_ids)
    if any(a.state not in TERMINAL_ASSET_STATES for a in assets):
        return state
    outcome = job_outcome([a.state for a in assets])
    if outcome == JobState.CANCELED:
        store.transition_job(job_id, JobState.CANCELED, error=ErrorInfo(code="canceled"))
    elif outcome == JobState.FAILED:
        store.transition_job(job_id, JobState.FAILED, error=failure_summary(assets))
    else:
        store.transition_job(job_id, JobState.FINALIZING)
        if store.job_state(job_id) != JobState.FINALIZING:
            return store.job_state(job_id)  # canceled meanwhile
        try:
            info = write_manifest(
                backend_for(meta.destination),
                meta,
                store.payload(job_id) or "",
                {a.asset_id: a for a in assets},
                signer=signer,
            )
        except ManifestConflict:
            message = "the manifest key already holds another job's manifest; not overwritten"
            store.transition_job(
                job_id, JobState.FAILED, error=ErrorInfo(code="key_conflict", message=message)
            )
            info = None
        except Exception as exc:
            logger.warning("job %s: manifest write failed: %s", job_id, type(exc).__name__)
            raise
        if info is not None:
            store.transition_job(job_id, JobState.SUCCEEDED, manifest=info)
    final = store.job_state(job_id)
    if notify is not None and meta.notify_url:
        view = store.get_job(job_id)
        if view is not None:
            notify(meta, view.model_dump_json())
    if final in TERMINAL_JOB_STATES and (meta.notify_url or meta.refresh_url):
        # The callbacks' last use is over (a succeeded job never runs again; a failed one
        # keeps them only sealed, for a retry): a token in a URL leaves the store now.
        store.drop_callback_urls(job_id, keep_sealed=final != JobState.SUCCEEDED)
    return final


def write_manifest(
    backend: Any,
    meta: JobMeta,
    payload: str,
    assets: dict[str, AssetRecord],
    *,
    signer: ManifestSigner | None = None,
) -> ManifestInfo:
    """Put the manifest unless one exists; returns its key, URL and lock."""
    manifest = build_manifest(payload, assets, signer)
    sink = _sink_for(backend, meta)
    key = sink.manifest_key_for(manifest.run)
    if backend.exists(key):
        # Ours from an earlier delivery, or the same run replayed with the same bytes
        # (its fetch provenance and signature differ, its content does not): recorded,
        # not rewritten. Another run's manifest at the same key: never overwritten,
        # never claimed as ours.
        if not _same_run_content(backend.get(key), manifest):
            raise ManifestConflict(key)
    else:
        extra: dict[str, Any] = {"CacheControl": sink._manifest_cache_control()}
        if sink._manifest_object_lock is not None:
            extra.update(sink._manifest_object_lock.to_extra_args())
        backend.put(
            key,
            manifest.to_canonical_json().encode("utf-8"),
            content_type="application/json",
            extra_args=extra,
        )
        logger.info("job %s: manifest written at %s", meta.job_id, key)
    locked = _retain_until(backend, key) if meta.manifest_lock else None
    return ManifestInfo(key=key, url=backend.get_durable_url(key), locked_until=locked)
