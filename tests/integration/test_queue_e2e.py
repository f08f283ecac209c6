"""Runs through the real queue: Redis broker + store, Procfile workers, SeaweedFS, test CDN."""

from __future__ import annotations

import os

import httpx
import pytest
from genblaze_core.mocks import MockProvider
from genblaze_core.models.asset import Asset
from genblaze_core.pipeline import Pipeline
from genblaze_core.storage.base import KeyStrategy
from genblaze_core.storage.sink import ObjectStorageSink

from genblaze_s3.ingest import JobState, QueuedStorageSink
from genblaze_s3.ingest.models import AssetState
from genblaze_s3.ingest.tenants import TenantRegistry
from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.helpers import backend_for, no_multipart_uploads, policy_for, sha, wait_for
from tests.support.workers import QueueStack

MEDIA = [("/img.png", "image/png"), ("/voice.wav", "audio/wav"), ("/clip.mp4", "video/mp4")]


def _blobs(tag: str) -> list[bytes]:
    return [os.urandom(1000 + 7919 * i) + tag.encode() for i in range(len(MEDIA))]


def _run(
    stack: QueueStack,
    seaweed: SeaweedS3,
    bucket: str,
    urls: list[tuple[str, str]],
    strategy: KeyStrategy,
    **sink_kw: object,
) -> tuple[QueuedStorageSink, object]:
    sink = QueuedStorageSink(
        backend_for(seaweed, bucket),
        key_strategy=strategy,
        redis_url=stack.redis_url,
        broker_url=stack.broker_url,
        queue=stack.queue,
        destination_policy=policy_for(seaweed),
        **sink_kw,  # type: ignore[arg-type]
    )
    provider = MockProvider(assets=lambda step: [Asset(url=u, media_type=t) for u, t in urls])
    result = (
        Pipeline("queue-e2e")
        .step(provider, model="mock", prompt="p")
        .run(sink=sink, raise_on_failure=True)
    )
    return sink, result


@pytest.mark.parametrize("strategy", [KeyStrategy.CONTENT_ADDRESSABLE, KeyStrategy.HIERARCHICAL])
def test_three_asset_run_lands_like_the_inline_sink(
    stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    s3_client: object,
    strategy: KeyStrategy,
) -> None:
    blobs = _blobs(strategy.value)
    urls = [
        (cdn.add(f"/{strategy.value}{p}", b, content_type=t), t)
        for (p, t), b in zip(MEDIA, blobs, strict=True)
    ]
    sink, result = _run(stack, seaweed, bucket, urls, strategy)
    assert sink.last_job is not None
    final = sink.last_job.wait(timeout=60)
    assert final.state == JobState.SUCCEEDED, final.model_dump_json()
    assert final.progress.assets_done == 3 and final.progress.bytes_done == sum(map(len, blobs))

    reader = ObjectStorageSink(backend_for(seaweed, bucket), key_strategy=strategy)
    manifest = reader.read_manifest(result.run)  # type: ignore[attr-defined]
    assert manifest.verify()
    assert final.manifest.key == reader.manifest_key_for(result.run)  # type: ignore[attr-defined]
    by_id = {a.asset_id: a for a in final.assets}
    for asset, data in zip(manifest.run.steps[0].assets, blobs, strict=True):
        got = s3_client.get_object(Bucket=bucket, Key=by_id[asset.asset_id].key)["Body"].read()  # type: ignore[attr-defined]
        assert got == data and asset.sha256 == sha(data) and asset.size_bytes == len(data)
        if strategy == KeyStrategy.CONTENT_ADDRESSABLE:
            assert by_id[asset.asset_id].key.startswith(f"genblaze/assets/{asset.sha256[:2]}/")
        else:
            assert f"/{result.run.run_id}/assets/{asset.asset_id}" in by_id[asset.asset_id].key  # type: ignore[attr-defined]
    assert no_multipart_uploads(s3_client, bucket)


def test_failing_asset_fails_the_job_without_a_manifest(
    stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    s3_client: object,
) -> None:
    good = cdn.add("/ok-for-404.png", os.urandom(5000), content_type="image/png")
    missing = cdn.url("/never-added.png")
    sink, result = _run(
        stack,
        seaweed,
        bucket,
        [(good, "image/png"), (missing, "image/png")],
        KeyStrategy.CONTENT_ADDRESSABLE,
    )
    final = sink.last_job.wait(timeout=60)  # type: ignore[union-attr]
    assert final.state == JobState.FAILED
    bad = [a for a in final.assets if a.state == AssetState.FAILED]
    assert len(bad) == 1 and bad[0].error is not None and bad[0].error.code == "source_not_found"
    assert final.error is not None and final.error.transfer_failures == [bad[0].asset_id]
    assert final.manifest.key is None
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]  # type: ignore[attr-defined]
    assert not any("manifests/" in k for k in keys)


def test_two_runs_sharing_an_asset_store_one_object(
    stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    s3_client: object,
) -> None:
    shared = os.urandom(20_000)
    u1 = cdn.add("/shared-a.png", shared, content_type="image/png")
    u2 = cdn.add("/shared-b.png", shared, content_type="image/png")
    s1, _ = _run(stack, seaweed, bucket, [(u1, "image/png")], KeyStrategy.CONTENT_ADDRESSABLE)
    s2, _ = _run(stack, seaweed, bucket, [(u2, "image/png")], KeyStrategy.CONTENT_ADDRESSABLE)
    f1 = s1.last_job.wait(timeout=60)  # type: ignore[union-attr]
    f2 = s2.last_job.wait(timeout=60)  # type: ignore[union-attr]
    assert f1.state == f2.state == JobState.SUCCEEDED
    assert f1.assets[0].key == f2.assets[0].key
    objects = s3_client.list_objects_v2(Bucket=bucket, Prefix="genblaze/assets/")["Contents"]  # type: ignore[attr-defined]
    assert [o["Key"] for o in objects] == [f1.assets[0].key]


def test_cancel_mid_copy_stops_and_leaves_no_upload(
    stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    s3_client: object,
) -> None:
    cdn.add("/slow.mp4", os.urandom(24 * 1024 * 1024), content_type="video/mp4")
    slow = cdn.url("/slow.mp4", mode="slow", rate=2 * 1024 * 1024)
    sink, _ = _run(
        stack,
        seaweed,
        bucket,
        [(slow, "video/mp4")],
        KeyStrategy.CONTENT_ADDRESSABLE,
        tenant="acme",
        # the workers' tenant rules: acme's jobs go under its root, as through the API
        tenants=TenantRegistry.from_api_tokens(stack.env["GENBLAZE_API_TOKENS"]),
    )
    job = sink.last_job
    assert job is not None
    wait_for(lambda: job.status().progress.bytes_done > 0, timeout=30)
    r = httpx.delete(
        f"{stack.api_url}/v1/jobs/{job.id}",
        headers={"Authorization": f"Bearer {stack.tokens['acme']}"},
    )
    assert r.status_code == 200 and r.json()["state"] == "canceled"
    final = job.wait(timeout=30)
    assert final.state == JobState.CANCELED
    wait_for(lambda: job.status().assets[0].state == AssetState.CANCELED, timeout=30)
    wait_for(lambda: no_multipart_uploads(s3_client, bucket), timeout=10)
    assert "Contents" not in s3_client.list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]


def test_a_large_run_travels_in_chunks_and_each_asset_keeps_its_own_fate(
    stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    s3_client: object,
) -> None:
    """70 assets -> chunks of 3 (`plan_chunks`): one 404 fails alone, the rest land."""
    blobs = [os.urandom(2000 + i) for i in range(69)]
    urls = [
        (cdn.add(f"/chunked/{i}.png", b, content_type="image/png"), "image/png")
        for i, b in enumerate(blobs)
    ]
    urls.insert(35, (cdn.url("/chunked/missing.png"), "image/png"))
    sink, result = _run(stack, seaweed, bucket, urls, KeyStrategy.CONTENT_ADDRESSABLE)
    final = sink.last_job.wait(timeout=120)  # type: ignore[union-attr]
    assert final.state == JobState.FAILED and final.progress.assets_done == 70
    failed = [a for a in final.assets if a.state == AssetState.FAILED]
    assert len(failed) == 1 and failed[0].error.code == "source_not_found"  # type: ignore[union-attr]
    stored = {a.sha256 for a in final.assets if a.state == AssetState.STORED}
    assert stored == {sha(b) for b in blobs}
    assert "genblaze.ingest_assets" in "".join(w.log() for w in stack.workers)
    assert final.manifest.key is None and no_multipart_uploads(s3_client, bucket)
