"""Bucket-level behaviour on SeaweedFS: lifecycle merging and preflight."""

from __future__ import annotations

from typing import Any

import pytest
from genblaze_core.exceptions import StorageError
from genblaze_core.storage.errors import StorageErrorCode

from genblaze_s3 import S3StorageBackend
from genblaze_s3.local.services import SeaweedS3
from tests.support.helpers import user_backend

OWNER_RULE = {
    "ID": "owner-tmp-expiry",
    "Status": "Enabled",
    "Filter": {"Prefix": "tmp/"},
    "Expiration": {"Days": 3},
}


def rules_by_id(s3_client: Any, bucket: str) -> dict[str, Any]:
    rules = s3_client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    return {r["ID"]: r for r in rules}


def test_lifecycle_defaults_merge_with_existing_rules(
    seaweed: SeaweedS3, bucket: str, s3_client: Any
) -> None:
    s3_client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [OWNER_RULE]}
    )
    backend = user_backend(seaweed, bucket)
    backend.ensure_lifecycle_defaults()
    backend.ensure_lifecycle_defaults()  # idempotent: no duplicate rules
    rules = rules_by_id(s3_client, bucket)
    assert set(rules) == {
        "owner-tmp-expiry",
        "genblaze-cancel-unfinished-multipart",
        "genblaze-expire-noncurrent-versions",
    }
    assert rules["owner-tmp-expiry"]["Expiration"]["Days"] == 3
    abort = rules["genblaze-cancel-unfinished-multipart"]["AbortIncompleteMultipartUpload"]
    assert abort["DaysAfterInitiation"] == 7
    noncurrent = rules["genblaze-expire-noncurrent-versions"]["NoncurrentVersionExpiration"]
    assert noncurrent["NoncurrentDays"] == 30


def test_auto_lifecycle_applies_at_construction(
    seaweed: SeaweedS3, bucket: str, s3_client: Any
) -> None:
    user_backend(seaweed, bucket, auto_lifecycle=True)
    assert "genblaze-cancel-unfinished-multipart" in rules_by_id(s3_client, bucket)


def test_preflight_passes_for_real_bucket_and_fails_typed_for_missing(
    seaweed: SeaweedS3, bucket: str
) -> None:
    ok = user_backend(seaweed, bucket, preflight=True)
    assert ok.region_verified
    with pytest.raises(StorageError) as exc:
        user_backend(seaweed, "no-such-bucket-here", preflight=True)
    assert exc.value.error_code is StorageErrorCode.NOT_FOUND
    assert "no-such-bucket-here" in str(exc.value)


def test_bad_credentials_fail_once_and_are_remembered(seaweed: SeaweedS3, bucket: str) -> None:
    backend = S3StorageBackend(
        bucket,
        endpoint_url=seaweed.endpoint_url,
        access_key_id=seaweed.access_key,
        secret_access_key="wrong-secret",
    )
    sent: list[str] = []
    backend.client.meta.events.register("before-send", lambda **kw: sent.append("x"))
    with pytest.raises(StorageError) as first:
        backend.put("k", b"x")
    assert first.value.error_code in {
        StorageErrorCode.AUTH_FAILURE,
        StorageErrorCode.ACCESS_DENIED,
    }
    count = len(sent)
    with pytest.raises(StorageError) as second:
        backend.get("k")
    assert str(second.value) == str(first.value)
    assert len(sent) == count, "a remembered preflight failure must not hit the network"
