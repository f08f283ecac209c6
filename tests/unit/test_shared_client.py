"""Backends built with ``share_client=True`` share one boto3 client per settings."""

from __future__ import annotations

from typing import Any

from genblaze_s3 import S3StorageBackend


def _backend(bucket: str, **kw: Any) -> S3StorageBackend:
    args: dict[str, Any] = {
        "endpoint_url": "http://127.0.0.1:9",
        "region": "us-east-1",
        "access_key_id": "ak",
        "secret_access_key": "sk",
    }
    return S3StorageBackend(bucket, **{**args, **kw})


def test_shared_backends_of_one_endpoint_and_credentials_share_a_client() -> None:
    a, b = _backend("bucket-a", share_client=True), _backend("bucket-b", share_client=True)
    assert a.client is b.client
    assert _backend("bucket-c", share_client=True, secret_access_key="other").client is not a.client
    assert _backend("bucket-d", share_client=True, region="eu-central-1").client is not a.client


def test_backends_keep_their_own_client_by_default() -> None:
    a, b = _backend("bucket-a"), _backend("bucket-a")
    assert a.client is not b.client
    assert _backend("bucket-a", share_client=True).client is not a.client


def test_the_workers_backends_share_their_client() -> None:
    from genblaze_s3.ingest.models import DestinationSpec
    from workers import context

    specs = [
        DestinationSpec(bucket=name, endpoint_url="http://127.0.0.1:9", region="us-east-1")
        for name in ("tenant-a-media", "tenant-b-media")
    ]
    one, two = (context.backend_for(spec) for spec in specs)
    assert one is not two
    assert one.client is two.client
