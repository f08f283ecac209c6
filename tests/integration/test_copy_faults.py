"""copy_url against real servers: the test CDN's faults and a fault-injecting S3 proxy.

Each row asserts the user-visible outcome (object correct, or the right error
code) and the invariant: no objects and no multipart uploads left behind.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from genblaze_core.storage.base import KeyStrategy

from genblaze_s3.local.services import drop_bucket
from genblaze_s3.transfer import (
    CopyConfig,
    CopyProgress,
    Destination,
    FetchPolicy,
    MemoryCheckpointStore,
    TransferError,
    copy_url,
)
from tests.support.cdn import CDNServer
from tests.support.s3proxy import S3FaultProxy, debris, make_backend

MiB = 1024 * 1024
POLICY = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}))
CFG = CopyConfig(
    part_size=5 * MiB, concurrency=3, read_timeout=1.0, backoff_base=0.01, backoff_cap=0.05
)
DATA = os.urandom(12 * MiB + 12345)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(scope="module")
def cdn(cdn: CDNServer) -> CDNServer:
    cdn.add("/v.mp4", DATA, content_type="video/mp4")
    cdn.add("/small.png", b"\x89PNG" + b"x" * 1000, content_type="image/png")
    return cdn


def _clean(backend: Any) -> None:
    assert debris(backend.client, backend.bucket) == ([], [])


def _body(backend: Any, key: str) -> bytes:
    return backend.client.get_object(Bucket=backend.bucket, Key=key)["Body"].read()


def test_multipart_copy_stores_exact_bytes_and_reports_progress(
    cdn: CDNServer, backend: Any
) -> None:
    seen: list[CopyProgress] = []
    r = copy_url(
        backend, cdn.url("/v.mp4"), Destination(), policy=POLICY, config=CFG, progress=seen.append
    )
    assert r.sha256 == SHA and r.size == len(DATA) and not r.deduplicated
    assert r.key == f"genblaze/assets/{SHA[:2]}/{SHA[2:4]}/{SHA}.mp4"
    assert _body(backend, r.key) == DATA
    head = backend.client.head_object(Bucket=backend.bucket, Key=r.key)
    assert head["ContentType"] == "video/mp4"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert r.parts_uploaded == 3 and r.bytes_uploaded == len(DATA)
    assert seen[-1] == CopyProgress(len(DATA), len(DATA))
    objects, uploads = debris(backend.client, backend.bucket)
    assert objects == [r.key] and uploads == []


def test_second_copy_deduplicates_and_known_hash_skips_download(
    cdn: CDNServer, backend: Any
) -> None:
    first = copy_url(backend, cdn.url("/v.mp4"), Destination(), policy=POLICY, config=CFG)
    again = copy_url(backend, cdn.url("/v.mp4"), Destination(), policy=POLICY, config=CFG)
    assert again.deduplicated and again.key == first.key and again.bytes_uploaded == 0
    cdn.clear_requests()
    skip = copy_url(
        backend, cdn.url("/v.mp4"), Destination(), expected_sha256=SHA, policy=POLICY, config=CFG
    )
    assert skip.deduplicated and skip.key == first.key and skip.size == len(DATA)
    assert cdn.requests == []  # the source was never contacted


def test_small_object_is_a_single_put(cdn: CDNServer, backend: Any, seaweed: Any) -> None:
    dest = Destination(
        key_strategy=KeyStrategy.HIERARCHICAL,
        asset_id="a1",
        run_id="r1",
        date_str="2026-11-25",
        tenant="t1",
    )
    r = copy_url(backend, cdn.url("/small.png"), dest, policy=POLICY, config=CFG)
    assert r.key == "genblaze/runs/t1/2026-11-25/r1/assets/a1.png" and r.parts_uploaded == 1
    assert _body(backend, r.key) == b"\x89PNG" + b"x" * 1000
    head = backend.client.head_object(Bucket=backend.bucket, Key=r.key)
    assert head["CacheControl"] == "private, max-age=3600"


def test_small_cas_copy_is_one_conditional_put_and_412_means_deduplicated(
    cdn: CDNServer, seaweed: Any, bucket: str
) -> None:
    with S3FaultProxy(seaweed.endpoint_url) as proxy:
        backend = make_backend(seaweed, bucket, endpoint_url=proxy.endpoint_url)
        first = copy_url(backend, cdn.url("/small.png"), Destination(), policy=POLICY, config=CFG)
        assert [e.operation for e in proxy.log] == ["PutObject"]  # no HEAD before it
        again = copy_url(backend, cdn.url("/small.png"), Destination(), policy=POLICY, config=CFG)
        assert again.deduplicated and again.key == first.key and again.bytes_uploaded == 0
        assert [(e.operation, e.status) for e in proxy.log[1:]] == [
            ("PutObject", 412),
            ("HeadObject", 200),
        ]
    assert _body(make_backend(seaweed, bucket), first.key) == b"\x89PNG" + b"x" * 1000
    drop_bucket(seaweed.client(), bucket)


def test_store_without_conditional_put_falls_back_to_head_then_put(
    cdn: CDNServer, seaweed: Any, bucket: str
) -> None:
    from genblaze_s3.transfer import copy as copy_module

    with S3FaultProxy(seaweed.endpoint_url) as proxy:
        backend = make_backend(seaweed, bucket, endpoint_url=proxy.endpoint_url)
        proxy.fail("PutObject", status=501, code="NotImplemented", times=1)
        r = copy_url(backend, cdn.url("/small.png"), Destination(), policy=POLICY, config=CFG)
        ops = [(e.operation, e.status) for e in proxy.log]
        # 501 is not retried; the backend remembers it and uses HEAD + PUT instead.
        assert ops == [("PutObject", 501), ("HeadObject", 404), ("PutObject", 200)]
        assert getattr(backend, copy_module.NO_CONDITIONAL_PUT_ATTR) is True
    assert _body(make_backend(seaweed, bucket), r.key) == b"\x89PNG" + b"x" * 1000
    drop_bucket(seaweed.client(), bucket)


def test_expected_sha256_mismatch_leaves_nothing(cdn: CDNServer, backend: Any) -> None:
    for strategy in (KeyStrategy.CONTENT_ADDRESSABLE, KeyStrategy.HIERARCHICAL):
        with pytest.raises(TransferError) as info:
            copy_url(
                backend,
                cdn.url("/v.mp4"),
                Destination(key_strategy=strategy, asset_id="a"),
                expected_sha256="0" * 64,
                policy=POLICY,
                config=CFG,
            )
        assert info.value.code == "checksum_mismatch"
    with pytest.raises(TransferError) as info:
        copy_url(
            backend,
            cdn.url("/v.mp4"),
            Destination(key="x/y.mp4"),
            expected_sha256=hashlib.sha256(b"other").hexdigest(),
            policy=POLICY,
            config=CFG,
        )
    assert info.value.code == "checksum_mismatch"
    _clean(backend)


@pytest.mark.parametrize(
    ("mode", "params", "code", "retryable"),
    [
        ("truncate", {"at": 7 * MiB}, "source_truncated", True),
        ("truncate", {"at": 1000}, "source_truncated", True),
        ("wrong_length", {}, "source_truncated", True),
        ("chunked_cut", {}, "source_truncated", True),
        ("stall", {"after": 6 * MiB, "seconds": 10}, "source_too_slow", True),
        ("stall", {"after": 0, "seconds": 10}, "source_too_slow", True),
        ("flaky5xx", {"n": 100, "status": 503}, "source_unavailable", True),
        ("status", {"code": 429}, "source_unavailable", True),
        ("status", {"code": 500}, "source_unavailable", True),
        ("status", {"code": 404}, "source_not_found", False),
        ("expired", {}, "source_expired", False),
        ("expired", {"code": 410}, "source_expired", False),
        ("expired", {"code": 401}, "source_expired", False),
        ("huge_length", {}, "too_large", False),
    ],
)
@pytest.mark.parametrize("strategy", [KeyStrategy.CONTENT_ADDRESSABLE, KeyStrategy.HIERARCHICAL])
def test_source_fault_gives_code_and_no_debris(
    cdn: CDNServer,
    backend: Any,
    mode: str,
    params: dict[str, Any],
    code: str,
    retryable: bool,
    strategy: KeyStrategy,
) -> None:
    dest = Destination(key_strategy=strategy, asset_id="a1", run_id="r1")
    with pytest.raises(TransferError) as info:
        copy_url(backend, cdn.url("/v.mp4", mode=mode, **params), dest, policy=POLICY, config=CFG)
    assert (info.value.code, info.value.retryable) == (code, retryable)
    _clean(backend)


def test_missing_path_is_not_found(cdn: CDNServer, backend: Any) -> None:
    with pytest.raises(TransferError) as info:
        copy_url(backend, cdn.url("/nope.mp4"), Destination(), policy=POLICY, config=CFG)
    assert info.value.code == "source_not_found"


def test_endless_body_and_size_cap_are_too_large(cdn: CDNServer, backend: Any) -> None:
    capped = FetchPolicy(
        allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}), max_source_bytes=11 * MiB
    )
    for url in (
        cdn.url("/v.mp4", mode="endless"),
        cdn.url("/v.mp4", mode="no_length"),
        cdn.url("/v.mp4"),
    ):
        with pytest.raises(TransferError) as info:
            copy_url(backend, url, Destination(), policy=capped, config=CFG)
        assert info.value.code == "too_large"
    _clean(backend)


def test_trickling_source_fails_min_rate(cdn: CDNServer, backend: Any) -> None:
    cfg = CopyConfig(part_size=5 * MiB, read_timeout=5, min_rate=1 * MiB, min_rate_grace=0.5)
    with pytest.raises(TransferError) as info:
        copy_url(
            backend,
            cdn.url("/v.mp4", mode="slow", rate=64 * 1024),
            Destination(),
            policy=POLICY,
            config=cfg,
        )
    assert info.value.code == "source_too_slow"
    cfg = CopyConfig(part_size=5 * MiB, read_timeout=5, total_deadline=0.5, min_rate=1)
    with pytest.raises(TransferError) as info:
        copy_url(
            backend,
            cdn.url("/v.mp4", mode="slow", rate=512 * 1024),
            Destination(),
            policy=POLICY,
            config=cfg,
        )
    assert info.value.code == "source_too_slow"
    _clean(backend)


def test_source_turning_to_a_trickle_mid_read_is_cut_by_the_watchdog(
    cdn: CDNServer, backend: Any
) -> None:
    """Fast reads grow to read_chunk; a trickle inside one must not outlive the deadline."""
    cfg = CopyConfig(
        part_size=5 * MiB, read_timeout=30, total_deadline=2.0, min_rate=1, read_chunk=4 * MiB
    )
    url = cdn.url("/v.mp4", mode="slow", after=6 * MiB, rate=2048)
    started = time.monotonic()
    with pytest.raises(TransferError) as info:
        copy_url(backend, url, Destination(), policy=POLICY, config=cfg)
    assert info.value.code == "source_too_slow"
    assert "deadline" in str(info.value)
    assert time.monotonic() - started < 5  # the read was cut, not waited out
    _clean(backend)


def test_a_trickle_without_a_length_is_cut_as_fast_as_one_with(
    cdn: CDNServer, backend: Any
) -> None:
    """A body delimited by the connection's close (no Content-Length): http.client lets go
    of the socket as soon as the answer begins, and the watchdog must still be able to
    shut it down mid-read instead of waiting for the read to come back by itself."""
    cfg = CopyConfig(
        part_size=5 * MiB, read_timeout=30, total_deadline=1.0, min_rate=1, read_chunk=4 * MiB
    )
    url = cdn.url("/v.mp4", mode="no_length", rate=2048)
    started = time.monotonic()
    with pytest.raises(TransferError) as info:
        copy_url(backend, url, Destination(), policy=POLICY, config=cfg)
    assert info.value.code == "source_too_slow"
    assert "deadline" in str(info.value)
    assert time.monotonic() - started < 2.5  # cut at the deadline, not at a read's end
    _clean(backend)


def test_gzip_encoded_body_is_stored_raw_never_inflated(cdn: CDNServer, backend: Any) -> None:
    bomb = gzip.compress(b"\0" * (64 * MiB), compresslevel=9)
    cdn.add("/bomb.bin", bomb, content_type="application/octet-stream")
    r = copy_url(
        backend, cdn.url("/bomb.bin", mode="gzip"), Destination(), policy=POLICY, config=CFG
    )
    assert r.size == len(bomb) and r.sha256 == hashlib.sha256(bomb).hexdigest()


def test_redirect_chain_is_followed_and_range_ignored_is_harmless(
    cdn: CDNServer, backend: Any
) -> None:
    url = cdn.url("/r", mode="redirect", hops=3, to=cdn.url("/v.mp4", mode="no_range"))
    r = copy_url(backend, url, Destination(key="direct/v.mp4"), policy=POLICY, config=CFG)
    assert r.sha256 == SHA and _body(backend, "direct/v.mp4") == DATA


def test_cancel_between_parts_aborts_upload(cdn: CDNServer, backend: Any) -> None:
    calls = iter(range(100))
    with pytest.raises(TransferError) as info:
        copy_url(
            backend,
            cdn.url("/v.mp4"),
            Destination(key="c/v.mp4"),
            policy=POLICY,
            config=CFG,
            should_cancel=lambda: next(calls) >= 2,
        )
    assert info.value.code == "canceled" and not info.value.retryable
    _clean(backend)


def test_retryable_failure_keeps_upload_and_retry_resumes(cdn: CDNServer, backend: Any) -> None:
    store = MemoryCheckpointStore()
    dest = Destination(key="resume/v.mp4")
    with pytest.raises(TransferError) as info:
        copy_url(
            backend,
            cdn.url("/v.mp4", mode="truncate", at=11 * MiB),
            dest,
            policy=POLICY,
            config=CFG,
            checkpoint_store=store,
            checkpoint_id="job:1",
        )
    assert info.value.retryable
    cp = store.load("job:1")
    assert cp is not None and cp.key == "resume/v.mp4"
    assert len(debris(backend.client, backend.bucket)[1]) == 1
    r = copy_url(
        backend,
        cdn.url("/v.mp4"),
        dest,
        policy=POLICY,
        config=CFG,
        checkpoint_store=store,
        checkpoint_id="job:1",
    )
    assert r.sha256 == SHA and _body(backend, r.key) == DATA
    assert r.parts_uploaded == 1 and r.bytes_uploaded == len(DATA) - 10 * MiB
    assert store.load("job:1") is None
    assert debris(backend.client, backend.bucket) == (["resume/v.mp4"], [])


def test_changed_source_aborts_old_upload_and_restarts(cdn: CDNServer, backend: Any) -> None:
    store = MemoryCheckpointStore()
    cdn.add("/changing.mp4", DATA, content_type="video/mp4")
    dest = Destination(key="changed/v.mp4")
    with pytest.raises(TransferError):
        copy_url(
            backend,
            cdn.url("/changing.mp4", mode="truncate", at=11 * MiB),
            dest,
            policy=POLICY,
            config=CFG,
            checkpoint_store=store,
            checkpoint_id="job:2",
        )
    old = store.load("job:2")
    assert old is not None
    new_data = os.urandom(len(DATA))
    cdn.add("/changing.mp4", new_data, content_type="video/mp4")
    r = copy_url(
        backend,
        cdn.url("/changing.mp4"),
        dest,
        policy=POLICY,
        config=CFG,
        checkpoint_store=store,
        checkpoint_id="job:2",
    )
    assert r.sha256 == hashlib.sha256(new_data).hexdigest() and r.parts_uploaded == 3
    assert _body(backend, "changed/v.mp4") == new_data
    assert debris(backend.client, backend.bucket) == (["changed/v.mp4"], [])


@pytest.mark.parametrize(
    ("operation", "part", "kind", "status", "code"),
    [
        ("UploadPart", 2, "status", 503, "SlowDown"),
        ("UploadPart", 1, "status", 500, "InternalError"),
        ("UploadPart", 3, "reset", 0, ""),
        ("CreateMultipartUpload", None, "status", 503, "SlowDown"),
        ("CompleteMultipartUpload", None, "status", 500, "InternalError"),
        ("PutObject", None, "status", 503, "SlowDown"),
    ],
)
def test_transient_s3_faults_are_retried_to_a_correct_object(
    cdn: CDNServer,
    seaweed: Any,
    bucket: str,
    operation: str,
    part: int | None,
    kind: str,
    status: int,
    code: str,
) -> None:
    with S3FaultProxy(seaweed.endpoint_url) as proxy:
        backend = make_backend(seaweed, bucket, endpoint_url=proxy.endpoint_url)
        proxy.fail(operation, part=part, kind=kind, status=status, code=code or "x", times=2)
        path = "/small.png" if operation == "PutObject" else "/v.mp4"
        r = copy_url(backend, cdn.url(path), Destination(key=f"p{path}"), policy=POLICY, config=CFG)
        hits = [e for e in proxy.log if e.operation == operation and part in (None, e.part)]
        assert len(hits) >= 3  # two injected failures, then success
    plain = make_backend(seaweed, bucket)
    assert _body(plain, r.key) == (DATA if path == "/v.mp4" else b"\x89PNG" + b"x" * 1000)
    assert debris(plain.client, bucket)[1] == []
    drop_bucket(plain.client, bucket)


def test_permanent_s3_fault_aborts_and_leaves_no_debris(
    cdn: CDNServer, seaweed: Any, bucket: str
) -> None:
    with S3FaultProxy(seaweed.endpoint_url) as proxy:
        backend = make_backend(seaweed, bucket, endpoint_url=proxy.endpoint_url)
        proxy.fail("UploadPart", part=2, status=403, code="AccessDenied", times=1)
        with pytest.raises(TransferError) as info:
            copy_url(
                backend,
                cdn.url("/v.mp4"),
                Destination(key="perm/v.mp4"),
                policy=POLICY,
                config=CFG,
                checkpoint_store=MemoryCheckpointStore(),
                checkpoint_id="j",
            )
        assert info.value.code == "storage_error" and not info.value.retryable
        assert any(e.operation == "AbortMultipartUpload" for e in proxy.log)
    assert debris(make_backend(seaweed, bucket).client, bucket) == ([], [])
    drop_bucket(seaweed.client(), bucket)


@pytest.mark.parametrize("strategy", [KeyStrategy.CONTENT_ADDRESSABLE, KeyStrategy.HIERARCHICAL])
def test_keys_equal_genblaze_core_object_storage_sink(
    cdn: CDNServer, backend: Any, tmp_path: Any, strategy: KeyStrategy
) -> None:
    """The real inline ObjectStorageSink and copy_url store the same bytes at the same key,
    with the same Cache-Control. (The sink reads file:// under /tmp; we fetch over HTTP.)"""
    from genblaze_core.models.asset import Asset
    from genblaze_core.storage.sink import ObjectStorageSink

    sink = ObjectStorageSink(backend, prefix="genblaze", key_strategy=strategy)
    for name, data, mt in (
        ("small.png", b"\x89PNG" + b"x" * 1000, "image/png"),
        ("v.mp4", DATA, "video/mp4"),
    ):
        local = tmp_path / name
        local.write_bytes(data)
        asset = Asset(url=local.as_uri(), media_type=mt)
        sink.put_asset(asset, tenant_id="t1")
        core_key = backend.key_from_url(asset.url)
        ours = copy_url(
            backend,
            cdn.url("/" + name),
            Destination(key_strategy=strategy, asset_id=asset.asset_id, tenant="t1"),
            policy=POLICY,
            config=CFG,
        )
        assert ours.key == core_key, (strategy, name)
        assert ours.sha256 == asset.sha256
        assert _body(backend, ours.key) == data
        head = backend.client.head_object(Bucket=backend.bucket, Key=ours.key)
        assert head["CacheControl"] == (
            "public, max-age=31536000, immutable"
            if strategy == KeyStrategy.CONTENT_ADDRESSABLE
            else "private, max-age=3600"
        )


def test_concurrent_copies_of_same_content_end_with_one_object(
    cdn: CDNServer, backend: Any
) -> None:
    results: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                copy_url(backend, cdn.url("/v.mp4"), Destination(), policy=POLICY, config=CFG)
            )
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.key for r in results}) == 1
    assert debris(backend.client, backend.bucket) == ([results[0].key], [])


def test_copies_from_one_cdn_reuse_a_connection_but_never_its_cookies(
    cdn: CDNServer, backend: Any
) -> None:
    """Small assets from one host ride one keep-alive connection (no handshake per asset);
    a cookie one source set is not sent with the next copy (jobs of other tenants)."""
    blobs = {f"/keep/{i}.png": os.urandom(4096 + i) for i in range(5)}
    for path, data in blobs.items():
        cdn.add(path, data, content_type="image/png")
    dest = Destination(key_strategy=KeyStrategy.HIERARCHICAL, run_id="keep", asset_id="a0")
    copy_url(backend, cdn.url("/keep/0.png", mode="set_cookie", value="TENANT-A"), dest,
             policy=POLICY, config=CFG)  # fmt: skip
    before = cdn.connections_accepted
    for i, path in enumerate(list(blobs)[1:], start=1):
        r = copy_url(backend, cdn.url(path), replace(dest, asset_id=f"a{i}"),
                     policy=POLICY, config=CFG)  # fmt: skip
        assert _body(backend, r.key) == blobs[path]
    assert cdn.connections_accepted == before  # all four on the first copy's connection
    assert cdn.cookies_received == []
