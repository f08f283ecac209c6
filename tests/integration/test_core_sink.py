"""genblaze-core's own ObjectStorageSink driving S3StorageBackend on SeaweedFS."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from genblaze_core import KeyStrategy, ObjectStorageSink, Pipeline
from genblaze_core.mocks import MockProvider
from genblaze_core.models.asset import Asset
from genblaze_core.storage.base import ObjectLockConfig

from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.helpers import user_backend


def run_pipeline(sink: ObjectStorageSink, assets: list[Asset]) -> Any:
    provider = MockProvider(assets=lambda step: [a.model_copy() for a in assets])
    return (
        Pipeline("sink-test")
        .step(provider, model="mock", prompt="p")
        .run(sink=sink, raise_on_failure=True)
    )


def test_assets_land_at_content_addressable_keys_and_manifest_verifies(
    seaweed: SeaweedS3, bucket: str, cdn: CDNServer, loopback_fetches: None, s3_client: Any
) -> None:
    image = os.urandom(300_000)
    video = os.urandom(18 * 1024 * 1024)  # above the multipart threshold
    assets = [
        Asset(url=cdn.add("/a.png", image, content_type="image/png"), media_type="image/png"),
        Asset(url=cdn.add("/v.mp4", video, content_type="video/mp4"), media_type="video/mp4"),
    ]
    backend = user_backend(seaweed, bucket)
    sink = ObjectStorageSink(backend, prefix="gen", key_strategy=KeyStrategy.CONTENT_ADDRESSABLE)
    result = run_pipeline(sink, assets)

    stored = result.run.steps[0].assets
    for asset, data, ext in zip(stored, (image, video), (".png", ".mp4"), strict=True):
        sha = hashlib.sha256(data).hexdigest()
        key = f"gen/assets/{sha[:2]}/{sha[2:4]}/{sha}{ext}"
        assert asset.sha256 == sha
        assert asset.url == backend.get_durable_url(key)
        assert backend.key_from_url(asset.url) == key
        assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == data

    manifest = sink.read_manifest(result.run)
    assert manifest.verify_hash()
    assert s3_client.head_object(Bucket=bucket, Key=f"gen/manifests/{result.run.run_id}.json")


def test_manifest_lock_produces_a_locked_manifest(
    seaweed: SeaweedS3, locked_bucket: str, cdn: CDNServer, loopback_fetches: None, s3_client: Any
) -> None:
    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    backend = user_backend(seaweed, locked_bucket)
    sink = ObjectStorageSink(
        backend, prefix="gen", manifest_lock=ObjectLockConfig(retain_until=until)
    )
    url = cdn.add("/x.png", b"png-bytes", content_type="image/png")
    result = run_pipeline(sink, [Asset(url=url, media_type="image/png")])
    key = sink.manifest_key_for(result.run)

    retention = s3_client.get_object_retention(Bucket=locked_bucket, Key=key)["Retention"]
    assert retention["Mode"] == "GOVERNANCE"
    assert retention["RetainUntilDate"] >= until - timedelta(seconds=1)
    version = s3_client.head_object(Bucket=locked_bucket, Key=key)["VersionId"]
    with pytest.raises(Exception) as refused:
        s3_client.delete_object(Bucket=locked_bucket, Key=key, VersionId=version)
    assert "AccessDenied" in str(refused.value) or "locked" in str(refused.value).lower()
    assert sink.read_manifest(result.run).verify_hash()


def test_put_with_object_lock_argument(
    seaweed: SeaweedS3, locked_bucket: str, s3_client: Any
) -> None:
    backend = user_backend(seaweed, locked_bucket)
    until = datetime.now(UTC) + timedelta(hours=2)
    backend.put("locked.json", b"{}", object_lock=ObjectLockConfig(retain_until=until))
    retention = s3_client.get_object_retention(Bucket=locked_bucket, Key="locked.json")
    assert retention["Retention"]["Mode"] == "GOVERNANCE"
    with pytest.raises(ValueError):
        backend.put(
            "x",
            b"{}",
            object_lock=ObjectLockConfig(retain_until=until),
            extra_args={"ObjectLockMode": "COMPLIANCE"},
        )
