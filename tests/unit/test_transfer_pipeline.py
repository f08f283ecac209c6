"""The part pipeline without servers: bounded buffers, order of hashing, failure and cancel."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import pytest

from genblaze_s3.transfer import Canceled, CopyConfig, StorageFailure
from genblaze_s3.transfer.checkpoint import Checkpoint, PartRecord
from genblaze_s3.transfer.multipart import MultipartUpload
from genblaze_s3.transfer.pipeline import upload_parts

PART = 64 * 1024


class FakeS3:
    """Just enough of a boto3 client for MultipartUpload, recording concurrency."""

    def __init__(self, fail_part: int | None = None, delay: float = 0.01) -> None:
        self.parts: dict[int, bytes] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.fail_part = fail_part
        self.delay = delay

    def upload_part(self, **kw: Any) -> dict[str, str]:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            if kw["PartNumber"] == self.fail_part:
                import botocore.exceptions as bce

                raise bce.ClientError({"Error": {"Code": "AccessDenied"}}, "UploadPart")
            body = bytes(kw["Body"])
            self.parts[kw["PartNumber"]] = body
            return {"ETag": '"' + hashlib.md5(body).hexdigest() + '"'}
        finally:
            with self.lock:
                self.in_flight -= 1


def _upload(client: FakeS3, parts: tuple[PartRecord, ...] = ()) -> MultipartUpload:
    cp = Checkpoint("b", "k", "u", PART, parts=parts)
    return MultipartUpload(
        client,
        cp,
        config=CopyConfig(part_size=PART, max_part_attempts=1),
        store=None,
        checkpoint_id=None,
    )


class Source:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.allocations: list[int] = []

    def read_part(self, buf: bytearray) -> int:
        self.allocations.append(id(buf))
        n = min(len(buf), len(self.data) - self.pos)
        buf[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


def test_parts_arrive_complete_hashed_in_order_with_bounded_buffers() -> None:
    data = bytes(range(256)) * (PART * 10 // 256) + b"tail"
    client, src = FakeS3(), Source(data)
    hasher = hashlib.sha256()
    n = upload_parts(
        _upload(client), src.read_part, part_size=PART, concurrency=3, on_part=hasher.update
    )
    assert n == 11 and hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    assert b"".join(client.parts[i] for i in range(1, 12)) == data
    assert client.max_in_flight <= 3
    assert len(set(src.allocations)) <= 3  # buffers are reused, never more than allowed


def test_resumed_parts_with_matching_md5_are_not_sent_again() -> None:
    data = b"a" * PART + b"b" * PART + b"c" * 10
    done = (
        PartRecord(1, '"' + hashlib.md5(b"a" * PART).hexdigest() + '"', PART),
        PartRecord(2, '"' + hashlib.md5(b"x" * PART).hexdigest() + '"', PART),
    )
    client = FakeS3()
    n = upload_parts(_upload(client, done), Source(data).read_part, part_size=PART, concurrency=2)
    assert n == 3 and sorted(client.parts) == [2, 3]  # part 2 differed: re-sent


def test_failed_part_stops_reading_and_raises_after_draining() -> None:
    client = FakeS3(fail_part=2)
    src = Source(b"z" * (PART * 50))
    with pytest.raises(StorageFailure):
        upload_parts(_upload(client), src.read_part, part_size=PART, concurrency=2)
    assert client.in_flight == 0
    assert src.pos < PART * 50  # stopped early


def test_cancel_is_checked_between_parts() -> None:
    client = FakeS3()
    calls = iter(range(100))
    with pytest.raises(Canceled):
        upload_parts(
            _upload(client),
            Source(b"q" * (PART * 20)).read_part,
            part_size=PART,
            concurrency=2,
            should_cancel=lambda: next(calls) >= 3,
        )
    assert client.in_flight == 0 and len(client.parts) <= 3
