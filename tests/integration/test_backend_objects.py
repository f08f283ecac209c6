"""S3StorageBackend object operations against a real SeaweedFS."""

from __future__ import annotations

import io
import os
import threading
import tracemalloc
from typing import Any

import pytest
from genblaze_core.exceptions import StorageError
from genblaze_core.storage.config import StorageConfig
from genblaze_core.storage.errors import StorageErrorCode
from genblaze_core.storage.types import TransferProgress

from genblaze_s3 import S3StorageBackend
from genblaze_s3.local.services import SeaweedS3
from tests.support.helpers import user_backend

MiB = 1024 * 1024


def assert_monotonic_to(events: list[TransferProgress], total: int) -> None:
    counts = [e.bytes_transferred for e in events]
    assert counts, "no progress events"
    assert counts == sorted(counts), "progress went backwards"
    assert counts[-1] == total
    assert events[-1].total_bytes == total


def test_put_returns_key_and_round_trips_bytes(backend: S3StorageBackend, s3_client: Any) -> None:
    assert backend.put("a/b.txt", b"hello", content_type="text/plain", metadata={"k": "v"}) == (
        "a/b.txt"
    )
    assert backend.get("a/b.txt") == b"hello"
    raw = s3_client.head_object(Bucket=backend.bucket, Key="a/b.txt", ChecksumMode="ENABLED")
    assert raw["ContentType"] == "text/plain"
    assert raw["Metadata"] == {"k": "v"}
    assert raw.get("ChecksumSHA256"), "SHA-256 checksum was not sent with the upload"


def test_single_put_progress_reaches_total(backend: S3StorageBackend) -> None:
    events: list[TransferProgress] = []
    backend.put("small", b"x" * 1000, progress=events.append)
    assert_monotonic_to(events, 1000)
    assert {e.operation for e in events} == {"put"}


def test_multipart_put_from_file_uses_16mib_parts_and_reports_progress_threadsafely(
    backend: S3StorageBackend, tmp_path: Any, s3_client: Any
) -> None:
    data = os.urandom(40 * MiB)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    events: list[TransferProgress] = []
    threads: set[int] = set()

    def record(p: TransferProgress) -> None:
        threads.add(threading.get_ident())
        events.append(p)

    with path.open("rb") as fh:
        backend.put("big.bin", fh, progress=record)
    assert_monotonic_to(events, len(data))
    head = s3_client.head_object(Bucket=backend.bucket, Key="big.bin")
    assert head["ETag"].strip('"').endswith("-3"), "expected 3 parts of 16 MiB"
    assert backend.get("big.bin") == data


def test_non_seekable_stream_upload(backend: S3StorageBackend) -> None:
    data = os.urandom(20 * MiB)
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb") as out:
            out.write(data)

    t = threading.Thread(target=feed)
    t.start()
    events: list[TransferProgress] = []
    with os.fdopen(r, "rb") as src:
        backend.put("piped", src, progress=events.append)
    t.join()
    assert backend.get("piped") == data
    assert events[-1].bytes_transferred == len(data)


def test_get_and_stream_progress_and_stream_memory_is_bounded(backend: S3StorageBackend) -> None:
    data = os.urandom(24 * MiB)
    backend.put("s.bin", data)
    got: list[TransferProgress] = []
    assert backend.get("s.bin", progress=got.append) == data
    assert_monotonic_to(got, len(data))

    streamed: list[TransferProgress] = []
    tracemalloc.start()
    try:
        total = 0
        sizes = []
        for chunk in backend.stream("s.bin", chunk_size=MiB, progress=streamed.append):
            sizes.append(len(chunk))
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == len(data) and max(sizes) <= MiB and len(sizes) >= 24
    assert peak < 8 * MiB, f"stream held {peak} bytes at once"
    assert_monotonic_to(streamed, len(data))


def test_stream_of_missing_key_raises_at_call(backend: S3StorageBackend) -> None:
    with pytest.raises(StorageError) as exc:
        backend.stream("missing")
    assert exc.value.error_code is StorageErrorCode.NOT_FOUND


def test_head_exists_get_range_list(backend: S3StorageBackend) -> None:
    backend.put("d/one", b"0123456789", content_type="application/x-test", metadata={"a": "1"})
    meta = backend.head("d/one")
    assert meta is not None
    assert (meta.size, meta.content_type, meta.metadata) == (10, "application/x-test", {"a": "1"})
    assert backend.head("d/none") is None
    assert backend.exists("d/one") and not backend.exists("d/none")
    assert backend.get_range("d/one", offset=2, length=3) == b"234"
    assert backend.get_range("d/one", offset=0, length=0) == b""
    for i in range(5):
        backend.put(f"d/k{i}", b"x")
    keys, token = [], None
    while True:
        page = backend.list("d/k", max_keys=2, continuation_token=token)
        assert len(page.entries) <= 2
        keys += [e.key for e in page.entries]
        token = page.next_token
        if token is None:
            break
    assert keys == [f"d/k{i}" for i in range(5)]


def test_get_missing_is_typed_not_found(backend: S3StorageBackend) -> None:
    with pytest.raises(StorageError) as exc:
        backend.get("nope")
    assert exc.value.error_code is StorageErrorCode.NOT_FOUND
    assert not exc.value.is_retriable


def test_delete_and_delete_many_in_batches(backend: S3StorageBackend, s3_client: Any) -> None:
    backend.put("gone", b"x")
    backend.delete("gone")
    assert not backend.exists("gone")
    keys = [f"many/{i:04d}" for i in range(1005)]
    for k in keys:
        s3_client.put_object(Bucket=backend.bucket, Key=k, Body=b"")
    calls: list[int] = []
    backend.client.meta.events.register(
        "provide-client-params.s3.DeleteObjects",
        lambda params, **_: calls.append(len(params["Delete"]["Objects"])),
    )
    preview = backend.delete_many(keys, dry_run=True)
    assert preview.dry_run and len(preview.deleted) == 1005 and calls == []
    result = backend.delete_many(keys)
    assert calls == [1000, 5]
    assert result.all_succeeded and sorted(result.deleted) == keys
    assert backend.list("many/").entries == ()


def test_delete_prefix_dry_run_default_refuses_empty_and_deletes(
    backend: S3StorageBackend,
) -> None:
    for i in range(7):
        backend.put(f"tmp/{i}", b"x")
    backend.put("keep/1", b"x")
    with pytest.raises(ValueError):
        backend.delete_prefix("")
    with pytest.raises(ValueError):
        backend.delete_prefix("  ")
    preview = backend.delete_prefix("tmp/")
    assert preview.dry_run and len(preview.deleted) == 7
    assert len(backend.list("tmp/").entries) == 7
    done = backend.delete_prefix("tmp/", dry_run=False)
    assert len(done.deleted) == 7 and done.all_succeeded
    assert backend.list("tmp/").entries == () and backend.exists("keep/1")


def test_delete_prefix_reports_partial_progress_when_listing_fails(
    backend: S3StorageBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        backend.put(f"p/{i}", b"x")
    real_list = backend.list
    pages = {"n": 0}

    def flaky_list(prefix: str = "", **kw: Any) -> Any:
        pages["n"] += 1
        if pages["n"] == 2:
            raise StorageError("listing broke", error_code=StorageErrorCode.SERVER_ERROR)
        return real_list(prefix, max_keys=3, **{k: v for k, v in kw.items() if k != "max_keys"})

    monkeypatch.setattr(backend, "list", flaky_list)
    result = backend.delete_prefix("p/", dry_run=False)
    assert len(result.deleted) == 3
    assert [e.code for e in result.errors] == ["list_failed"]
    monkeypatch.undo()
    assert len(backend.list("p/").entries) == 3


def test_copy_server_side_and_multipart_above_threshold(
    seaweed: SeaweedS3, bucket: str, s3_client: Any
) -> None:
    small = user_backend(seaweed, bucket)
    small.put("src.txt", b"copy me", content_type="text/plain")
    small.copy("src.txt", "dst.txt")
    assert small.get("dst.txt") == b"copy me"

    lowered = user_backend(
        seaweed, bucket, copy_multipart_threshold=8 * MiB, copy_part_size=5 * MiB
    )
    data = os.urandom(12 * MiB + 7)
    lowered.put("big.src", data, content_type="video/mp4", metadata={"run": "r1"})
    parts: list[int] = []
    lowered.client.meta.events.register(
        "provide-client-params.s3.UploadPartCopy",
        lambda params, **_: parts.append(params["PartNumber"]),
    )
    lowered.copy("big.src", "big.dst")
    assert sorted(parts) == [1, 2, 3]
    assert lowered.get("big.dst") == data
    head = s3_client.head_object(Bucket=bucket, Key="big.dst")
    assert head["ContentType"] == "video/mp4" and head["Metadata"] == {"run": "r1"}
    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_copy_missing_source_is_typed(backend: S3StorageBackend) -> None:
    with pytest.raises(StorageError) as exc:
        backend.copy("absent", "x")
    assert exc.value.error_code is StorageErrorCode.NOT_FOUND


def test_user_agent_and_client_settings(backend: S3StorageBackend) -> None:
    seen: list[str] = []
    backend.client.meta.events.register(
        "before-send.s3",
        lambda request, **_: seen.append(
            request.headers["User-Agent"].decode()
            if isinstance(request.headers["User-Agent"], bytes)
            else request.headers["User-Agent"]
        ),
    )
    backend.put("ua", b"x")
    assert seen and all("b2ai-genblaze/" in ua for ua in seen)
    cfg = backend.client.meta.config
    assert cfg.signature_version == "s3v4"
    assert cfg.s3["addressing_style"] == "path"
    assert cfg.request_checksum_calculation == "when_required"
    assert cfg.response_checksum_validation == "when_required"
    assert cfg.retries["mode"] in {"standard", "adaptive"}


def test_storage_config_is_honoured(seaweed: SeaweedS3, bucket: str) -> None:
    b = user_backend(
        seaweed,
        bucket,
        config=StorageConfig(multipart_threshold=5 * MiB, multipart_chunk_size=5 * MiB),
    )
    b.put("cfg", io.BytesIO(os.urandom(11 * MiB)))
    assert b.head("cfg").etag.strip('"').endswith("-3")  # type: ignore[union-attr]


def test_close_is_idempotent_and_backend_reconnects(backend: S3StorageBackend) -> None:
    backend.put("c", b"1")
    backend.close()
    backend.close()
    assert backend.get("c") == b"1"


def test_failed_parts_are_retried_and_progress_stays_monotonic(
    seaweed: SeaweedS3, bucket: str
) -> None:
    from tests.support.s3proxy import S3FaultProxy

    data = os.urandom(40 * MiB)
    with S3FaultProxy(seaweed.endpoint_url) as proxy:
        backend = S3StorageBackend(
            bucket,
            endpoint_url=proxy.endpoint_url,
            access_key_id=seaweed.access_key,
            secret_access_key=seaweed.secret_key,
        )
        proxy.fail("UploadPart", part=2, status=503, times=1)
        proxy.fail("UploadPart", part=3, kind="reset", times=1)
        events: list[TransferProgress] = []
        backend.put("retried.bin", io.BytesIO(data), progress=events.append)
        attempts = [e.part for e in proxy.log if e.operation == "UploadPart"]
    assert attempts.count(2) == 2 and attempts.count(3) == 2 and attempts.count(1) == 1
    assert_monotonic_to(events, len(data))
    assert user_backend(seaweed, bucket).get("retried.bin") == data
