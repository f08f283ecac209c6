"""Pure pieces of bounded slices: the saved hash state, the Range reply, old checkpoints."""

from __future__ import annotations

import hashlib
import json
import os

from genblaze_s3.transfer import Checkpoint
from genblaze_s3.transfer.hashing import ResumableSha256
from genblaze_s3.transfer.slices import range_start_and_total


def test_a_hash_saved_mid_stream_goes_on_elsewhere_to_the_same_digest() -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    first = ResumableSha256()
    first.update(memoryview(data)[:1_000_003])  # views and odd sizes, as parts arrive
    state = first.state()
    assert json.dumps(state)  # travels in a JSON checkpoint
    rest = ResumableSha256.from_state(state)
    rest.update(bytearray(data[1_000_003:]))
    assert rest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_contentrange_start_and_total() -> None:
    assert range_start_and_total("bytes 100-199/1000") == (100, 1000)
    assert range_start_and_total("bytes */1000") is None
    assert range_start_and_total(None) is None


def test_a_checkpoint_without_slice_state_reads_as_nothing_hashed_yet() -> None:
    cp = Checkpoint(bucket="b", key="k", upload_id="u", part_size=5 << 20)
    v1 = {k: v for k, v in json.loads(cp.to_json()).items() if k not in ("offset",)}
    v1["version"] = 1
    for k in ("sha256_state", "bytes_uploaded", "expected_sha256"):
        v1.pop(k, None)
    old = Checkpoint.from_json(json.dumps(v1))
    assert old.offset == 0 and old.sha256_state is None and old.bytes_uploaded == 0
    saved = Checkpoint(
        bucket="b", key="k", upload_id="u", part_size=5, offset=10, sha256_state="AAAA"
    )
    assert Checkpoint.from_json(saved.to_json()) == saved
