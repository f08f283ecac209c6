"""The lean PutObject and HeadObject (backend/lean/) against a real S3 server:
indistinguishable from ``put_object`` / ``head_object`` in what they store, answer and
how they fail."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from genblaze_s3 import S3StorageBackend
from genblaze_s3.backend.lean import LeanS3, lean_s3_for
from genblaze_s3.local.services import SeaweedS3
from tests.support.helpers import user_backend


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


@pytest.fixture
def client(seaweed: SeaweedS3, bucket: str) -> Any:
    backend = user_backend(seaweed, bucket)
    yield backend.client
    backend.close()


def test_stores_the_same_object_as_put_object(client: Any, bucket: str) -> None:
    lean = lean_s3_for(client)
    assert isinstance(lean, LeanS3)
    data = os.urandom(70_000)
    digest = hashlib.sha256(data).hexdigest()
    common = {
        "Bucket": bucket,
        "Body": data,
        "ContentType": "image/png",
        "CacheControl": "public, max-age=60",
        "ChecksumSHA256": _b64(digest),
        "IfNoneMatch": "*",
    }
    lean_answer = lean.put({**common, "Key": "a/lean.png"}, sha256_hex=digest)
    boto_answer = client.put_object(**common, Key="a/boto.png")
    assert lean_answer["ETag"] == boto_answer["ETag"]
    heads = [client.head_object(Bucket=bucket, Key=k) for k in ("a/lean.png", "a/boto.png")]
    for field in ("ContentLength", "ContentType", "CacheControl", "ETag"):
        assert heads[0][field] == heads[1][field], field
    stored = client.get_object(Bucket=bucket, Key="a/lean.png")["Body"].read()
    assert stored == data


def _refusal(fn: Any) -> ClientError:
    with pytest.raises(ClientError) as info:
        fn()
    return info.value


@pytest.mark.parametrize("case", ["key-exists", "bad-checksum", "wrong-secret"])
def test_refusals_raise_what_put_object_raises(
    seaweed: SeaweedS3, client: Any, bucket: str, case: str
) -> None:
    data = os.urandom(4096)
    digest = hashlib.sha256(data).hexdigest()
    client.put_object(Bucket=bucket, Key="taken", Body=b"x")
    params: dict[str, Any] = {"Bucket": bucket, "Key": f"k-{case}", "Body": data}
    sender = client
    if case == "key-exists":
        params.update(Key="taken", IfNoneMatch="*")
    elif case == "bad-checksum":
        params["ChecksumSHA256"] = _b64(hashlib.sha256(b"other").hexdigest())
    else:
        sender = S3StorageBackend(
            bucket,
            endpoint_url=seaweed.endpoint_url,
            access_key_id=seaweed.access_key,
            secret_access_key="not-the-secret",
            preflight=False,
        ).client
    lean = lean_s3_for(sender)
    assert lean is not None
    lean_error = _refusal(lambda: lean.put(dict(params), sha256_hex=digest))
    boto_error = _refusal(lambda: sender.put_object(**params))
    assert type(lean_error) is type(boto_error)
    assert lean_error.response["Error"]["Code"] == boto_error.response["Error"]["Code"]
    status = lean_error.response["ResponseMetadata"]["HTTPStatusCode"]
    assert status == boto_error.response["ResponseMetadata"]["HTTPStatusCode"]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["taken"]  # nothing written by a refused PUT


def test_head_answers_what_head_object_answers(seaweed: SeaweedS3, locked_bucket: str) -> None:
    """Parsed by botocore's own parser: the same typed fields, the lock included."""
    client = user_backend(seaweed, locked_bucket, preflight=False).client
    lean = lean_s3_for(client)
    assert lean is not None
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    client.put_object(
        Bucket=locked_bucket,
        Key="m/manifest.json",
        Body=b"{}",
        ContentType="application/json",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=until,
        ChecksumSHA256=_b64(hashlib.sha256(b"{}").hexdigest()),
    )
    mine = lean.head(locked_bucket, "m/manifest.json")
    theirs = client.head_object(Bucket=locked_bucket, Key="m/manifest.json")
    for field in (
        "ContentLength",
        "ContentType",
        "ETag",
        "LastModified",
        "ObjectLockMode",
        "ObjectLockRetainUntilDate",
        "VersionId",
    ):
        assert mine.get(field) == theirs.get(field), field
    assert mine["ObjectLockRetainUntilDate"] == until
    missing = _refusal(lambda: lean.head(locked_bucket, "m/nothing.json"))
    boto_missing = _refusal(lambda: client.head_object(Bucket=locked_bucket, Key="m/nothing.json"))
    assert missing.response["Error"]["Code"] == boto_missing.response["Error"]["Code"] == "404"


def test_a_locked_put_stores_what_put_object_stores(seaweed: SeaweedS3, locked_bucket: str) -> None:
    """A run manifest's PUT: its lock, Cache-Control and SHA-256 checksum ride the lean
    request and land as boto3's do."""
    client = user_backend(seaweed, locked_bucket, preflight=False).client
    lean = lean_s3_for(client)
    assert lean is not None
    body = b'{"run": "r-1"}'
    until = datetime.now(UTC) + timedelta(days=1, microseconds=123)  # the model keeps seconds
    common: dict[str, Any] = {
        "Bucket": locked_bucket,
        "Body": body,
        "ContentType": "application/json",
        "CacheControl": "no-cache",
        "ObjectLockMode": "GOVERNANCE",
        "ObjectLockRetainUntilDate": until,
        "ChecksumAlgorithm": "SHA256",
        "ChecksumSHA256": _b64(hashlib.sha256(body).hexdigest()),
    }
    lean.put({**common, "Key": "m/lean.json"}, sha256_hex=hashlib.sha256(body).hexdigest())
    client.put_object(**common, Key="m/boto.json")
    heads = [
        client.head_object(Bucket=locked_bucket, Key=k, ChecksumMode="ENABLED")
        for k in ("m/lean.json", "m/boto.json")
    ]
    for field in (
        "ContentLength",
        "ContentType",
        "CacheControl",
        "ETag",
        "ObjectLockMode",
        "ObjectLockRetainUntilDate",
        "ChecksumSHA256",
    ):
        assert heads[0].get(field) == heads[1].get(field), field
    assert heads[0]["ObjectLockRetainUntilDate"] == until.replace(microsecond=0)
    with pytest.raises(ClientError):  # locked: the version cannot be deleted
        client.delete_object(
            Bucket=locked_bucket, Key="m/lean.json", VersionId=heads[0]["VersionId"]
        )
