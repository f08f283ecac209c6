"""The SSRF table (issue 5): no vector may cause a connection to a blocked address.

Every test records socket.connect and socket.getaddrinfo; "no connection" is
asserted from those records, not from the error alone. Real loopback servers
(the test CDN) stand in for the attacker's redirector.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from genblaze_s3.transfer import Destination, FetchPolicy, TransferError, copy_url
from genblaze_s3.transfer.config import CopyConfig
from genblaze_s3.transfer.fetch import Fetcher
from genblaze_s3.transfer.urlguard import is_blocked_address, parse_ip_literal, validate_url
from tests.support.cdn import CDNServer

STRICT = FetchPolicy()
CFG = CopyConfig(connect_timeout=2, read_timeout=2)


class Recorder:
    def __init__(self) -> None:
        self.connects: list[Any] = []
        self.lookups: list[str] = []


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """Record every connect/getaddrinfo; refuse connects to anything but loopback CDNs."""
    rec = Recorder()
    real_connect = socket.socket.connect
    real_gai = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        rec.connects.append(address)
        if isinstance(address, tuple) and address[0] == "127.0.0.1" and rec_allowed(address):
            return real_connect(self, address)
        raise ConnectionRefusedError(f"test refuses connect to {address!r}")

    def rec_allowed(address: Any) -> bool:
        return address[1] in allowed_ports

    allowed_ports: set[int] = set()
    rec.allowed_ports = allowed_ports  # type: ignore[attr-defined]

    def gai(host: Any, *args: Any, **kwargs: Any) -> Any:
        rec.lookups.append(str(host))
        return real_gai(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", gai)
    yield rec


def _assert_no_blocked_connect(rec: Recorder) -> None:
    for addr in rec.connects:
        ip = parse_ip_literal(str(addr[0]).split("%")[0])
        assert ip is None or not is_blocked_address(ip) or addr[1] in rec.allowed_ports  # type: ignore[attr-defined]


BLOCKED_URLS = [
    "https://2130706433/",
    "https://0x7f.1/",
    "https://0177.0.0.1/",
    "https://127.1/",
    "https://127.0.0.1/",
    "https://0.0.0.0/",
    "https://0/",
    "https://[::1]/",
    "https://[::]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[64:ff9b::7f00:1]/",
    "https://[2002:7f00:1::]/",
    "https://169.254.169.254/latest/meta-data/",
    "https://0xa9fea9fe/",
    "https://[fd00:ec2::254]/",
    "https://[fe80::1]/",
    "https://10.0.0.1/",
    "https://10.255.255.255/",
    "https://172.16.0.1/",
    "https://172.31.255.255/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",
    "https://100.127.255.254/",
    "https://224.0.0.1/",
    "https://240.0.0.1/",
    "https://255.255.255.255/",
    "https://localhost/",
    "https://localhost./",
    "https://LOCALHOST/",
    "https://x.localhost/",
    "http://93.184.216.34/",  # plain http refused by default
]

INVALID_URLS = [
    "https://cdn@127.0.0.1/",
    "https://cdn.example.com@127.0.0.1/",
    "https://user:pw@cdn.example.com/",
    "https://127.0.0.1#@cdn.example.com/",
    "https://cdn.example.com\r\nHost: 127.0.0.1/",
    "https://cdn.example.com/\x00",
    "https://cdn.example.com/a b",
    "https://cdn.example.com\\@127.0.0.1/",
    "https://cdn.example.com/" + "a" * 100_000,
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://cdn.example.com/a",
    "dict://127.0.0.1:11211/",
    "javascript:alert(1)",
    "//cdn.example.com/a",
    "https:///nohost",
    "https://cdn.example.com:99999/",
    "",
]


@pytest.mark.parametrize("url", BLOCKED_URLS + INVALID_URLS)
def test_vector_is_refused_without_any_connection(
    url: str, net: Recorder, bucket_less: Any
) -> None:
    with pytest.raises(TransferError) as info:
        copy_url(bucket_less, url, Destination(), policy=STRICT, config=CFG)
    assert info.value.code in ("url_blocked", "invalid_url")
    assert not info.value.retryable
    assert net.connects == []
    assert net.lookups == []  # refused before any DNS question


@pytest.fixture
def bucket_less() -> Any:
    """A backend stand-in: refused URLs must fail before the store is touched."""

    class _Untouchable:
        bucket = "never"

        @property
        def client(self) -> Any:
            raise AssertionError("the store must not be touched for a refused URL")

    return _Untouchable()


@pytest.mark.parametrize(
    "answers",
    [
        ["127.0.0.1"],
        ["93.184.216.34", "127.0.0.1"],
        ["::1"],
        ["169.254.169.254"],
        ["::ffff:10.0.0.1"],
        ["fd00:ec2::254"],
    ],
)
def test_hostname_resolving_to_blocked_address_is_refused(
    answers: list[str], net: Recorder
) -> None:
    with pytest.raises(TransferError) as info:
        Fetcher(STRICT, CFG, resolver=lambda h, p: answers).open("https://cdn.example.com/a")
    assert info.value.code == "url_blocked"
    assert net.connects == []


def test_dns_rebinding_cannot_reach_loopback(
    net: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resolver answering public then loopback: we ask once and connect to what we checked."""
    calls: list[str] = []
    real_gai = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example.com":
            calls.append(host)
            ip = "93.184.216.34" if len(calls) == 1 else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]
        return real_gai(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(TransferError) as info:
        Fetcher(STRICT, CFG).open("https://rebind.example.com/a.mp4")
    assert info.value.code == "source_refused"  # the public address it checked refused
    assert calls == ["rebind.example.com"]
    assert [c[0] for c in net.connects] == ["93.184.216.34"]


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/a.bin",
        "http://[::ffff:127.0.0.1]:{port}/a.bin",
        "http://localhost:{port}/a.bin",
        "http://10.0.0.1/",
        "http://2130706433:{port}/a.bin",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "http://user@127.0.0.1:{port}/a.bin",
    ],
)
def test_redirect_to_blocked_target_is_refused(target: str, net: Recorder) -> None:
    policy = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}))
    with CDNServer() as cdn:
        net.allowed_ports.add(cdn.port)  # type: ignore[attr-defined]
        cdn.add("/a.bin", b"secret")
        url = cdn.url("/r", mode="redirect", to=target.format(port=cdn.port))
        with pytest.raises(TransferError) as info:
            Fetcher(policy, CFG).open(url)
        assert info.value.code in ("url_blocked", "invalid_url")
        assert {c[1] for c in net.connects} == {cdn.port}
        assert [r.path for r in cdn.requests] == ["/r"]
    _assert_no_blocked_connect(net)


def test_too_many_redirect_hops_are_refused(net: Recorder) -> None:
    policy = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}))
    with CDNServer() as cdn:
        net.allowed_ports.add(cdn.port)  # type: ignore[attr-defined]
        final = cdn.add("/a.bin", b"ok")
        with pytest.raises(TransferError) as info:
            Fetcher(policy, CFG).open(cdn.url("/r", mode="redirect", hops=9, to=final))
        assert info.value.code == "url_blocked"
        assert len(cdn.requests) == 6  # the first request + 5 followed hops, no more
        ok = Fetcher(policy, CFG).open(cdn.url("/r", mode="redirect", hops=4, to=final))
        assert ok.read(10) == b"ok"
        ok.close()


def test_https_to_http_downgrade_is_refused_even_when_http_is_allowed(net: Recorder) -> None:
    with CDNServer(tls=True) as tls, CDNServer() as plain:
        net.allowed_ports.update({tls.port, plain.port})  # type: ignore[attr-defined]
        target = plain.add("/a.bin", b"x")
        policy = FetchPolicy(
            allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}), ca_bundle=tls.ca_path
        )
        with pytest.raises(TransferError) as info:
            Fetcher(policy, CFG).open(tls.url("/r", mode="redirect", to=target))
        assert info.value.code == "url_blocked"
        assert plain.requests == []


def test_allow_list_opens_only_the_named_host() -> None:
    policy = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}))
    assert validate_url("http://127.0.0.1:8080/a", policy).host == "127.0.0.1"
    with pytest.raises(TransferError):
        validate_url("http://127.0.0.2/a", policy)
    with pytest.raises(TransferError):
        validate_url("http://localhost/a", policy)


def test_public_addresses_are_not_blocked() -> None:
    for raw in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808"]:
        ip = parse_ip_literal(raw)
        assert ip is not None and not is_blocked_address(ip), raw
