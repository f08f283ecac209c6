"""The embedded services the demo and the suite depend on really start."""

from __future__ import annotations

import redis


def test_seaweedfs_serves_object_lock_buckets(seaweed, locked_bucket, s3_client):
    s3_client.put_object(Bucket=locked_bucket, Key="k", Body=b"v")
    assert s3_client.get_object(Bucket=locked_bucket, Key="k")["Body"].read() == b"v"
    versioning = s3_client.get_bucket_versioning(Bucket=locked_bucket)
    assert versioning.get("Status") == "Enabled"


def test_embedded_valkey_answers(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set("a", "b")
    assert client.get("a") == b"b"
