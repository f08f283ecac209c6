"""Finalize against moto S3: the manifest genblaze-core reads back, written once, locked."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import fakeredis
import pytest
from genblaze_core.storage.sink import ObjectStorageSink
from moto import mock_aws

from genblaze_s3 import S3StorageBackend
from genblaze_s3.ingest.finalize.manifest import finalize_job
from genblaze_s3.ingest.models import (
    TERMINAL_JOB_STATES,
    AssetState,
    DestinationSpec,
    ErrorInfo,
    JobState,
    LockPolicy,
)
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.submission import build_submission
from tests.unit.ingest_fixtures import make_manifest


@pytest.fixture
def s3() -> Iterator[S3StorageBackend]:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(
            Bucket="media", ObjectLockEnabledForBucket=True
        )
        yield S3StorageBackend(
            "media", region="us-east-1", access_key_id="x", secret_access_key="y", preflight=False
        )


def _job(store: StatusStore, backend: S3StorageBackend, *, lock: bool = False, fail: bool = False):
    m = make_manifest(["https://cdn.invalid/a.png", "https://cdn.invalid/b.png"])
    policy = LockPolicy(retain_until=datetime.now(UTC) + timedelta(days=1)) if lock else None
    sub = build_submission(m, DestinationSpec(bucket="media"), tenant="t", manifest_lock=policy)
    store.create_job(sub.meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload)
    for i, aid in enumerate(sub.meta.asset_ids):
        if fail and i == 1:
            store.finish_asset(
                sub.meta.job_id, aid, AssetState.FAILED, error=ErrorInfo(code="source_not_found")
            )
            continue
        data = f"asset-{i}".encode()
        digest = hashlib.sha256(data).hexdigest()
        key = f"genblaze/assets/{digest[:2]}/{digest[2:4]}/{digest}.png"
        backend.put(key, data, content_type="image/png")
        store.finish_asset(
            sub.meta.job_id,
            aid,
            AssetState.STORED,
            key=key,
            url=backend.get_durable_url(key),
            sha256=digest,
            size=len(data),
        )
    return sub.meta.job_id, m.run


def test_manifest_verifies_with_genblaze_core_and_is_locked(s3: S3StorageBackend) -> None:
    store = StatusStore(fakeredis.FakeRedis())
    job_id, run = _job(store, s3, lock=True)
    notified: list[str] = []
    assert (
        finalize_job(store, lambda d: s3, job_id, notify=lambda m, b: notified.append(b))
        == JobState.SUCCEEDED
    )
    manifest = ObjectStorageSink(s3).read_manifest(run)
    assert manifest.verify() and all(a.sha256 for a in manifest.run.steps[0].assets)
    view = store.get_job(job_id)
    assert view is not None and view.manifest.locked_until is not None
    assert notified == []  # no notify_url on this job


def test_finalize_twice_writes_one_manifest_version(s3: S3StorageBackend) -> None:
    store = StatusStore(fakeredis.FakeRedis())
    job_id, _ = _job(store, s3)
    finalize_job(store, lambda d: s3, job_id)
    store.redis.hset(f"genblaze:job:{job_id}", "state", "finalizing")  # as if redelivered mid-way
    finalize_job(store, lambda d: s3, job_id)
    versions = s3.client.list_object_versions(Bucket="media", Prefix="genblaze/manifests/")
    assert len(versions.get("Versions", [])) == 1


def test_a_failed_asset_means_no_manifest(s3: S3StorageBackend) -> None:
    store = StatusStore(fakeredis.FakeRedis())
    job_id, run = _job(store, s3, fail=True)
    assert finalize_job(store, lambda d: s3, job_id) == JobState.FAILED
    view = store.get_job(job_id)
    assert view is not None and view.error is not None and view.error.code == "assets_failed"
    assert view.error.transfer_failures == [view.assets[1].asset_id]
    assert not s3.exists(ObjectStorageSink(s3).manifest_key_for(run))


def test_finalize_waits_for_every_asset(s3: S3StorageBackend) -> None:
    store = StatusStore(fakeredis.FakeRedis())
    m = make_manifest(["https://cdn.invalid/a.png"])
    sub = build_submission(m, DestinationSpec(bucket="media"), tenant="t")
    store.create_job(sub.meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload)
    state = finalize_job(store, lambda d: s3, sub.meta.job_id)
    assert state is not None and state not in TERMINAL_JOB_STATES  # nothing done yet


def test_another_jobs_manifest_at_the_key_fails_key_conflict_and_stays(
    s3: S3StorageBackend,
) -> None:
    store = StatusStore(fakeredis.FakeRedis())
    job_id, run = _job(store, s3)
    key = ObjectStorageSink(s3).manifest_key_for(run)
    s3.put(key, b'{"someone":"else"}', content_type="application/json")
    assert finalize_job(store, lambda d: s3, job_id) == JobState.FAILED
    view = store.get_job(job_id)
    assert view is not None and view.error is not None and view.error.code == "key_conflict"
    assert view.manifest.key is None
    assert s3.get(key) == b'{"someone":"else"}'


def test_a_replayed_run_matches_the_stored_manifest_despite_its_own_fetch_record() -> None:
    """Same run, same bytes, another fetch (provenance, signature): the stored manifest is
    this run's; other content under the same ids is another run's (key_conflict)."""
    from genblaze_core.models.manifest import Manifest

    from genblaze_s3.ingest.finalize.manifest import _same_run_content
    from genblaze_s3.ingest.provenance import PROVENANCE_KEY

    base = make_manifest(["https://cdn.invalid/a.png"])

    def manifest(fetched_at: str, sha: str) -> Manifest:
        m = base.model_copy(deep=True)
        for step in m.run.steps:
            for asset in step.assets:
                asset.sha256 = sha
                asset.metadata[PROVENANCE_KEY] = {"fetched_at": fetched_at}
        m.compute_hash()
        return m

    stored = manifest("2026-01-01T00:00:00Z", "a" * 64)
    stored_bytes = stored.to_canonical_json().encode()
    assert _same_run_content(stored_bytes, manifest("2026-02-02T00:00:00Z", "a" * 64))
    assert not _same_run_content(stored_bytes, manifest("2026-01-01T00:00:00Z", "b" * 64))
    assert not _same_run_content(b'{"someone":"else"}', stored)
