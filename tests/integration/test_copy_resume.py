"""Resume edge cases: the source expires on resume, the upload vanished, checksums hold."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from typing import Any

import pytest

from genblaze_s3.transfer import (
    CopyConfig,
    CopyProgress,
    Destination,
    FetchPolicy,
    MemoryCheckpointStore,
    TransferError,
    copy_url,
)
from genblaze_s3.transfer.multipart import install_part_signing_hook
from tests.support.cdn import CDNServer
from tests.support.s3proxy import debris

MiB = 1024 * 1024
POLICY = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}))
CFG = CopyConfig(part_size=5 * MiB, concurrency=2, read_timeout=2.0, backoff_base=0.01)
DATA = os.urandom(16 * MiB + 7)


@pytest.fixture(scope="module")
def cdn(cdn: CDNServer) -> CDNServer:
    cdn.add("/v.mp4", DATA, content_type="video/mp4")
    return cdn


def _fail_midway(backend: Any, cdn: CDNServer, store: MemoryCheckpointStore, key: str) -> None:
    with pytest.raises(TransferError) as info:
        copy_url(
            backend,
            cdn.url("/v.mp4", mode="truncate", at=12 * MiB),
            Destination(key=key),
            policy=POLICY,
            config=CFG,
            checkpoint_store=store,
            checkpoint_id="j",
        )
    assert info.value.retryable and store.load("j") is not None


def test_source_expired_on_resume_aborts_the_kept_upload(cdn: CDNServer, backend: Any) -> None:
    store = MemoryCheckpointStore()
    _fail_midway(backend, cdn, store, "e/v.mp4")
    assert debris(backend.client, backend.bucket)[1] == ["e/v.mp4"]
    with pytest.raises(TransferError) as info:
        copy_url(
            backend,
            cdn.url("/v.mp4", mode="expired"),
            Destination(key="e/v.mp4"),
            policy=POLICY,
            config=CFG,
            checkpoint_store=store,
            checkpoint_id="j",
        )
    assert info.value.code == "source_expired" and not info.value.retryable
    assert debris(backend.client, backend.bucket) == ([], [])
    assert store.load("j") is None


def test_resume_after_upload_vanished_starts_a_fresh_upload(cdn: CDNServer, backend: Any) -> None:
    store = MemoryCheckpointStore()
    _fail_midway(backend, cdn, store, "g/v.mp4")
    cp = store.load("j")
    assert cp is not None
    backend.client.abort_multipart_upload(Bucket=backend.bucket, Key=cp.key, UploadId=cp.upload_id)
    r = copy_url(
        backend,
        cdn.url("/v.mp4"),
        Destination(key="g/v.mp4"),
        policy=POLICY,
        config=CFG,
        checkpoint_store=store,
        checkpoint_id="j",
    )
    assert r.sha256 == hashlib.sha256(DATA).hexdigest() and r.parts_uploaded == 4
    assert debris(backend.client, backend.bucket) == (["g/v.mp4"], [])


def test_server_rejects_a_part_whose_checksum_is_wrong(backend: Any) -> None:
    """Why unsigned part payloads stay safe: the store verifies x-amz-checksum-sha256."""
    assert backend.supports_sha256_checksums
    client = backend.client
    install_part_signing_hook(client)
    up = client.create_multipart_upload(
        Bucket=backend.bucket, Key="ck", ChecksumAlgorithm="SHA256"
    )["UploadId"]
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(Exception, match="BadDigest|InvalidRequest|XAmzContentSHA256Mismatch"):
        client.upload_part(
            Bucket=backend.bucket,
            Key="ck",
            UploadId=up,
            PartNumber=1,
            Body=b"a" * (5 * MiB),
            ChecksumSHA256=wrong,
        )
    client.abort_multipart_upload(Bucket=backend.bucket, Key="ck", UploadId=up)


def test_progress_is_reported_at_a_bounded_rate(cdn: CDNServer, backend: Any) -> None:
    seen: list[CopyProgress] = []
    cfg = CopyConfig(part_size=5 * MiB, progress_interval=0.25)
    t0 = time.monotonic()
    copy_url(
        backend,
        cdn.url("/v.mp4", mode="slow", rate=16 * MiB),
        Destination(key="p.mp4"),
        policy=POLICY,
        config=cfg,
        progress=seen.append,
    )
    elapsed = time.monotonic() - t0
    assert len(seen) <= elapsed / 0.25 + 2
    assert len(seen) >= 3
    done = [p.bytes_done for p in seen]
    assert done == sorted(done) and seen[-1] == CopyProgress(len(DATA), len(DATA))


@pytest.mark.parametrize(
    ("mode", "cdn_mode", "requests"),
    [
        ("refetch", None, 2),  # hash pass, then streamed upload; no spool
        ("auto", None, 2),  # length + validators: as refetch
        ("auto", "no_validators", 1),  # nothing to check a second read against: spool
        ("spool", None, 1),
    ],
)
def test_cas_with_unknown_hash_refetches_or_spools(
    cdn: CDNServer, backend: Any, mode: str, cdn_mode: str | None, requests: int
) -> None:
    cfg = CopyConfig(part_size=5 * MiB, cas_mode=mode, progress_interval=0.0)  # type: ignore[arg-type]
    cdn.clear_requests()
    seen: list[CopyProgress] = []
    url = cdn.url("/v.mp4", mode=cdn_mode)
    r = copy_url(backend, url, Destination(), policy=POLICY, config=cfg, progress=seen.append)
    sha = hashlib.sha256(DATA).hexdigest()
    assert r.sha256 == sha and r.key.endswith(f"{sha}.mp4") and r.size == len(DATA)
    assert [q.path for q in cdn.requests] == ["/v.mp4"] * requests
    body = backend.client.get_object(Bucket=backend.bucket, Key=r.key)["Body"].read()
    assert body == DATA
    assert debris(backend.client, backend.bucket) == ([r.key], [])
    # Two passes over the body, each counted for half: monotonic, halfway after the
    # first pass, the size exactly once at the end.
    done = [p.bytes_done for p in seen]
    assert done == sorted(done) and len(DATA) // 2 in done
    assert seen[-1] == CopyProgress(len(DATA), len(DATA))
    # The same bytes again: found after the first pass, which then was the whole copy.
    seen.clear()
    again = copy_url(backend, url, Destination(), policy=POLICY, config=cfg, progress=seen.append)
    assert again.deduplicated and again.key == r.key
    assert seen[-1] == CopyProgress(len(DATA), len(DATA))


@pytest.mark.parametrize("mode", ["refetch", "auto"])
def test_refetch_detects_a_source_that_changed_between_passes(
    cdn: CDNServer, backend: Any, mode: str
) -> None:
    cfg = CopyConfig(part_size=5 * MiB, cas_mode=mode)  # type: ignore[arg-type]
    with pytest.raises(TransferError) as info:
        copy_url(
            backend,
            cdn.url("/v.mp4", mode="changing_etag"),
            Destination(),
            policy=POLICY,
            config=cfg,
        )
    assert info.value.code == "source_changed" and info.value.retryable
    assert debris(backend.client, backend.bucket) == ([], [])
