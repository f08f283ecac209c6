"""Bounded slices of one copy: each call stops when its time is up, the next goes on
from the next byte (Range), and the object, its SHA-256 and the bytes read are exact."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from genblaze_core.storage.base import KeyStrategy

from genblaze_s3.transfer import (
    CopyConfig,
    CopyResult,
    Destination,
    FetchPolicy,
    MemoryCheckpointStore,
    copy_url,
)
from genblaze_s3.transfer.models import CopyPaused
from tests.support.cdn import CDNServer
from tests.support.s3proxy import debris

MiB = 1024 * 1024
POLICY = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}))
CFG = CopyConfig(part_size=5 * MiB, concurrency=2, read_timeout=5.0, backoff_base=0.01)
DATA = os.urandom(24 * MiB + 11)
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(scope="module")
def cdn(cdn: CDNServer) -> CDNServer:
    cdn.add("/v.mp4", DATA, content_type="video/mp4")
    return cdn


def _slices(
    backend: Any, url: str, dest: Destination, *, then: str | None = None, **kw: Any
) -> list[Any]:
    """Call copy_url until it returns a result (continuations from ``then`` if given);
    every return value, in order."""
    store = MemoryCheckpointStore()
    out: list[Any] = []
    while not out or isinstance(out[-1], CopyPaused):
        assert len(out) < 50, "slices never ended"
        out.append(
            copy_url(
                backend,
                then if out and then else url,
                dest,
                policy=POLICY,
                config=CFG,
                checkpoint_store=store,
                checkpoint_id="j",
                slice_seconds=0.4,
                **kw,
            )
        )
    assert store.load("j") is None  # a finished copy leaves no checkpoint
    return out


@pytest.mark.parametrize("mode", ["slow", "slow_no_range"])
def test_sliced_copy_reads_every_byte_once_and_stores_it_exactly(
    cdn: CDNServer, backend: Any, mode: str
) -> None:
    """~6 MiB/s source, 0.4 s slices: several slices; with Range, the CDN serves each
    byte once; a CDN that ignores Range serves the prefix again (documented) and the
    object is still exact."""
    cdn.clear_requests()
    ignore_range = mode == "slow_no_range"
    slow = cdn.url("/v.mp4", mode="slow", rate=6 * MiB)
    then = cdn.url("/v.mp4", mode="no_range") if ignore_range else None
    out = _slices(backend, slow, Destination(key="sliced/v.mp4"), then=then)
    assert len(out) >= 2 and isinstance(out[0], CopyPaused), out
    final = out[-1]
    assert isinstance(final, CopyResult)
    assert final.sha256 == DIGEST and final.size == len(DATA)
    assert final.bytes_uploaded == len(DATA)  # summed over the slices, each part once
    body = backend.client.get_object(Bucket=backend.bucket, Key="sliced/v.mp4")["Body"].read()
    assert body == DATA
    gets = [r for r in cdn.requests if r.path == "/v.mp4"]
    assert len(gets) == len(out)
    if not ignore_range:
        # every continuation asked for the byte after the last one sent
        offsets = [0] + [p.bytes_done for p in out[:-1]]
        assert [r.range for r in gets] == [None] + [f"bytes={o}-" for o in offsets[1:]]
    assert not debris(backend.client, backend.bucket)[1]  # no multipart upload left


def test_sliced_cas_copy_with_known_hash(cdn: CDNServer, backend: Any) -> None:
    out = _slices(
        backend,
        cdn.url("/v.mp4", mode="slow", rate=8 * MiB),
        Destination(key_strategy=KeyStrategy.CONTENT_ADDRESSABLE),
        expected_sha256=DIGEST,
        media_type="video/mp4",
    )
    final = out[-1]
    assert isinstance(final, CopyResult) and final.sha256 == DIGEST
    assert DIGEST in final.key
    assert not debris(backend.client, backend.bucket)[1]  # no multipart upload left


def test_sliced_cas_copy_with_unknown_hash_slices_both_passes(cdn: CDNServer, backend: Any) -> None:
    """The refetch mode's hash pass stops and goes on too (a hash-phase checkpoint),
    then the upload pass: each pass reads every byte once."""
    cdn.clear_requests()
    out = _slices(
        backend,
        cdn.url("/v.mp4", mode="slow", rate=12 * MiB),
        Destination(key_strategy=KeyStrategy.CONTENT_ADDRESSABLE),
        media_type="video/mp4",
    )
    final = out[-1]
    assert isinstance(final, CopyResult) and final.sha256 == DIGEST and DIGEST in final.key
    assert len(out) >= 4, out  # both passes were cut (24 MiB at 12 MiB/s, 0.4 s slices)
    # Every continuation asked for the byte after the last one it had (a pass restarts at 0
    # once: the upload pass); the CDN's count also holds what sat in socket buffers when a
    # slice closed its connection, so it is bounded, not exact.
    gets = [r for r in cdn.requests if r.path == "/v.mp4"]
    starts = [int(r.range[6:-1]) if r.range else 0 for r in gets]
    assert starts.count(0) == 2 and starts[0] == 0, starts
    second = starts.index(0, 1)
    for one_pass in (starts[:second], starts[second:]):
        assert one_pass == sorted(set(one_pass)), starts  # forward only, never twice
    assert cdn.bytes_sent("/v.mp4") <= 2 * len(DATA) + len(gets) * 8 * MiB
    body = backend.client.get_object(Bucket=backend.bucket, Key=final.key)["Body"].read()
    assert body == DATA
    assert not debris(backend.client, backend.bucket)[1]
