"""The lean small PutObject (backend/small_put.py) against a real S3 server: it must be
indistinguishable from ``client.put_object`` in what it stores and in how it fails."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

from genblaze_s3 import S3StorageBackend
from genblaze_s3.backend.small_put import SmallPut, small_put_for
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
    lean = small_put_for(client)
    assert isinstance(lean, SmallPut)
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
    lean = small_put_for(sender)
    assert lean is not None
    lean_error = _refusal(lambda: lean.put(dict(params), sha256_hex=digest))
    boto_error = _refusal(lambda: sender.put_object(**params))
    assert type(lean_error) is type(boto_error)
    assert lean_error.response["Error"]["Code"] == boto_error.response["Error"]["Code"]
    status = lean_error.response["ResponseMetadata"]["HTTPStatusCode"]
    assert status == boto_error.response["ResponseMetadata"]["HTTPStatusCode"]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["taken"]  # nothing written by a refused PUT
