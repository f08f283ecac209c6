"""Every example of the public genblaze-s3 README, run against SeaweedFS.

Each test keeps the README's code and changes only the endpoint and the
credentials (and, for the pipeline, a mock provider instead of Replicate with
assets served by a local CDN). SSE-KMS needs a KMS, which SeaweedFS lacks: that
single line runs against moto's S3+KMS.
"""

from __future__ import annotations

import asyncio
import io
import secrets
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from genblaze_core import KeyStrategy, ObjectStorageSink, Pipeline, TransferProgress
from genblaze_core.mocks import MockProvider
from genblaze_core.models.asset import Asset
from moto import mock_aws

from genblaze_s3 import S3StorageBackend
from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer

README_BUCKET = "my-genblaze-bucket"


@pytest.fixture
def readme_bucket(seaweed: SeaweedS3, s3_client: Any) -> Iterator[str]:
    seaweed.create_bucket(README_BUCKET)
    yield README_BUCKET
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=README_BUCKET):
        for obj in page.get("Contents", []):
            s3_client.delete_object(Bucket=README_BUCKET, Key=obj["Key"])


@pytest.fixture
def bucket(readme_bucket: str) -> str:
    """The conftest `backend` (the README's MinIO example, pointed at SeaweedFS) on the
    README's bucket."""
    return readme_bucket


def test_quickstart_backblaze_pipeline(
    seaweed: SeaweedS3,
    readme_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    loopback_fetches: None,
    capsys: pytest.CaptureFixture[str],
    cdn: CDNServer,
) -> None:
    monkeypatch.setenv("B2_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("B2_APP_KEY", seaweed.secret_key)
    cat = cdn.add("/cat.webp", secrets.token_bytes(50_000), content_type="image/webp")
    provider = MockProvider(assets=lambda step: [Asset(url=cat, media_type="image/webp")])

    backend = S3StorageBackend.for_backblaze(
        "my-genblaze-bucket",
        region="us-west-004",
        public_url_base="https://f004.backblazeb2.com/file/my-genblaze-bucket",
        auto_lifecycle=True,
        endpoint_template=seaweed.endpoint_url,  # adapted: the local S3 endpoint
    )

    sink = ObjectStorageSink(
        backend,
        prefix="genblaze-assets",
        key_strategy=KeyStrategy.CONTENT_ADDRESSABLE,  # dedupe by SHA-256
    )

    result = (
        Pipeline("b2-demo")
        .step(
            provider,
            model="black-forest-labs/flux-schnell",
            prompt="a photorealistic cat wearing a tiny spacesuit",
        )
        .run(sink=sink, timeout=120)
    )

    for step in result.run.steps:
        for asset in step.assets:
            print(asset.url, asset.sha256)

    backend.close()
    out = capsys.readouterr().out
    sha = result.run.steps[0].assets[0].sha256
    assert (
        f"https://f004.backblazeb2.com/file/my-genblaze-bucket/genblaze-assets/assets/"
        f"{sha[:2]}/{sha[2:4]}/{sha}.webp {sha}" in out
    )
    assert backend.exists(f"genblaze-assets/manifests/{result.run.run_id}.json")


def test_quickstart_aws_and_r2_minio_constructors(
    seaweed: SeaweedS3, readme_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    backend = S3StorageBackend(
        bucket="my-genblaze-bucket", region="us-east-1", endpoint_url=seaweed.endpoint_url
    )
    # get_url() returns pre-signed URLs when public_url_base is not set
    backend.put("hello.txt", b"hi")
    assert requests.get(backend.get_url("hello.txt"), timeout=10).content == b"hi"

    # R2
    backend = S3StorageBackend(
        bucket="my-bucket",
        endpoint_url=seaweed.endpoint_url,  # adapted from https://<acct>.r2.cloudflarestorage.com
        access_key_id=seaweed.access_key,
        secret_access_key=seaweed.secret_key,
    )
    # MinIO
    backend = S3StorageBackend(
        bucket="my-bucket",
        endpoint_url=seaweed.endpoint_url,
        access_key_id=seaweed.access_key,
        secret_access_key=seaweed.secret_key,
    )
    assert backend.bucket == "my-bucket"


def test_url_flavors_and_redaction(
    seaweed: SeaweedS3, backend: S3StorageBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    from genblaze_s3 import URLPolicy, URLPolicyError

    backend.put("k", b"body")
    # Force public — raises URLPolicyError if public_url_base isn't configured.
    with pytest.raises(URLPolicyError):
        url = backend.get_url("k", policy=URLPolicy.PUBLIC)
    public = S3StorageBackend(
        bucket=backend.bucket,
        endpoint_url=seaweed.endpoint_url,
        public_url_base="https://cdn.example.com",
        access_key_id=seaweed.access_key,
        secret_access_key=seaweed.secret_key,
    )
    url = public.get_url("k", policy=URLPolicy.PUBLIC)
    assert url == "https://cdn.example.com/k"

    # Force presigned (even with public_url_base set) — useful for paid feeds.
    url = public.get_url("k", policy=URLPolicy.PRESIGNED, expires_in=900)
    assert requests.get(url, timeout=10).content == b"body"

    download = backend.presigned_get("k", expires_in=3600)
    upload = backend.presigned_put("k", expires_in=600, content_type="image/png")

    print(f"download link: {download}")
    out = capsys.readouterr().out
    assert out.startswith("download link: PresignedURL(")
    assert "X-Amz-Signature=redacted" in out

    assert requests.get(download.url, timeout=10).content == b"body"
    assert requests.put(
        upload.url, data=b"png", headers={"Content-Type": "image/png"}, timeout=10
    ).ok


def test_server_side_encryption(backend: S3StorageBackend) -> None:
    from genblaze_s3 import Encryption

    data = b"media bytes"
    # SSE-S3 (server-managed AES-256)
    backend.put("k", data, encryption=Encryption.sse_s3())

    # SSE-C — same key required on read; round-trips cleanly in 0.3.0+
    key = secrets.token_bytes(32)
    enc = Encryption.sse_c(key)
    backend.put("k", data, encryption=enc)
    assert backend.get("k", encryption=enc) == data


def test_server_side_encryption_kms_on_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    from genblaze_s3 import Encryption

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="my-genblaze-bucket")
        backend = S3StorageBackend(bucket="my-genblaze-bucket", region="us-east-1")
        data = b"media bytes"
        # SSE-KMS
        backend.put("k", data, encryption=Encryption.sse_kms("alias/my-app"))
        head = backend.client.head_object(Bucket="my-genblaze-bucket", Key="k")
        assert head["ServerSideEncryption"] == "aws:kms"
        assert backend.get("k") == data


def test_read_primitives(backend: S3StorageBackend) -> None:
    backend.put("path/to/key", b"m")
    backend.put("big.mp4", secrets.token_bytes(9 * 1024 * 1024))
    for i in range(3):
        backend.put(f"run-{i}", b"r")

    # head — per-object metadata, None for missing/inaccessible.
    meta = backend.head("path/to/key")
    assert meta is not None and meta.size == 1

    # list — paginated walk via continuation_token.
    page = backend.list(prefix="run-", max_keys=1000)
    for entry in page.entries:
        assert entry.key.startswith("run-")
    if page.next_token is not None:
        page = backend.list(prefix="run-", continuation_token=page.next_token)

    # get_range — partial-file via HTTP Range header.
    header = backend.get_range("big.mp4", offset=0, length=4096)
    assert len(header) == 4096

    # stream — chunked download, no full-file RAM load.
    chunks = 0
    for chunk in backend.stream("big.mp4", chunk_size=8 * 1024 * 1024):  # noqa: B007
        chunks += 1
    assert chunks == 2


def test_bulk_deletes(backend: S3StorageBackend) -> None:
    for k in ("k1", "k2", "temp/a", "temp/b"):
        backend.put(k, b"x")
    # Explicit-key delete: dry_run=False default.
    result = backend.delete_many(["k1", "k2"])
    assert result.all_succeeded and set(result.deleted) == {"k1", "k2"}

    # Prefix delete: dry_run=True default — see what would go before deleting.
    preview = backend.delete_prefix("temp/")
    result = backend.delete_prefix("temp/", dry_run=False)
    assert preview.dry_run and preview.deleted == result.deleted == ("temp/a", "temp/b")


def test_progress_callbacks(backend: S3StorageBackend, capsys: pytest.CaptureFixture[str]) -> None:
    data = io.BytesIO(secrets.token_bytes(20 * 1024 * 1024))
    seen: list[TransferProgress] = []

    backend.put("big.mp4", data, progress=lambda p: print(p.bytes_transferred))
    backend.get("big.mp4", progress=seen.append)
    for chunk in backend.stream("big.mp4", progress=seen.append):  # noqa: B007
        ...
    printed = [int(line) for line in capsys.readouterr().out.split()]
    assert printed == sorted(printed) and printed[-1] == 20 * 1024 * 1024
    assert {p.operation for p in seen} == {"get", "stream"}


def test_native_async(backend: S3StorageBackend) -> None:
    from genblaze_s3 import AsyncS3StorageBackend

    my_sync_backend = backend
    backend.put("k", b"async body")
    backend.put("big.mp4", secrets.token_bytes(1024 * 1024))
    collected: dict[str, Any] = {}

    async def main():
        async with AsyncS3StorageBackend.from_sync(my_sync_backend) as ab:
            data = await ab.aget("k")
            async for chunk in ab.astream("big.mp4"):
                collected["chunks"] = collected.get("chunks", 0) + len(chunk)
            result = await ab.aput("k", data)
            collected["result"] = result

    asyncio.run(main())
    assert collected == {"chunks": 1024 * 1024, "result": "k"}
