"""The source body is read straight into the caller's buffer, with urllib3's answers kept.

`fetch.raw_readinto` reads through http.client's ``readinto`` inside urllib3's own
error catcher instead of ``read`` (a bytes object per read, copied again). These
tests hold what that must not change: every byte in place (length-delimited, chunked,
close-delimited), the connection back in the pool after a whole body, and the same
error codes for a body cut short. One test pins that the fast path is the one taken,
so a urllib3 release that renames what it uses fails here instead of quietly
falling back to the copying path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
import urllib3

from genblaze_s3.transfer import CopyConfig, FetchPolicy, TransferError
from genblaze_s3.transfer.fetch import Fetcher
from tests.support.cdn import CDNServer

DATA = bytes(range(256)) * 12_000 + b"tail"  # ~3 MiB: several reads of the 1 MiB cap
POLICY = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}))


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(POLICY, CopyConfig()) as f:
        yield f


def _read_all(fetcher: Fetcher, url: str, part: int = 1 << 20) -> bytes:
    out = bytearray()
    buf = bytearray(part)
    with fetcher.open(url) as src:
        while n := src.read_into(buf):
            out += buf[:n]
    return bytes(out)


@pytest.mark.parametrize("mode", ["", "no_length", "gzip"])
def test_every_byte_lands_in_the_buffer(cdn: CDNServer, fetcher: Fetcher, mode: str) -> None:
    cdn.add("/v.mp4", DATA, content_type="video/mp4")
    got = _read_all(fetcher, cdn.url("/v.mp4", mode=mode) if mode else f"{cdn.base_url}/v.mp4")
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(DATA).hexdigest()


def test_urllib3_read_is_not_used_and_the_connection_is_reused(
    cdn: CDNServer, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    cdn.add("/v.mp4", DATA, content_type="video/mp4")
    url = f"{cdn.base_url}/v.mp4"

    def no_read(*_a: object, **_k: object) -> bytes:
        raise AssertionError("the body went through urllib3's copying read()")

    monkeypatch.setattr(urllib3.response.HTTPResponse, "read", no_read)
    assert _read_all(fetcher, url, part=4 << 20) == DATA
    before = cdn.connections_accepted
    assert _read_all(fetcher, url) == DATA
    assert cdn.connections_accepted == before  # the first body's connection went back


@pytest.mark.parametrize(
    ("mode", "extra"),
    [("truncate", {"at": "1500000"}), ("wrong_length", {}), ("chunked_cut", {})],
)
def test_a_body_cut_short_is_source_truncated(
    cdn: CDNServer, fetcher: Fetcher, mode: str, extra: dict[str, str]
) -> None:
    cdn.add("/v.mp4", DATA, content_type="video/mp4")
    with pytest.raises(TransferError) as info:
        _read_all(fetcher, cdn.url("/v.mp4", mode=mode, **extra))
    assert info.value.code == "source_truncated", info.value
