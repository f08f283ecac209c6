"""Small content-addressed writes on SeaweedFS: HEAD + PUT in a versioned bucket.

Why: `weed mini` resolves a key's latest version for any conditional header in a
versioned bucket (the Object Lock buckets manifests need), which costs it more than a
HEAD does (transfer/upload.py, HEAD_BEFORE_CAS_PUT_ATTR). The copy engine learns it from
the first PUT's answer (Server and x-amz-version-id); an unversioned bucket keeps the
one conditional PUT. Requests are recorded as sent (botocore's before-send, which the
lean path emits too).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from genblaze_s3.transfer import CopyConfig, Destination, FetchPolicy, copy_url
from genblaze_s3.transfer.upload import HEAD_BEFORE_CAS_PUT_ATTR
from tests.support.cdn import CDNServer
from tests.support.helpers import user_backend

POLICY = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}))


def _recorded(backend: Any) -> list[tuple[str, str | None]]:
    """(operation, If-None-Match) of every request the backend's client sends."""
    sent: list[tuple[str, str | None]] = []

    def record(request: Any, event_name: str, **_: Any) -> None:
        sent.append((event_name.rsplit(".", 1)[-1], request.headers.get("If-None-Match")))

    backend.client.meta.events.register("before-send.s3", record)
    return sent


@pytest.fixture
def locked_backend(seaweed: Any, locked_bucket: str) -> Iterator[Any]:
    b = user_backend(seaweed, locked_bucket)
    try:
        yield b
    finally:
        b.close()


def _copy(backend: Any, cdn: CDNServer, data: bytes) -> Any:
    url = cdn.add(f"/cas/{os.urandom(6).hex()}.png", data, content_type="image/png")
    return copy_url(backend, url, Destination(), policy=POLICY, config=CopyConfig())


def test_versioned_seaweedfs_bucket_learns_head_then_put(
    locked_backend: Any, cdn: CDNServer, s3_client: Any, locked_bucket: str
) -> None:
    sent = _recorded(locked_backend)
    first = _copy(locked_backend, cdn, os.urandom(64 * 1024))
    assert [op for op, _ in sent if op != "HeadBucket"] == ["PutObject"]
    assert sent[-1][1] == "*"  # the first write is conditional: nothing learned yet
    assert getattr(locked_backend, HEAD_BEFORE_CAS_PUT_ATTR, False) is True

    del sent[:]
    second_bytes = os.urandom(64 * 1024)
    second = _copy(locked_backend, cdn, second_bytes)
    assert sent == [("HeadObject", None), ("PutObject", None)]
    assert not second.deduplicated

    del sent[:]
    again = _copy(locked_backend, cdn, second_bytes)  # the same content: the HEAD answers
    assert sent == [("HeadObject", None)]
    assert again.deduplicated and again.key == second.key and again.sha256 == second.sha256
    # one version per content key: nothing was written twice
    for result in (first, second):
        versions = s3_client.list_object_versions(Bucket=locked_bucket, Prefix=result.key)
        assert len(versions.get("Versions", [])) == 1


def test_unversioned_bucket_keeps_the_conditional_put(backend: Any, cdn: CDNServer) -> None:
    sent = _recorded(backend)
    data = os.urandom(64 * 1024)
    for _ in range(2):
        _copy(backend, cdn, os.urandom(64 * 1024))
    assert [s for s in sent if s[0] != "HeadBucket"] == [("PutObject", "*")] * 2
    assert not getattr(backend, HEAD_BEFORE_CAS_PUT_ATTR, False)
    del sent[:]
    _copy(backend, cdn, data)
    assert _copy(backend, cdn, data).deduplicated  # the store's 412, as before
    # (then a HEAD for what the dedup result reports of the stored object)
    assert sent == [("PutObject", "*"), ("PutObject", "*"), ("HeadObject", None)]
