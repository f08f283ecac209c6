"""AsyncS3StorageBackend (aioboto3) against SeaweedFS."""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
from typing import Any

import pytest

from genblaze_s3 import AsyncS3StorageBackend, Encryption
from genblaze_s3.local.services import SeaweedS3
from tests.support.helpers import user_backend

MiB = 1024 * 1024


def test_native_async_round_trip(seaweed: SeaweedS3, bucket: str) -> None:
    sync = user_backend(seaweed, bucket, preflight=True)
    data = os.urandom(20 * MiB + 11)
    enc = Encryption.sse_c(secrets.token_bytes(32))

    async def scenario() -> None:
        async with AsyncS3StorageBackend.from_sync(sync) as ab:
            assert await ab.aput("a/big", data) == "a/big"
            assert await ab.aput("a/small", b"hello", content_type="text/plain") == "a/small"
            assert await ab.aget("a/big") == data
            stream = ab.astream("a/big", chunk_size=MiB)
            assert inspect.isasyncgen(stream)
            sizes = [len(c) async for c in stream]
            assert sum(sizes) == len(data) and max(sizes) <= MiB
            meta = await ab.ahead("a/small")
            assert meta is not None and meta.content_type == "text/plain"
            assert await ab.ahead("a/none") is None
            page = await ab.alist("a/")
            assert [e.key for e in page.entries] == ["a/big", "a/small"]
            assert await ab.aexists("a/small") and not await ab.aexists("a/none")
            await ab.aput("a/enc", b"secret", encryption=enc)
            assert await ab.aget("a/enc", encryption=enc) == b"secret"
            assert await ab.aget_range("a/big", offset=5, length=4) == data[5:9]
            await ab.acopy("a/small", "a/copy")
            assert (await ab.apresigned_get("a/copy")).url.startswith(seaweed.endpoint_url)
            assert await ab.aget_durable_url("a/copy") == sync.get_durable_url("a/copy")
            await ab.adelete("a/copy")
            assert not await ab.aexists("a/copy")
            result = await ab.adelete_prefix("a/", dry_run=False)
            assert len(result.deleted) == 3

    asyncio.run(scenario())
    assert sync.get_durable_url("x")  # the sync backend stays usable


def test_from_sync_keeps_verified_region_without_head_bucket(
    seaweed: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync = user_backend(seaweed, bucket, preflight=True)
    sync.put("k", b"v")

    def no_head_bucket(**_: Any) -> None:
        raise AssertionError("HeadBucket repeated on the async path")

    monkeypatch.setattr(sync.client, "head_bucket", no_head_bucket)

    async def scenario() -> bytes:
        ab = AsyncS3StorageBackend.from_sync(sync)
        try:
            return await ab.aget("k")
        finally:
            await ab.aclose()
            await ab.aclose()  # idempotent

    assert asyncio.run(scenario()) == b"v"


def test_async_progress_is_monotonic(seaweed: SeaweedS3, bucket: str) -> None:
    sync = user_backend(seaweed, bucket, preflight=True)
    data = os.urandom(3 * MiB)
    events: list[Any] = []

    async def scenario() -> None:
        async with AsyncS3StorageBackend.from_sync(sync) as ab:
            await ab.aput("p", data, progress=events.append)
            async for _ in ab.astream("p", chunk_size=MiB, progress=events.append):
                pass

    asyncio.run(scenario())
    put = [e.bytes_transferred for e in events if e.operation == "put"]
    streamed = [e.bytes_transferred for e in events if e.operation == "stream"]
    assert put[-1] == len(data) and streamed == sorted(streamed) and streamed[-1] == len(data)
