"""Sync and async backends read S3 answers the same way (they share ``backend.calls``).

The async backend once drifted: ``ahead`` treated only ``{"404", "403", "NoSuchKey"}``
as absent, and ``aexists`` let connection errors escape unmapped. Each row
here answers HeadObject the same way to both backends, at the botocore /
aiobotocore request layer, and checks they agree with each other and with the
documented rule. No network: the answer is produced where the request would go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiobotocore.client import AioBaseClient
from botocore.client import BaseClient
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from genblaze_core.exceptions import StorageError
from genblaze_core.storage.errors import StorageErrorCode

from genblaze_s3 import AsyncS3StorageBackend, S3StorageBackend


def client_error(code: str, status: int | None) -> ClientError:
    meta: dict[str, Any] = {"HTTPStatusCode": status} if status is not None else {}
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": meta}, "Head")


class HeadObjectAnswer:
    """What HeadObject raises (HeadBucket, the preflight, always succeeds)."""

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def respond(self, operation: str) -> dict[str, Any]:
        if operation == "HeadObject" and self.error is not None:
            raise self.error
        if operation in ("HeadBucket", "HeadObject"):
            return {"ContentLength": 1, "LastModified": "2026-01-01T00:00:00Z"}
        raise AssertionError(f"unexpected request {operation}")


@pytest.fixture
def answer(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeadObjectAnswer]:
    fake = HeadObjectAnswer()

    def sync_call(client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return fake.respond(operation)

    async def async_call(client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return fake.respond(operation)

    monkeypatch.setattr(BaseClient, "_make_api_call", sync_call)
    monkeypatch.setattr(AioBaseClient, "_make_api_call", async_call)
    yield fake


@pytest.fixture
def backends() -> Iterator[tuple[S3StorageBackend, AsyncS3StorageBackend]]:
    sync = S3StorageBackend(
        "parity", endpoint_url="http://127.0.0.1:9", access_key_id="a", secret_access_key="s"
    )
    yield sync, AsyncS3StorageBackend.from_sync(sync)
    sync.close()


def run_async(backend: AsyncS3StorageBackend, method: str, key: str) -> Any:
    async def scenario() -> Any:
        async with backend:
            return await getattr(backend, method)(key)

    return asyncio.run(scenario())


ABSENT = [
    ("404", 404),
    ("NoSuchKey", 404),
    ("NotFound", 404),
    ("403", 403),
    ("AccessDenied", 403),
    ("Forbidden", 403),
    # The code alone decides too (some stores send no usable status with it):
    ("NoSuchKey", None),
    ("NotFound", None),
    ("AccessDenied", None),
    ("Forbidden", None),
]


@pytest.mark.parametrize(("code", "status"), ABSENT)
def test_head_and_exists_treat_the_same_codes_as_absent(
    answer: HeadObjectAnswer,
    backends: tuple[S3StorageBackend, AsyncS3StorageBackend],
    code: str,
    status: int | None,
) -> None:
    sync, async_ = backends
    answer.error = client_error(code, status)
    assert sync.head("k") is None
    assert sync.exists("k") is False
    assert run_async(async_, "ahead", "k") is None
    assert run_async(async_, "aexists", "k") is False


def test_head_answers_metadata_and_exists_true_alike(
    answer: HeadObjectAnswer, backends: tuple[S3StorageBackend, AsyncS3StorageBackend]
) -> None:
    sync, async_ = backends
    assert sync.head("k") == run_async(async_, "ahead", "k")
    assert sync.exists("k") is run_async(async_, "aexists", "k") is True


def test_sse_c_object_headed_without_key_exists_for_both(
    answer: HeadObjectAnswer, backends: tuple[S3StorageBackend, AsyncS3StorageBackend]
) -> None:
    sync, async_ = backends
    answer.error = client_error("400", 400)
    assert sync.exists("k") is True
    assert run_async(async_, "aexists", "k") is True


FAILURES = [
    pytest.param(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), id="connection"),
    pytest.param(ReadTimeoutError(endpoint_url="http://127.0.0.1:9"), id="read-timeout"),
    pytest.param(client_error("InternalError", 500), id="server-error"),
    pytest.param(client_error("SlowDown", 503), id="throttled"),
]


@pytest.mark.parametrize("error", FAILURES)
@pytest.mark.parametrize(
    ("sync_method", "async_method"), [("exists", "aexists"), ("head", "ahead")]
)
def test_failures_are_mapped_to_the_same_storage_error(
    answer: HeadObjectAnswer,
    backends: tuple[S3StorageBackend, AsyncS3StorageBackend],
    error: BaseException,
    sync_method: str,
    async_method: str,
) -> None:
    sync, async_ = backends
    answer.error = error
    with pytest.raises(StorageError) as from_sync:
        getattr(sync, sync_method)("k")
    with pytest.raises(StorageError) as from_async:
        run_async(async_, async_method, "k")
    assert from_async.value.error_code == from_sync.value.error_code
    assert from_async.value.is_retriable == from_sync.value.is_retriable is True
    assert from_async.value.__cause__ is error
    if isinstance(error, EndpointConnectionError):
        assert from_sync.value.error_code is StorageErrorCode.NETWORK


class UploadRecorder:
    """Answers every upload request as S3 would and records the operations, in order."""

    def __init__(self) -> None:
        self.operations: list[str] = []

    def respond(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.operations.append(operation)
        body = params.get("Body")
        if body is not None and hasattr(body, "read"):
            body.read()  # as the HTTP layer would
        answers: dict[str, dict[str, Any]] = {
            "HeadBucket": {},
            "PutObject": {"ETag": '"e"'},
            "CreateMultipartUpload": {"UploadId": "u"},
            "UploadPart": {"ETag": '"p"'},
            "CompleteMultipartUpload": {"ETag": '"c"'},
        }
        if operation not in answers:
            raise AssertionError(f"unexpected request {operation}")
        return answers[operation]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> UploadRecorder:
    fake = UploadRecorder()

    def sync_call(client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return fake.respond(operation, params)

    async def async_call(client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return fake.respond(operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", sync_call)
    monkeypatch.setattr(AioBaseClient, "_make_api_call", async_call)
    return fake


def _uploads(recorder: UploadRecorder, backend: Any, data: Any, **options: Any) -> list[str]:
    """The S3 operations one put (sync) or aput (async) sends, HeadBucket aside."""
    recorder.operations.clear()
    if isinstance(backend, AsyncS3StorageBackend):

        async def scenario() -> None:
            async with backend:
                await backend.aput("k", data, **options)

        asyncio.run(scenario())
    else:
        backend.put("k", data, **options)
    return [op for op in recorder.operations if op != "HeadBucket"]


def test_one_upload_decision_for_both_backends(
    recorder: UploadRecorder, backends: tuple[S3StorageBackend, AsyncS3StorageBackend]
) -> None:
    """Both backends send the same requests for the same upload (they used to decide
    differently): bytes up to the multipart threshold and any body with a pinned
    whole-object ``ChecksumSHA256`` in one PutObject; larger bytes and streams in parts."""
    import io

    from genblaze_s3.backend import calls

    sync, async_ = backends
    threshold = sync._connection.config.multipart_threshold
    pinned = {"ChecksumSHA256": "..."}
    cases = {
        "small bytes": (lambda: b"x" * 1024, {}, ["PutObject"]),
        "bytes at the threshold": (lambda: b"x" * threshold, {}, ["PutObject"]),
        "a pinned stream": (lambda: io.BytesIO(b"x" * 40), {"extra_args": pinned}, ["PutObject"]),
    }
    for name, (data, options, expected) in cases.items():
        for backend in (sync, async_):
            assert _uploads(recorder, backend, data(), **options) == expected, (name, backend)
    parts = ["CreateMultipartUpload", "UploadPart", "UploadPart", "CompleteMultipartUpload"]
    managed = {
        # over the threshold: the managed transfer, in parts (two: threshold + 1 byte)
        "bytes over the threshold": (lambda: b"x" * (threshold + 1), parts),
        # a stream goes to the managed transfer, which sends a small one in one request
        "a small stream": (lambda: io.BytesIO(b"x" * 40), ["PutObject"]),
    }
    for name, (data, expected) in managed.items():
        for backend in (sync, async_):
            assert _uploads(recorder, backend, data()) == expected, (name, backend)
    # and the rule itself, as a table
    assert calls.single_put_body(b"x" * 17, {}, 16) is None
    assert calls.single_put_body(bytearray(b"xyz"), {}, 16) == b"xyz"
