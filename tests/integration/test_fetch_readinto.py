"""The source body is read straight into the caller's buffer, on pooled connections.

`fetch.raw_readinto` reads through http.client's ``readinto`` instead of ``read`` (a
bytes object per read, copied again). These tests hold what that must not change:
every byte in place (length-delimited, chunked, close-delimited), the connection back
in the pool after a whole body (and not after a body cut short), and the error codes
for a body cut short. One test pins that the fast path is the one taken.
"""

from __future__ import annotations

import hashlib
import http.client
from collections.abc import Iterator

import pytest

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


def test_the_copying_read_is_not_used_and_the_connection_is_reused(
    cdn: CDNServer, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    cdn.add("/v.mp4", DATA, content_type="video/mp4")
    url = f"{cdn.base_url}/v.mp4"

    def no_read(*_a: object, **_k: object) -> bytes:
        raise AssertionError("the body went through http.client's copying read()")

    monkeypatch.setattr(http.client.HTTPResponse, "read", no_read)
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


def test_a_connection_whose_body_was_cut_short_is_not_lent_again(
    cdn: CDNServer, fetcher: Fetcher
) -> None:
    cdn.add("/v.mp4", DATA, content_type="video/mp4")
    with pytest.raises(TransferError):
        _read_all(fetcher, cdn.url("/v.mp4", mode="truncate", at="1500000"))
    before = cdn.connections_accepted
    assert _read_all(fetcher, f"{cdn.base_url}/v.mp4") == DATA
    assert cdn.connections_accepted == before + 1  # a new connection, not the broken one


def test_a_body_left_unread_closes_its_connection(cdn: CDNServer, fetcher: Fetcher) -> None:
    cdn.add("/v.mp4", DATA, content_type="video/mp4")
    url = f"{cdn.base_url}/v.mp4"
    with fetcher.open(url) as src:
        assert src.read_into(bytearray(1000)) == 1000  # most of the body never read
    before = cdn.connections_accepted
    assert _read_all(fetcher, url) == DATA
    assert cdn.connections_accepted == before + 1


def test_tls_is_verified_for_the_urls_name_on_the_pinned_address() -> None:
    """The socket goes to the checked IP; SNI and the certificate check use the URL's
    name: a certificate for that name passes, one that only covers the IP does not."""
    with CDNServer(tls=True) as cdn:
        cdn.add("/v.mp4", DATA, content_type="video/mp4")

        def to_loopback(host: str, port: int) -> list[str]:
            return ["127.0.0.1"]

        def fetcher_for(name: str) -> Fetcher:
            policy = FetchPolicy(allow_private_hosts=frozenset({name}), ca_bundle=cdn.ca_path)
            return Fetcher(policy, CopyConfig(), resolver=to_loopback)

        with fetcher_for("localhost") as ok:  # in the certificate
            assert _read_all(ok, f"https://localhost:{cdn.port}/v.mp4") == DATA
        with fetcher_for("cdn.invalid") as wrong, pytest.raises(TransferError) as info:
            _read_all(wrong, f"https://cdn.invalid:{cdn.port}/v.mp4")  # same IP, not its name
        assert info.value.code == "source_tls_failed", info.value
        assert "match" in str(info.value) or "CERTIFICATE" in str(info.value), info.value
        assert all(r.path == "/v.mp4" for r in cdn.requests)  # the refused one sent nothing
        assert len(cdn.requests) == 1


def test_a_connection_the_source_closed_while_idle_is_replaced_before_use(
    cdn: CDNServer, fetcher: Fetcher
) -> None:
    """A CDN's keep-alive timeout closes idle connections: the next GET must not be sent
    on a dead one (it would fail as a reset), but on a new connection."""
    cdn.add("/v.mp4", DATA, content_type="video/mp4")
    url = f"{cdn.base_url}/v.mp4"
    assert _read_all(fetcher, url) == DATA
    before = cdn.connections_accepted
    cdn.drop_connections()
    assert _read_all(fetcher, url) == DATA
    assert cdn.connections_accepted == before + 1
