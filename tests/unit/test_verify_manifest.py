"""verify_manifest() against moto: every finding, and the report's verdict."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from genblaze_core.models.asset import Asset
from genblaze_core.models.manifest import Manifest
from genblaze_core.models.run import Run
from genblaze_core.models.step import Step
from moto import mock_aws

from genblaze_s3 import S3StorageBackend, verify_manifest
from genblaze_s3.ingest.finalize.signing import ManifestSigner
from genblaze_s3.ingest.finalize.verify import Level, parse_s3_location

BUCKET = "verify-bkt"
MiB = 1024 * 1024


@pytest.fixture
def backend() -> Iterator[S3StorageBackend]:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(
            Bucket=BUCKET, ObjectLockEnabledForBucket=True
        )
        yield S3StorageBackend(
            BUCKET, region="us-east-1", access_key_id="AKID", secret_access_key="secret"
        )


def _store(
    backend: S3StorageBackend, blobs: list[bytes], signer: Any = None, lock: bool = False
) -> str:
    assets = []
    for i, data in enumerate(blobs):
        key = f"genblaze/assets/{i}.bin"
        backend.client.put_object(Bucket=BUCKET, Key=key, Body=data)
        assets.append(
            Asset(
                url=backend.get_durable_url(key),
                media_type="video/mp4",
                sha256=hashlib.sha256(data).hexdigest(),
                size_bytes=len(data),
            )
        )
    manifest = Manifest.from_run(
        Run(name="v", steps=[Step(provider="p", model="m", assets=assets)])
    )
    if signer is not None:
        signer.sign(manifest)
    extra: dict[str, Any] = {}
    if lock:
        extra = {
            "ChecksumAlgorithm": "SHA256",
            "ObjectLockMode": "GOVERNANCE",
            "ObjectLockRetainUntilDate": datetime.now(UTC) + timedelta(days=1),
        }
    key = "genblaze/manifests/m.json"
    backend.client.put_object(
        Bucket=BUCKET, Key=key, Body=manifest.to_canonical_json().encode(), **extra
    )
    return key


def _levels(report: Any, check: str) -> list[Level]:
    return [f.level for f in report.findings if f.check == check]


def test_a_signed_locked_manifest_verifies(backend: S3StorageBackend) -> None:
    key = Ed25519PrivateKey.generate()
    blobs = [os.urandom(100), os.urandom(3 * MiB + 5)]  # one small, one read in ranges
    mkey = _store(backend, blobs, ManifestSigner(key), lock=True)
    seen: list[int] = []
    report = verify_manifest(
        backend, mkey, public_key=key.public_key(), part_size=MiB, progress=seen.append
    )
    assert report.ok, list(report.lines())
    assert _levels(report, "asset") == [Level.OK, Level.OK]
    assert _levels(report, "signature") == [Level.OK] and _levels(report, "lock") == [Level.OK]
    assert sum(seen) == sum(map(len, blobs))


def test_an_overwritten_asset_fails_naming_it(backend: S3StorageBackend) -> None:
    mkey = _store(backend, [os.urandom(100), os.urandom(2 * MiB)])
    backend.client.put_object(Bucket=BUCKET, Key="genblaze/assets/1.bin", Body=b"x" * (2 * MiB))
    report = verify_manifest(backend, mkey, part_size=MiB)
    assert not report.ok
    (bad,) = report.failures
    assert bad.check == "asset" and "genblaze/assets/1.bin" in bad.subject


def test_unsigned_and_unlocked_are_notes_unless_required(backend: S3StorageBackend) -> None:
    mkey = _store(backend, [os.urandom(10)])
    report = verify_manifest(backend, mkey)
    assert report.ok and _levels(report, "signature") == [Level.NOTE]
    assert _levels(report, "lock") == [Level.NOTE]
    strict = verify_manifest(backend, mkey, require_signature=True, require_lock=True)
    assert {f.check for f in strict.failures} == {"signature", "lock"}


def test_wrong_key_and_missing_object_fail(backend: S3StorageBackend) -> None:
    mkey = _store(backend, [os.urandom(10)], ManifestSigner(Ed25519PrivateKey.generate()))
    backend.client.delete_object(Bucket=BUCKET, Key="genblaze/assets/0.bin")
    report = verify_manifest(backend, mkey, public_key=Ed25519PrivateKey.generate().public_key())
    assert {f.check for f in report.failures} == {"signature", "asset"}
    assert any("missing" in f.message for f in report.failures)


def test_location_parsing() -> None:
    assert parse_s3_location("s3://b/k/m.json") == ("b", "k/m.json")
    with pytest.raises(ValueError):
        parse_s3_location("https://b/k")
