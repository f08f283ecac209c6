"""A copy interrupted by an expired URL resumes on the refreshed URL, or restarts cleanly.

The copy engine against the test CDN and SeaweedFS: a refreshable ``source_expired``
keeps the checkpointed upload; the fresh URL resumes it when it serves the same
validators (fewer bytes uploaded again) and restarts it when they differ (the old
upload aborted, the object whole, nothing left behind).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest

from genblaze_s3.transfer import (
    CopyConfig,
    Destination,
    FetchPolicy,
    MemoryCheckpointStore,
    TransferError,
    copy_url,
)
from tests.support.cdn import CDNServer
from tests.support.s3proxy import debris

MiB = 1024 * 1024
POLICY = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}))
CFG = CopyConfig(part_size=5 * MiB, concurrency=2, read_timeout=2.0, backoff_base=0.01)
DATA = os.urandom(16 * MiB + 7)
LAST_MODIFIED = 1_780_000_000.0


@pytest.fixture(scope="module")
def cdn(cdn: CDNServer) -> CDNServer:
    cdn.add("/old/v.mp4", DATA, content_type="video/mp4", last_modified=LAST_MODIFIED)
    cdn.add("/fresh/v.mp4", DATA, content_type="video/mp4", last_modified=LAST_MODIFIED)
    cdn.add("/other/v.mp4", DATA, content_type="video/mp4", last_modified=LAST_MODIFIED + 60)
    return cdn


def _copy(backend: Any, url: str, store: MemoryCheckpointStore, key: str) -> Any:
    return copy_url(
        backend,
        url,
        Destination(key=key),
        policy=POLICY,
        config=CFG,
        checkpoint_store=store,
        checkpoint_id="j",
        refreshable_source=True,
    )


def _interrupted_then_expired(backend: Any, cdn: CDNServer, key: str) -> MemoryCheckpointStore:
    """12 MiB in (two parts uploaded), the source dies; then the URL has expired."""
    store = MemoryCheckpointStore()
    with pytest.raises(TransferError) as cut:
        _copy(backend, cdn.url("/old/v.mp4", mode="truncate", at=12 * MiB), store, key)
    assert cut.value.retryable
    with pytest.raises(TransferError) as expired:
        _copy(backend, cdn.url("/old/v.mp4", mode="expired"), store, key)
    assert expired.value.code == "source_expired"
    cp = store.load("j")
    assert cp is not None and cp.parts  # kept for the refreshed URL
    assert debris(backend.client, backend.bucket)[1] == [key]
    return store


def test_refreshed_url_with_the_same_validators_resumes_the_upload(
    cdn: CDNServer, backend: Any
) -> None:
    store = _interrupted_then_expired(backend, cdn, "r/v.mp4")
    r = _copy(backend, cdn.url("/fresh/v.mp4"), store, "r/v.mp4")
    assert r.sha256 == hashlib.sha256(DATA).hexdigest() and r.size == len(DATA)
    assert r.bytes_uploaded < len(DATA)  # the parts before the cut were not sent again
    assert debris(backend.client, backend.bucket) == (["r/v.mp4"], [])
    body = backend.client.get_object(Bucket=backend.bucket, Key="r/v.mp4")["Body"].read()
    assert body == DATA and store.load("j") is None


def test_refreshed_url_with_other_validators_restarts_cleanly(cdn: CDNServer, backend: Any) -> None:
    store = _interrupted_then_expired(backend, cdn, "s/v.mp4")
    r = _copy(backend, cdn.url("/other/v.mp4"), store, "s/v.mp4")
    assert r.bytes_uploaded == len(DATA)  # nothing of the old version was reused
    assert debris(backend.client, backend.bucket) == (["s/v.mp4"], [])  # old upload aborted
    body = backend.client.get_object(Bucket=backend.bucket, Key="s/v.mp4")["Body"].read()
    assert body == DATA


def test_without_refresh_an_expired_source_still_aborts_the_kept_upload(
    cdn: CDNServer, backend: Any
) -> None:
    store = MemoryCheckpointStore()
    with pytest.raises(TransferError):
        _copy(backend, cdn.url("/old/v.mp4", mode="truncate", at=12 * MiB), store, "t/v.mp4")
    with pytest.raises(TransferError):
        copy_url(
            backend,
            cdn.url("/old/v.mp4", mode="expired"),
            Destination(key="t/v.mp4"),
            policy=POLICY,
            config=CFG,
            checkpoint_store=store,
            checkpoint_id="j",
        )
    assert debris(backend.client, backend.bucket) == ([], []) and store.load("j") is None
