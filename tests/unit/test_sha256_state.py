"""The resumable SHA-256: both engines, one state format, any split point, bad states refused."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from genblaze_s3.transfer.hashing import ResumableSha256
from genblaze_s3.transfer.sha256_state import (
    OpenSSLSha256,
    RehashesSha256,
    _libcrypto,
    new_engine,
)

DATA = os.urandom(200_003)
# block edges, a byte either side of them, and sizes larger than rehashes' 1 MiB feed
SPLITS = [0, 1, 55, 56, 63, 64, 65, 127, 128, 129, 4096, 65_537, 199_999, 200_003]


def test_this_machine_hashes_with_openssl() -> None:
    """CI's machine has libcrypto: the fast engine must be the one in use, not the fallback."""
    assert _libcrypto() is not None
    assert isinstance(new_engine(), OpenSSLSha256)


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(
    "first,second",
    [("openssl", "openssl"), ("openssl", "rehashes"), ("rehashes", "openssl")],
)
def test_a_state_saved_by_one_engine_goes_on_in_either(split: int, first: str, second: str) -> None:
    a = new_engine(prefer_openssl=first == "openssl")
    a.update(memoryview(DATA)[:split])
    state = a.serialize()
    b = new_engine(state, prefer_openssl=second == "openssl")
    b.update(bytearray(DATA[split:]))
    assert b.hexdigest() == hashlib.sha256(DATA).hexdigest()


@pytest.mark.parametrize("split", SPLITS)
def test_both_engines_save_the_same_bytes(split: int) -> None:
    """Byte-identical states: old checkpoints (rehashes-written) and new ones are one format."""
    o, r = new_engine(), RehashesSha256()
    o.update(DATA[:split])
    r.update(DATA[:split])
    assert o.serialize() == r.serialize()


def test_bytes_views_and_writable_buffers_all_hash_alike() -> None:
    h = ResumableSha256()
    buf = bytearray(DATA[:1000])
    h.update(buf)
    h.update(memoryview(DATA)[1000:5000])  # read-only view of bytes
    h.update(memoryview(bytearray(DATA[5000:9000]))[:4000])  # writable view
    h.update(DATA[9000:])
    h.update(b"")
    buf.extend(b"x")  # the buffer export was released: the caller may resize its buffer
    assert h.hexdigest() == hashlib.sha256(DATA).hexdigest()


def test_hexdigest_leaves_the_state_usable() -> None:
    h = ResumableSha256()
    h.update(DATA[:10])
    assert h.hexdigest() == hashlib.sha256(DATA[:10]).hexdigest()
    h.update(DATA[10:])
    assert h.hexdigest() == hashlib.sha256(DATA).hexdigest()


def test_a_large_update_in_one_call() -> None:
    big = bytearray(os.urandom(3 * 1024 * 1024 + 17))
    h = ResumableSha256.from_state(ResumableSha256().state())
    h.update(memoryview(big))
    assert h.hexdigest() == hashlib.sha256(big).hexdigest()


@pytest.mark.parametrize("bad", [b"", b"\x00" * 103, b"\x00" * 105])
def test_a_state_of_the_wrong_size_is_refused(bad: bytes) -> None:
    with pytest.raises(ValueError, match="invalid SHA-256 state"):
        ResumableSha256.from_state(base64.b64encode(bad).decode())


def test_a_state_whose_tail_overflows_a_block_is_refused() -> None:
    state = bytearray(RehashesSha256().serialize())
    state[40] = 64  # the tail-length byte
    with pytest.raises(ValueError, match="invalid SHA-256 state"):
        new_engine(bytes(state))
