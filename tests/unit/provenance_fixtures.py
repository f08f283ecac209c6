"""A finalized, signed, Object-Locked run in moto S3, and the moves of an attacker who
can write the bucket (shared by the tamper rows and the upstream-library tests)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import fakeredis
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from genblaze_core.storage.sink import ObjectStorageSink
from moto import mock_aws

from genblaze_s3 import S3StorageBackend
from genblaze_s3.ingest.finalize.manifest import finalize_job
from genblaze_s3.ingest.finalize.signing import ManifestSigner
from genblaze_s3.ingest.models import AssetState, DestinationSpec, JobState, LockPolicy
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.submission import build_submission
from tests.unit.ingest_fixtures import make_manifest

BUCKET = "media"


@dataclass
class SignedRun:
    """One finalized job: where its manifest and envelope are, and its signer."""

    s3: S3StorageBackend
    store: StatusStore
    key: str
    envelope_key: str
    private_key: Ed25519PrivateKey
    asset_keys: list[str]
    job_id: str

    @property
    def public_key(self) -> Any:
        return self.private_key.public_key()

    def document(self) -> dict[str, Any]:
        return dict(json.loads(self.s3.get(self.key)))

    def put_raw(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        """A new version at ``key``: what a bucket writer can always do (locks protect
        versions, not keys)."""
        self.s3.client.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType=content_type)

    def rewrite(
        self,
        edit: Callable[[dict[str, Any]], None],
        *,
        signer: ManifestSigner | None = None,
        strip: bool = False,
    ) -> None:
        """Edit the manifest as an attacker would: change it, recompute the canonical
        hash with genblaze-core, keep (or strip, or re-sign) the signature, put it back."""
        from genblaze_core.models.manifest import Manifest

        document = self.document()
        edit(document)
        manifest = Manifest.model_validate(document)
        manifest.compute_hash()
        if strip:
            manifest.signature = None
        if signer is not None:
            signer.sign(manifest)
        self.put_raw(self.key, manifest.to_canonical_json().encode())


@pytest.fixture
def moto_bucket() -> Iterator[S3StorageBackend]:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(
            Bucket=BUCKET, ObjectLockEnabledForBucket=True
        )
        yield S3StorageBackend(
            BUCKET, region="us-east-1", access_key_id="x", secret_access_key="y", preflight=False
        )


def finalize_signed_run(
    s3: S3StorageBackend,
    private_key: Ed25519PrivateKey | None,
    *,
    n: int = 3,
    seed: str = "asset",
    lock: bool = True,
    before_finalize: Callable[[str], None] | None = None,
    expect: JobState = JobState.SUCCEEDED,
) -> SignedRun:
    """Store ``n`` content-addressed assets and finalize their job (signed with a key).

    ``before_finalize(manifest_key)`` runs just before finalize (to pre-occupy keys).
    """
    store = StatusStore(fakeredis.FakeRedis())
    m = make_manifest([f"https://cdn.invalid/{seed}{i}.png" for i in range(n)])
    policy = LockPolicy(retain_until=datetime.now(UTC) + timedelta(days=1)) if lock else None
    sub = build_submission(m, DestinationSpec(bucket=BUCKET), tenant="acme", manifest_lock=policy)
    store.create_job(sub.meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload)
    keys = []
    for i, aid in enumerate(sub.meta.asset_ids):
        data = f"{seed}-{i}".encode() * 100
        digest = hashlib.sha256(data).hexdigest()
        key = f"genblaze/assets/{digest[:2]}/{digest[2:4]}/{digest}.png"
        s3.put(key, data, content_type="image/png")
        keys.append(key)
        store.finish_asset(
            sub.meta.job_id,
            aid,
            AssetState.STORED,
            key=key,
            url=s3.get_durable_url(key),
            sha256=digest,
            size=len(data),
        )
    signer = ManifestSigner(private_key) if private_key is not None else None
    key = ObjectStorageSink(s3, prefix="genblaze").manifest_key_for(m.run)
    if before_finalize is not None:
        before_finalize(key)
    state = finalize_job(store, lambda d: s3, sub.meta.job_id, signer=signer)
    assert state == expect
    view = store.get_job(sub.meta.job_id)
    assert view is not None and view.manifest.key in (key, None)
    return SignedRun(
        s3,
        store,
        key,
        key.removesuffix(".json") + ".intoto.json",
        private_key or Ed25519PrivateKey.generate(),
        keys,
        sub.meta.job_id,
    )


def dsse_payload(envelope_body: bytes) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(json.loads(envelope_body)["payload"])))
