"""Fast unit tests: pure logic and moto-backed behaviour of S3StorageBackend."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from genblaze_core.exceptions import StorageError
from genblaze_core.storage.errors import StorageErrorCode
from genblaze_core.storage.types import FileEntry, ListPage, TransferProgress
from moto import mock_aws

from genblaze_s3 import Encryption, PresignedURL, S3StorageBackend, URLPolicy, URLPolicyError
from genblaze_s3.backend import bulk
from genblaze_s3.backend.errors import scrub, to_storage_error
from genblaze_s3.backend.progress import ProgressReporter
from genblaze_s3.backend.server_copy import MIN_PART_SIZE, CopyPlan
from genblaze_s3.backend.user_agent import build_user_agent


@pytest.fixture
def moto_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3StorageBackend]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="unit")
        yield S3StorageBackend("unit", region="us-east-1")


# ---------------------------------------------------------------- construction


def test_both_spellings_of_a_credential_raise_type_error() -> None:
    with pytest.raises(TypeError):
        S3StorageBackend("b", access_key_id="a", aws_access_key_id="a")
    with pytest.raises(TypeError):
        S3StorageBackend("b", secret_access_key="a", aws_secret_access_key="a")


def test_client_settings_for_custom_endpoint() -> None:
    b = S3StorageBackend(
        "b",
        endpoint_url="http://127.0.0.1:1",
        access_key_id="a",
        secret_access_key="s",
        public_url_base="https://cdn.example/x/",
    )
    cfg = b.client.meta.config
    assert cfg.signature_version == "s3v4"
    assert cfg.s3 == {"addressing_style": "path"}
    assert cfg.request_checksum_calculation == "when_required"
    assert cfg.response_checksum_validation == "when_required"
    assert cfg.retries["mode"] == "standard"
    assert "b2ai-genblaze/" in cfg.user_agent_extra
    assert b.public_url_base == "https://cdn.example/x"
    assert b.supports_sha256_checksums
    assert (
        S3StorageBackend(
            "b",
            endpoint_url="https://storage.googleapis.com",
            access_key_id="a",
            secret_access_key="s",
        ).supports_sha256_checksums
        is False
    )
    assert build_user_agent("app/1.0").endswith(" app/1.0")
    b2 = S3StorageBackend(
        "b",
        endpoint_url="https://s3.eu-central-003.backblazeb2.com",
        access_key_id="a",
        secret_access_key="s",
    )
    assert b2.region == "eu-central-003"


def test_import_pulls_in_neither_celery_nor_aioboto3() -> None:
    import subprocess
    import sys

    code = (
        "import sys, genblaze_s3; "
        "assert 'celery' not in sys.modules and 'aioboto3' not in sys.modules, sys.modules.keys(); "
        "assert genblaze_s3.AsyncS3StorageBackend.__name__ == 'AsyncS3StorageBackend'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=".")


# ---------------------------------------------------------------- value objects


def test_encryption_sse_c_sends_base64_str_key_and_md5_and_redacts() -> None:
    raw = bytes(range(32))
    enc = Encryption.sse_c(raw)
    args = enc.to_put_args()
    assert args["SSECustomerKey"] == base64.b64encode(raw).decode()
    assert args["SSECustomerKeyMD5"] == base64.b64encode(hashlib.md5(raw).digest()).decode()
    assert isinstance(args["SSECustomerKey"], str)
    copy = enc.to_copy_args()
    assert copy["CopySourceSSECustomerKey"] == args["SSECustomerKey"]
    for text in (repr(enc), str(enc), f"{enc}"):
        assert "redacted" in text
        for secret in enc.secrets():
            assert secret not in text
    assert enc != Encryption.sse_c(raw)  # identity equality: never compares key material
    with pytest.raises(ValueError):
        Encryption.sse_c(b"short")
    with pytest.raises(ValueError):
        Encryption.sse_kms("")
    assert Encryption.sse_s3().to_read_args() == {}
    assert Encryption.sse_kms("alias/x").to_put_args() == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/x",
    }


def test_scrub_removes_key_material_by_name_and_value() -> None:
    enc = Encryption.sse_c(b"k" * 32)
    b64 = enc.secrets()[0]
    msg = f"Invalid type for parameter SSECustomerKey, value: b'{'k' * 32}', also {b64}"
    out = scrub(msg, enc)
    assert "k" * 32 not in out and b64 not in out
    header = "{'x-amz-server-side-encryption-customer-key': b'c2VjcmV0'}"
    assert "c2VjcmV0" not in scrub(header)
    assert "x-amz-server-side-encryption-customer-key-MD5': b'abc'" in scrub(
        "'x-amz-server-side-encryption-customer-key-MD5': b'abc'"
    )


def test_error_mapping_scrubs_botocore_validation_errors() -> None:
    from botocore.exceptions import ParamValidationError

    enc = Encryption.sse_c(b"z" * 32)
    exc = ParamValidationError(report=f"SSECustomerKey value: {enc.secrets()[1]}")
    err = to_storage_error(exc, operation="put", key="k", encryption=enc)
    assert isinstance(err, StorageError)
    assert enc.secrets()[1] not in str(err)


def test_presigned_url_redaction() -> None:
    url = (
        "https://s3.example.com/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIDEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Signature=deadbeef&X-Amz-Security-Token=tok"
    )
    p = PresignedURL(url=url, method="GET", key="k", bucket="b", expires_in=60)
    for text in (repr(p), str(p), f"{p}"):
        assert "deadbeef" not in text and "AKIDEXAMPLE" not in text and "tok" not in text
        assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in text
    assert p.url == url


# ---------------------------------------------------------------- progress


def test_progress_reporter_is_monotonic_under_threads_and_rewinds() -> None:
    events: list[TransferProgress] = []
    rep = ProgressReporter(events.append, operation="put", key="k", total=8 * 1000 * 100)

    def worker() -> None:
        for _ in range(1000):
            rep.add(100)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    rep.add(50)
    rep.add(-50)  # s3transfer rewinds a retried part with a negative delta
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rep.finish()
    counts = [e.bytes_transferred for e in events]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    assert counts[-1] == 800_000 and events[-1].total_bytes == 800_000


def test_progress_reporter_with_unknown_total_ends_with_a_total() -> None:
    events: list[TransferProgress] = []
    rep = ProgressReporter(events.append, operation="put", key="k", total=None)
    rep.add(10)
    rep.add(5)
    rep.finish()
    assert events[-1].bytes_transferred == 15 and events[-1].total_bytes == 15


# ---------------------------------------------------------------- planning


def test_lifecycle_merge_keeps_owner_rules_and_is_idempotent() -> None:
    owner = {
        "ID": "owner",
        "Status": "Enabled",
        "Filter": {"Prefix": "tmp/"},
        "Expiration": {"Days": 1},
    }
    stale = {
        "ID": bulk.ABORT_MULTIPART_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 99},
    }
    ours = bulk.default_lifecycle_rules()
    merged = bulk.merge_lifecycle_rules([owner, stale], ours)
    assert [r["ID"] for r in merged] == ["owner", *[r["ID"] for r in ours]]
    assert merged[1]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
    assert bulk.merge_lifecycle_rules(merged, ours) == merged
    assert [r["ID"] for r in bulk.default_lifecycle_rules(noncurrent_days=None)] == [
        bulk.ABORT_MULTIPART_RULE_ID
    ]


def test_copy_plan_covers_every_byte_with_valid_part_sizes() -> None:
    plan = CopyPlan.for_size(12 * 1024 * 1024 + 7, 5 * 1024 * 1024)
    assert plan.ranges[0] == (0, 5 * 1024 * 1024 - 1)
    assert plan.ranges[-1][1] == 12 * 1024 * 1024 + 6
    assert all(b - a + 1 >= MIN_PART_SIZE for a, b in plan.ranges[:-1])
    huge = CopyPlan.for_size(6 * 1024**4, 16 * 1024 * 1024)  # 6 TiB needs bigger parts
    assert len(huge.ranges) <= 10_000


class _FakeDeleteClient:
    def __init__(self) -> None:
        self.batches: list[int] = []

    def delete_objects(self, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        keys = [o["Key"] for o in Delete["Objects"]]
        self.batches.append(len(keys))
        if len(self.batches) == 2:
            raise StorageError("batch exploded", error_code=StorageErrorCode.SERVER_ERROR)
        return {
            "Deleted": [{"Key": k} for k in keys if not k.endswith("7")],
            "Errors": [
                {"Key": k, "Code": "AccessDenied", "Message": "no"} for k in keys if k.endswith("7")
            ],
        }


def test_delete_keys_reports_per_key_errors_and_failed_batches() -> None:
    client = _FakeDeleteClient()
    keys = [f"k{i}" for i in range(2500)]
    result = bulk.delete_keys(client, "b", keys)
    assert client.batches == [1000, 1000, 500]
    assert result.total == 2500
    codes = {e.code for e in result.errors}
    assert (
        "AccessDenied" in codes
        and len([e for e in result.errors if e.code != "AccessDenied"]) == 1000
    )


def test_delete_pages_stops_with_partial_result_on_list_failure() -> None:
    now = datetime.now(UTC)
    pages = [
        ListPage(
            entries=(FileEntry("p/1", 1, now, "e"), FileEntry("p/2", 1, now, "e")), next_token="t"
        ),
    ]

    def list_page(token: str | None) -> ListPage:
        if token is None:
            return pages[0]
        raise StorageError("boom", error_code=StorageErrorCode.NETWORK)

    deleted: list[str] = []

    def delete(keys: Any) -> Any:
        deleted.extend(keys)
        return bulk.DeleteResult(deleted=tuple(keys), errors=(), dry_run=False)

    result = bulk.delete_pages("p/", list_page=list_page, delete=delete, dry_run=False)
    assert result.deleted == ("p/1", "p/2") and deleted == ["p/1", "p/2"]
    assert [e.code for e in result.errors] == ["list_failed"]


# ---------------------------------------------------------------- moto-backed


def test_put_sends_sha256_checksum_and_sse_kms(moto_backend: S3StorageBackend) -> None:
    sent: list[dict[str, Any]] = []
    moto_backend.client.meta.events.register(
        "provide-client-params.s3.PutObject", lambda params, **_: sent.append(dict(params))
    )
    moto_backend.put("k", b"data", encryption=Encryption.sse_kms("alias/app"))
    assert sent[0]["ChecksumAlgorithm"] == "SHA256"
    head = moto_backend.client.head_object(Bucket="unit", Key="k")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert moto_backend.get("k") == b"data"
    off = S3StorageBackend("unit", region="us-east-1", sha256_checksums=False)
    sent.clear()
    off.client.meta.events.register(
        "provide-client-params.s3.PutObject", lambda params, **_: sent.append(dict(params))
    )
    off.put("k2", b"x")
    assert "ChecksumAlgorithm" not in sent[0]


def test_envelope_conflicts_are_value_errors(moto_backend: S3StorageBackend) -> None:
    with pytest.raises(ValueError):
        moto_backend.put(
            "k",
            b"x",
            encryption=Encryption.sse_s3(),
            extra_args={"ServerSideEncryption": "aws:kms"},
        )


def test_get_url_policy_rules_without_network(moto_backend: S3StorageBackend) -> None:
    with pytest.raises(URLPolicyError):
        moto_backend.get_url("k", policy=URLPolicy.PUBLIC)
    assert "X-Amz-Signature" in moto_backend.get_url("k")
    pub = S3StorageBackend("unit", region="us-east-1", public_url_base="https://cdn.example")
    assert pub.get_url("k") == "https://cdn.example/k"
    with pytest.raises(URLPolicyError):
        pub.get_url("k", policy="public", expires_in=5)  # type: ignore[arg-type]
    assert "X-Amz-Expires=5" in pub.get_url("k", policy=URLPolicy.PRESIGNED, expires_in=5)


def test_missing_object_errors_are_typed(moto_backend: S3StorageBackend) -> None:
    with pytest.raises(StorageError) as exc:
        moto_backend.get("nope")
    assert exc.value.error_code is StorageErrorCode.NOT_FOUND
    assert moto_backend.head("nope") is None and not moto_backend.exists("nope")
    with pytest.raises(ValueError):
        moto_backend.get_range("k", offset=-1, length=1)
    with pytest.raises(ValueError):
        moto_backend.list(max_keys=0)


def test_multipart_copy_sends_sse_c_on_every_part(moto_backend: S3StorageBackend) -> None:
    enc = Encryption.sse_c(bytes(range(32)))
    b = S3StorageBackend(
        "unit",
        region="us-east-1",
        copy_multipart_threshold=6 * 1024 * 1024,
        copy_part_size=5 * 1024 * 1024,
    )
    b.put("src", b"a" * (11 * 1024 * 1024), encryption=enc)
    calls: dict[str, list[dict[str, Any]]] = {}
    for op in ("CreateMultipartUpload", "UploadPartCopy", "CompleteMultipartUpload"):
        b.client.meta.events.register(
            f"provide-client-params.s3.{op}",
            lambda params, _op=op, **_: calls.setdefault(_op, []).append(dict(params)),
        )
    b.copy("src", "dst", encryption=enc)
    key = enc.to_put_args()["SSECustomerKey"]
    assert calls["CreateMultipartUpload"][0]["SSECustomerKey"] == key
    assert len(calls["UploadPartCopy"]) == 3
    for part in calls["UploadPartCopy"]:
        assert part["CopySourceSSECustomerKey"] == key and part["SSECustomerKey"] == key
    assert b.head("dst", encryption=enc).size == 11 * 1024 * 1024  # type: ignore[union-attr]


def test_async_backend_imports_without_aioboto3_and_names_the_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['aioboto3'] = None\n"
        "from genblaze_s3 import AsyncS3StorageBackend, S3StorageBackend\n"
        "b = S3StorageBackend('b', endpoint_url='http://127.0.0.1:1', access_key_id='a',"
        " secret_access_key='s')\n"
        "try:\n"
        "    AsyncS3StorageBackend.from_sync(b)\n"
        "except ImportError as e:\n"
        "    assert 'genblaze-s3[async]' in str(e)\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_module_paths_of_the_public_0_3_package_still_import() -> None:
    import genblaze_s3
    from genblaze_s3.async_backend import AsyncS3StorageBackend
    from genblaze_s3.backend import S3StorageBackend as FromBackend
    from genblaze_s3.encryption import Encryption as FromEncryption
    from genblaze_s3.encryption import EncryptionMode
    from genblaze_s3.presigned import PresignedURL as FromPresigned
    from genblaze_s3.url_policy import URLPolicy as FromURLPolicy
    from genblaze_s3.url_policy import URLPolicyError as FromURLPolicyError

    assert FromBackend is S3StorageBackend
    assert AsyncS3StorageBackend is genblaze_s3.AsyncS3StorageBackend
    assert FromEncryption is Encryption and EncryptionMode is genblaze_s3.EncryptionMode
    assert FromPresigned is PresignedURL
    assert (FromURLPolicy, FromURLPolicyError) == (URLPolicy, URLPolicyError)
