"""The lean requests' connections (backend/lean/wire.py) on real loopback sockets:
kept alive, renewed when the server closed them, timed out, verified, and failing
with the botocore exceptions boto3's own session raises for the same faults."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions as bce
import pytest
from botocore.config import Config

from genblaze_s3.backend.lean.wire import Wire
from tests.support.cdn import make_self_signed_cert


class _S3ish(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_PUT(self) -> None:  # noqa: N802 - stdlib naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        if self.server.mode == "slow":
            self.server.release.wait(10)
        if self.server.mode == "hang-up":
            self.close_connection = True
            return  # no answer at all
        self.send_response(200)
        self.send_header("ETag", '"e"')
        self.send_header("Content-Length", "0")
        if self.server.mode == "close-after":
            self.send_header("Connection", "close")
        self.end_headers()

    do_HEAD = do_PUT  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: Any = None) -> None:
        super().__init__(("127.0.0.1", 0), _S3ish)
        self.tls = tls
        self.mode = "ok"
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.accepted = 0
        self.open: list[socket.socket] = []
        self.release = threading.Event()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        self.accepted += 1
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True)
        self.open.append(sock)
        return sock, addr

    def drop_idle(self) -> None:
        """Close every accepted connection from the server side (an idle timeout)."""
        for sock in self.open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def _session(url: str, **config: Any) -> Any:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="ak",
        aws_secret_access_key="sk",
        config=Config(**config),
    )
    return client._endpoint.http_session


def _url(srv: _Server, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{srv.server_address[1]}"


def test_requests_share_one_kept_alive_connection(server: _Server) -> None:
    wire = Wire.for_session(_url(server), _session(_url(server)))
    assert wire is not None
    for i in range(3):
        answer = wire.send("PUT", f"/b/k{i}", {"Content-Length": "3", "X": "y"}, b"abc")
        assert (answer.status_code, answer.headers.get("etag")) == (200, '"e"')
    assert server.accepted == 1
    assert [(m, p, b) for m, p, _, b in server.seen] == [
        ("PUT", f"/b/k{i}", b"abc") for i in range(3)
    ]
    assert server.seen[0][2]["X"] == "y"


def test_a_connection_the_server_closed_while_idle_is_replaced_before_use(server: _Server) -> None:
    wire = Wire.for_session(_url(server), _session(_url(server)))
    assert wire is not None
    wire.send("PUT", "/b/1", {"Content-Length": "0"}, b"")
    server.drop_idle()
    answer = wire.send("PUT", "/b/2", {"Content-Length": "0"}, b"")  # no error, no retry owed
    assert answer.status_code == 200
    assert server.accepted == 2


def test_connection_close_from_the_server_opens_a_new_one_next_time(server: _Server) -> None:
    server.mode = "close-after"
    wire = Wire.for_session(_url(server), _session(_url(server)))
    assert wire is not None
    for i in range(2):
        assert wire.send("PUT", f"/b/{i}", {"Content-Length": "0"}, b"").status_code == 200
    assert server.accepted == 2


def test_short_lived_threads_reuse_the_kept_connection(server: _Server) -> None:
    # A worker copies each chunk of assets on new threads: a connection per thread
    # would die with it and cost a connect (a TLS handshake on https) per chunk.
    wire = Wire.for_session(_url(server), _session(_url(server)))
    assert wire is not None
    for i in range(3):
        t = threading.Thread(
            target=wire.send, args=("PUT", f"/b/{i}", {"Content-Length": "0"}, b"")
        )
        t.start()
        t.join(10)
    assert len(server.seen) == 3
    assert server.accepted == 1


def test_requests_in_flight_together_each_have_a_connection(server: _Server) -> None:
    server.mode = "slow"  # every answer waits for `release`: three requests in flight
    wire = Wire.for_session(_url(server), _session(_url(server)))
    assert wire is not None
    threads = [
        threading.Thread(target=wire.send, args=("PUT", f"/b/{i}", {"Content-Length": "0"}, b""))
        for i in range(3)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(server.seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(server.seen) == 3 and server.accepted == 3
    server.release.set()
    for t in threads:
        t.join(10)
    assert len(wire._idle) == 3  # all three kept for the next requests
    server.mode = "ok"
    wire.send("PUT", "/b/again", {"Content-Length": "0"}, b"")
    assert server.accepted == 3


def test_faults_raise_what_botocores_session_raises(server: _Server) -> None:
    # Nothing listening: both say EndpointConnectionError.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    wire = Wire.for_session(dead, _session(dead))
    assert wire is not None
    with pytest.raises(bce.EndpointConnectionError):
        wire.send("PUT", "/b/k", {"Content-Length": "0"}, b"")
    # The server hangs up without an answer: ConnectionClosedError (retryable).
    server.mode = "hang-up"
    session = _session(_url(server))
    wire = Wire.for_session(_url(server), session)
    assert wire is not None
    with pytest.raises(bce.ConnectionClosedError):
        wire.send("PUT", "/b/k", {"Content-Length": "0"}, b"")
    from botocore.awsrequest import AWSRequest

    prepared = AWSRequest("PUT", _url(server) + "/b/k", data=b"").prepare()
    with pytest.raises(bce.ConnectionClosedError):
        session.send(prepared)
    # No answer within the read timeout: ReadTimeoutError, as botocore's.
    server.mode = "slow"
    session = _session(_url(server), read_timeout=0.3, connect_timeout=5)
    wire = Wire.for_session(_url(server), session)
    assert wire is not None
    with pytest.raises(bce.ReadTimeoutError):
        wire.send("PUT", "/b/k", {"Content-Length": "0"}, b"")
    with pytest.raises(bce.ReadTimeoutError):
        session.send(prepared)


def test_the_sessions_socket_options_are_applied(server: _Server) -> None:
    wire = Wire.for_session(_url(server), _session(_url(server), tcp_keepalive=True))
    assert wire is not None
    wire.send("PUT", "/b/k", {"Content-Length": "0"}, b"")
    (conn,) = wire._idle
    assert conn.sock is not None
    assert conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[_Server, Path]]:
    import ssl

    cert, key = make_self_signed_cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = _Server(tls=ctx)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, cert
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def test_https_verifies_with_the_clients_ca_bundle(
    tls_server: tuple[_Server, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, cert = tls_server
    url = _url(srv, "https")
    # The default bundle does not know the test CA: refused, as botocore refuses.
    wire = Wire.for_session(url, _session(url))
    assert wire is not None
    with pytest.raises(bce.SSLError):
        wire.send("PUT", "/b/k", {"Content-Length": "0"}, b"")
    # The client's CA bundle (AWS_CA_BUNDLE, as boto3 reads it): accepted.
    monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))
    wire = Wire.for_session(url, _session(url))
    assert wire is not None
    for _ in range(3):
        assert wire.send("PUT", "/b/k", {"Content-Length": "2"}, b"ok").status_code == 200
    assert srv.seen[-1][3] == b"ok"
    # One handshake for all three: what TLS 1.3 sends after the handshake (session
    # tickets) is not taken for a connection the server closed.
    assert srv.accepted == 2  # the refused one, then this one


def test_proxied_endpoints_are_left_to_the_session(server: _Server) -> None:
    url = _url(server)
    assert Wire.for_session(url, _session(url, proxies={"http": "http://127.0.0.1:9"})) is None
    assert Wire.for_session(url, object()) is None
