"""A test CDN: a real HTTP(S) server on loopback with the faults real CDNs have.

Why: the copy engine must be proven against real sockets (timeouts, resets,
short bodies, redirects), not mocks. Stdlib only (ThreadingHTTPServer); TLS
uses a self-signed certificate generated at start (``cryptography``), so the
https benchmark measures a real TLS download.

Usage::

    with CDNServer() as cdn:
        url = cdn.add("/a.png", data, content_type="image/png")
        bad = cdn.url("/a.png", mode="truncate", at=1000)
        cdn.requests  # [(method, path, range_header), ...]

Fault modes (``mode=`` on :meth:`CDNServer.url`, extra params as keyword args):

=================  ==========================================================
``slow``           ``rate`` bytes/s (default 256 KiB/s) after the first ``after``
                   bytes (default 0), which go at full speed; ``rate`` also slows
                   any other mode
``stall``          send ``after`` bytes (default 0) then stall ``seconds``
``truncate``       send ``at`` bytes (default half) then close the socket
``wrong_length``   Content-Length claims ``extra`` (default 100) more bytes
``flaky5xx``       first ``n`` (default 2) requests get ``status`` (503), with
                   ``Retry-After: <retry_after>`` when that param is given
``gated``          403 unless ``token`` is :func:`refresh_token` of the path: a
                   presigned URL that works only once refreshed
``status``         always answer ``code`` (e.g. 404, 410, 429, 500)
``expired``        403 (or ``code``) like an expired presigned CDN URL
``huge_length``    Content-Length ``length`` (default 10**15), then the body
``endless``        no Content-Length, bytes forever (until client closes)
``no_length``      no Content-Length, close-delimited body
``chunked_cut``    chunked encoding, connection closed before final chunk
``gzip``           add ``Content-Encoding: gzip`` (the stored data as is)
``no_range``       ignore Range headers (always 200 with the full body)
``changing_etag``  a new ETag on every request
``no_validators``  neither ETag nor Last-Modified (a body generated per request)
``redirect``       302 to ``to`` (a URL), after ``hops`` self-redirects
``set_cookie``     add ``Set-Cookie: cdn_session=<value>`` (default ``c00kie``)
=================  ==========================================================

``mode="redirect_to=URL"`` is accepted as shorthand for ``mode="redirect", to=URL``.
Paths that were never added answer 404.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import ipaddress
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlencode

_CHUNK = 1024 * 1024


class BigFile(NamedTuple):
    """A large random file on disk and its SHA-256 (what a stored copy must hash to)."""

    path: Path
    sha256: str
    size: int


def write_big_file(path: Path, size: int, *, block: int = _CHUNK) -> BigFile:
    """Write ``size`` random bytes (a multiple of ``block``) to ``path``, hashing as it goes.

    Why not one ``os.urandom(size)``: the long-copy rows use hundreds of MiB, and the
    file is streamed from disk by the CDN. One random block is reused with each
    block's index in its last 8 bytes, so no two blocks (and no two parts) are equal.
    """
    if size % block:
        raise ValueError(f"size {size} is not a multiple of the block size {block}")
    h = hashlib.sha256()
    random_block = os.urandom(block)
    with path.open("wb") as f:
        for i in range(size // block):
            chunk = random_block[:-8] + i.to_bytes(8, "big")
            h.update(chunk)
            f.write(chunk)
    return BigFile(path, h.hexdigest(), size)


class CDNRequest(NamedTuple):
    """One request the server saw: compare with plain 3-tuples in assertions."""

    method: str
    path: str
    range: str | None


@dataclass
class _Entry:
    data: bytes | memoryview | Path
    content_type: str
    etag: str
    last_modified: str
    size: int

    def read(self, start: int, end: int) -> Iterator[bytes | memoryview]:
        """Yield the bytes [start, end) in chunks, never the whole file at once."""
        if isinstance(self.data, Path):
            with self.data.open("rb") as f:
                f.seek(start)
                left = end - start
                while left > 0:
                    chunk = f.read(min(_CHUNK, left))
                    if not chunk:
                        return
                    left -= len(chunk)
                    yield chunk
        else:
            view = memoryview(self.data)
            for pos in range(start, end, _CHUNK):
                yield view[pos : min(pos + _CHUNK, end)]


@dataclass
class BodyRecord:
    """One response body the server sent (or began to): when it ended and why.

    ``ended`` is ``time.monotonic()`` when the server stopped writing (``None`` while
    it still writes); ``complete`` is False when the client went away first. Tests
    time "the reader stopped" from here, at the source, not from the reader's word.
    """

    path: str
    started: float
    ended: float | None = None
    sent: int = 0
    complete: bool = False


@dataclass
class _State:
    entries: dict[str, _Entry] = field(default_factory=dict)
    requests: list[CDNRequest] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    conns: set[socket.socket] = field(default_factory=set)
    connections_accepted: int = 0
    bytes_sent: dict[str, int] = field(default_factory=dict)  # body bytes written, per path
    bodies: list[BodyRecord] = field(default_factory=list)
    cookies_received: list[str] = field(default_factory=list)
    base_url: str = ""


def _param(q: dict[str, list[str]], name: str, default: str) -> str:
    return q.get(name, [default])[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        """Silence per-request stderr logging (the test output stays readable)."""

    def setup(self) -> None:
        super().setup()
        with self.server.state.lock:
            self.server.state.conns.add(self.connection)
            self.server.state.connections_accepted += 1

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.state.lock:
            self.server.state.conns.discard(self.connection)

    # -- request handling ---------------------------------------------------------
    def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
        self._serve(head=True)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        st = self.server.state
        path, _, query = self.path.partition("?")
        q = parse_qs(query)
        mode = _param(q, "mode", "")
        if mode.startswith("redirect_to="):
            q["to"] = [mode.split("=", 1)[1]]
            mode = "redirect"
        with st.lock:
            st.requests.append(CDNRequest(self.command, path, self.headers.get("Range")))
            if self.headers.get("Cookie"):
                st.cookies_received.append(self.headers["Cookie"])
            hit = st.hits.get(self.path, 0) + 1
            st.hits[self.path] = hit
            entry = st.entries.get(path)

        if mode == "redirect":
            hops = int(_param(q, "hops", "0"))
            if hops > 0:
                nq = {k: v[0] for k, v in q.items()}
                nq["hops"] = str(hops - 1)
                location = f"{path}?{urlencode(nq)}"
            else:
                location = _param(q, "to", "")
            code = int(_param(q, "code", "302"))
            self._empty(code, {"Location": location})
            return
        if mode == "flaky5xx" and hit <= int(_param(q, "n", "2")):
            wait = q.get("retry_after")
            self._empty(int(_param(q, "status", "503")), {"Retry-After": wait[0]} if wait else {})
            return
        if mode == "gated" and _param(q, "token", "") != refresh_token(path):
            self._empty(403)
            return
        if mode == "status":
            self._empty(int(_param(q, "code", "500")))
            return
        if mode == "expired":
            self._empty(int(_param(q, "code", "403")))
            return
        if entry is None:
            self._empty(404)
            return
        if mode == "endless":
            self._endless(entry, head)
            return

        etag = entry.etag if mode != "changing_etag" else f'"{entry.etag.strip(chr(34))}-{hit}"'
        if_match = self.headers.get("If-Match")
        if if_match and if_match != etag and if_match != "*":
            self._empty(412)
            return
        start, end, status = 0, entry.size, 200
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and mode != "no_range" and (not if_range or if_range == etag):
            parsed = _parse_range(rng, entry.size)
            if parsed is None:
                self._empty(416, {"Content-Range": f"bytes */{entry.size}"})
                return
            start, end = parsed
            status = 206

        headers = {
            "Content-Type": entry.content_type,
            "ETag": etag,
            "Last-Modified": entry.last_modified,
            "Accept-Ranges": "bytes",
        }
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{entry.size}"
        if mode == "no_validators":
            del headers["ETag"], headers["Last-Modified"]
        if mode == "gzip":
            headers["Content-Encoding"] = "gzip"
        if mode == "set_cookie":
            headers["Set-Cookie"] = f"cdn_session={_param(q, 'value', 'c00kie')}; Path=/"
        length = end - start
        chunked = mode == "chunked_cut"
        if mode == "wrong_length":
            headers["Content-Length"] = str(length + int(_param(q, "extra", "100")))
        elif mode == "huge_length":
            headers["Content-Length"] = _param(q, "length", str(10**15))
        elif mode == "no_length":
            headers["Connection"] = "close"
        elif chunked:
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers["Content-Length"] = str(length)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        if mode in ("wrong_length", "huge_length", "no_length", "chunked_cut"):
            self.close_connection = True
        limit = length
        if mode == "truncate":
            limit = min(length, int(_param(q, "at", str(length // 2))))
            self.close_connection = True
        if chunked:
            limit = length // 2
        # `rate` slows any mode down (e.g. no_validators at 1 MB/s); `slow` has a default
        rate = float(_param(q, "rate", str(256 * 1024) if mode == "slow" else "0"))
        stall_after = int(_param(q, "after", "0")) if mode == "stall" else -1
        fast_first = int(_param(q, "after", "0")) if mode == "slow" else 0
        if fast_first:
            self._send_body(entry, start, start + fast_first, 0.0, -1, q, chunked)
            start, limit = start + fast_first, limit - fast_first
        self._send_body(entry, start, start + limit, rate, stall_after, q, chunked)

    def _send_body(
        self,
        entry: _Entry,
        start: int,
        stop: int,
        rate: float,
        stall_after: int,
        q: dict[str, list[str]],
        chunked: bool,
    ) -> None:
        st = self.server.state
        record = BodyRecord(self.path.split("?", 1)[0], time.monotonic())
        with st.lock:
            st.bodies.append(record)
        try:
            record.sent = self._write_body(entry, start, stop, rate, stall_after, q, chunked)
            record.complete = record.sent == stop - start
        finally:
            record.ended = time.monotonic()

    def _write_body(
        self,
        entry: _Entry,
        start: int,
        stop: int,
        rate: float,
        stall_after: int,
        q: dict[str, list[str]],
        chunked: bool,
    ) -> int:
        """Write bytes [start, stop) of the entry; returns how many were written."""
        st = self.server.state
        sent = 0
        t0 = time.monotonic()
        try:
            for chunk in entry.read(start, stop):
                view = memoryview(chunk)
                step = max(1, int(rate / 20)) if rate else len(view)
                for pos in range(0, len(view), step):
                    piece = view[pos : pos + step]
                    if 0 <= stall_after <= sent + len(piece):
                        head = stall_after - sent
                        if head > 0:
                            self.wfile.write(piece[:head])
                            self.wfile.flush()
                        st.stop.wait(float(_param(q, "seconds", "30")))
                        self.close_connection = True
                        return sent + max(head, 0)
                    if chunked:
                        self.wfile.write(f"{len(piece):x}\r\n".encode())
                        self.wfile.write(piece)
                        self.wfile.write(b"\r\n")
                    else:
                        self.wfile.write(piece)
                    sent += len(piece)
                    with st.lock:
                        path = self.path.split("?", 1)[0]
                        st.bytes_sent[path] = st.bytes_sent.get(path, 0) + len(piece)
                    if rate:
                        self.wfile.flush()
                        ahead = sent / rate - (time.monotonic() - t0)
                        if ahead > 0 and st.stop.wait(ahead):
                            self.close_connection = True
                            return sent
                    if st.stop.is_set():
                        self.close_connection = True
                        return sent
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        return sent

    def _endless(self, entry: _Entry, head: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", entry.content_type)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if head:
            return
        block = b"\0" * _CHUNK
        with contextlib.suppress(OSError):
            while not self.server.state.stop.is_set():
                self.wfile.write(block)

    def _empty(self, code: int, extra: dict[str, str] | None = None) -> None:
        body = f"{code}\n".encode()
        self.send_response(code)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            with contextlib.suppress(OSError):
                self.wfile.write(body)


def refresh_token(path: str) -> str:
    """The token a ``gated`` URL of ``path`` needs (what a refresher puts in the fresh URL)."""
    return hashlib.sha256(f"genblaze-test-refresh:{path}".encode()).hexdigest()[:20]


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Parse a single ``bytes=`` range into [start, end); None when unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            return (max(0, size - n), size) if n > 0 else None
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size or end <= start:
        return None
    return start, min(end, size)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-body is what fault tests do; keep the output clean."""

    def __init__(self, state: _State, ssl_ctx: ssl.SSLContext | None) -> None:
        self.state = state
        self.ssl_ctx = ssl_ctx
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.ssl_ctx is not None:
            # Handshake in the handler thread (do_handshake_on_connect) so a
            # client that never handshakes cannot block the accept loop.
            sock = self.ssl_ctx.wrap_socket(sock, server_side=True)
        return sock, addr


def make_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed cert valid for 127.0.0.1 and localhost; return (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "genblaze-test-cdn")])
    now = _dt.datetime.now(_dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cdn-cert.pem"
    key_path = directory / "cdn-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class CDNServer:
    """Context manager running the test CDN on 127.0.0.1 at a free port.

    ``tls=True`` serves https with a fresh self-signed certificate; its path is
    ``ca_path`` (give it to the client as the CA bundle).
    """

    def __init__(self, *, tls: bool = False, host: str = "127.0.0.1") -> None:
        self.tls = tls
        self.host = host
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ca_path: str | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> CDNServer:
        ctx = None
        if self.tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="genblaze-cdn-")
            cert, key = make_self_signed_cert(Path(self._tmp.name))
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self.ca_path = str(cert)
        self._server = _Server(self._state, ctx)
        port = self._server.server_address[1]
        scheme = "https" if self.tls else "http"
        self._state.base_url = f"{scheme}://{self.host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        st = self._state
        st.stop.set()
        if self._server is not None:
            self._server.shutdown()
            # Unblock handler threads waiting on idle keep-alive connections.
            with st.lock:
                conns = list(st.conns)
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> CDNServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- content --------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self._state.base_url

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def requests(self) -> list[CDNRequest]:
        with self._state.lock:
            return list(self._state.requests)

    def drop_connections(self) -> None:
        """Close every accepted connection from the server's side (a keep-alive timeout)."""
        with self._state.lock:
            conns = list(self._state.conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    @property
    def connections_accepted(self) -> int:
        with self._state.lock:
            return self._state.connections_accepted

    @property
    def cookies_received(self) -> list[str]:
        with self._state.lock:
            return list(self._state.cookies_received)

    def bytes_sent(self, path: str) -> int:
        """Body bytes written for ``path`` so far (all requests, any mode)."""
        with self._state.lock:
            return self._state.bytes_sent.get(path, 0)

    def bodies(self, path: str) -> list[BodyRecord]:
        """The response bodies sent for ``path`` so far, oldest first (see BodyRecord)."""
        with self._state.lock:
            return [b for b in self._state.bodies if b.path == path]

    def clear_requests(self) -> None:
        with self._state.lock:
            self._state.requests.clear()
            self._state.bytes_sent.clear()

    def add(
        self,
        path: str,
        data: bytes | Path,
        *,
        content_type: str = "application/octet-stream",
        etag: str | None = None,
        last_modified: float | None = None,
    ) -> str:
        """Serve ``data`` (bytes, or a file streamed from disk) at ``path``; return its URL.

        Adding the same path again replaces the content with a new ETag, which
        is how a test makes "the source changed between attempts".
        """
        if not path.startswith("/"):
            path = "/" + path
        if isinstance(data, Path):
            size = data.stat().st_size
            tag = hashlib.sha256(f"{data}:{size}:{data.stat().st_mtime_ns}".encode()).hexdigest()
        else:
            size = len(data)
            tag = hashlib.sha256(data).hexdigest()
        with self._state.lock:
            old = self._state.entries.get(path)
            if etag is None:
                etag = f'"{tag[:32]}"'
                if old is not None and old.etag == etag:
                    etag = f'"{tag[:30]}-2"'
            lm = last_modified if last_modified is not None else time.time()
            self._state.entries[path] = _Entry(
                data, content_type, etag, formatdate(lm, usegmt=True), size
            )
        return self.url(path)

    def etag(self, path: str) -> str:
        return self._state.entries[path].etag

    def url(self, path: str, mode: str | None = None, **params: Any) -> str:
        """Full URL of ``path``, optionally with a fault ``mode`` and its params."""
        if not path.startswith("/"):
            path = "/" + path
        q: dict[str, str] = {}
        if mode:
            q["mode"] = mode
        q.update({k: str(v) for k, v in params.items()})
        return f"{self.base_url}{path}" + (f"?{urlencode(q)}" if q else "")
