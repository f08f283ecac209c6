"""Keep-alive connections to one S3 endpoint for the lean requests: http.client, pooled.

Why not the client's urllib3 pool (``URLLib3Session.send``, which this replaced on the
common path): for a 64 KiB PUT on loopback it costs ~540 us of the sending thread's
CPU, the pool's own ``urlopen`` ~420 us, http.client on a kept-alive connection ~200 us
(``python -m bench.bench_small_put``; a raw socket ~70 us). urllib3 spends the
difference on URL parsing, pool lookups, the per-request timeout and retry objects
and its response wrapper, none of which a request with a known target, a known body
and no retries needs. http.client is what urllib3 itself sends with.

What the client's session decides is kept: the timeouts (connect, then read), TLS
verification and its CA bundle, the socket options (TCP keepalive). An endpoint the
session reaches through a proxy, or with a client certificate, is not served here
(`Wire.for_session` says None and the caller uses the session). Connections are lent to
one request at a time and kept idle between requests (up to the session's pool size),
not held per thread: a worker copies each chunk of assets on new threads, and
connections that died with their thread cost one connect (a TLS handshake on https)
per chunk and thread. A connection the server closed while idle is noticed before it
is lent (urllib3's own check); a request that
fails on the wire raises the botocore exception the session would have raised
(`EndpointConnectionError`, `ConnectTimeoutError`, `ReadTimeoutError`, `SSLError`,
`ConnectionClosedError`), so retries and error messages are the same either way.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import botocore.exceptions as bce
from botocore.httpsession import URLLib3Session, get_cert_path
from urllib3.util.wait import wait_for_read


@dataclass(frozen=True, slots=True)
class Answer:
    """An S3 answer, read whole: the parts of botocore's ``AWSResponse`` the lean path reads."""

    status_code: int
    headers: Any  # case-insensitive .get / iteration (an http.client HTTPMessage)
    content: bytes


class IdleConnections:
    """Kept-alive http.client connections between requests, lent one request at a time.

    Shared by the lean S3 wire and the source fetcher's pinned pools (`transfer.
    source_conns`): whoever owns it decides where a new connection goes; this only keeps
    the idle ones. A connection the server closed while idle is noticed before it is lent
    again (urllib3's own check: readable while idle means closed, or junk).
    """

    def __init__(self, max_idle: int) -> None:
        self._max_idle = max_idle
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def take(self) -> http.client.HTTPConnection | None:
        """An idle connection the server has not closed, or None (make a new one)."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return None
            if conn.sock is not None and not wait_for_read(conn.sock, timeout=0.0):
                return conn
            conn.close()

    def keep(self, conn: http.client.HTTPConnection) -> None:
        """Keep ``conn`` for a next request (closed instead when there is no room, and
        dropped when the server asked to close it: ``Connection: close``)."""
        if conn.sock is None:
            return
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._idle)

    def __iter__(self) -> Iterator[http.client.HTTPConnection]:
        """The idle connections as of now (a copy: they stay kept)."""
        with self._lock:
            return iter(list(self._idle))


def _timeouts(session: URLLib3Session) -> tuple[float | None, float | None]:
    timeout = session._timeout  # a number, or urllib3 Timeout(connect, read)
    if isinstance(timeout, int | float):
        return float(timeout), float(timeout)
    return timeout.connect_timeout, timeout.read_timeout


class Wire:
    """Sends requests to one endpoint (scheme, host, port) on this thread's connection."""

    def __init__(self, endpoint_url: str, session: URLLib3Session) -> None:
        parts = urlsplit(endpoint_url)
        self._url = endpoint_url
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._connect_timeout, self._read_timeout = _timeouts(session)
        self._socket_options = list(session._socket_options or [])
        self._context: ssl.SSLContext | None = None
        if self._https:
            verify = session._verify
            if verify is False:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                context = ssl.create_default_context(cafile=get_cert_path(verify))
            self._context = context
        self._idle = IdleConnections(max(1, int(getattr(session, "_max_pool_connections", 10))))
        # The Wire is gone: close its idle connections (not leave them to the collector).
        weakref.finalize(self, self._idle.close)

    @classmethod
    def for_session(cls, endpoint_url: str, session: Any) -> Wire | None:
        """A Wire for this endpoint, or None when the session's requests to it need the
        session itself (a proxy, a client certificate, a session of another kind)."""
        if not isinstance(session, URLLib3Session):
            return None
        scheme = urlsplit(endpoint_url).scheme
        if scheme not in ("http", "https") or session._cert_file is not None:
            return None
        if session._proxy_config.proxy_url_for(endpoint_url):
            return None
        return cls(endpoint_url, session)

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> Answer:
        """One request on a kept-alive connection; the answer read whole."""
        conn = self._idle.take() or self._new()
        if conn.sock is None:
            self._connect(conn)
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            content = response.read()
        except BaseException as exc:
            conn.close()  # whatever was half sent or half read, it is not lent again
            mapped = self._sending_error(exc) if isinstance(exc, Exception) else exc
            if mapped is exc:
                raise
            raise mapped from exc
        self._idle.keep(conn)
        return Answer(response.status, response.headers, content)

    def _new(self) -> http.client.HTTPConnection:
        if self._context is not None:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._connect_timeout, context=self._context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)

    def _connect(self, conn: http.client.HTTPConnection) -> None:
        """Connect (and TLS handshake) under the connect timeout, then read under the read one."""
        try:
            conn.connect()
            assert conn.sock is not None
            for option in self._socket_options:
                conn.sock.setsockopt(*option)
            conn.sock.settimeout(self._read_timeout)
        except Exception as exc:
            conn.close()
            raise self._connecting_error(exc) from exc

    def _connecting_error(self, exc: Exception) -> Exception:
        if isinstance(exc, ssl.SSLError | ssl.CertificateError):
            return bce.SSLError(endpoint_url=self._url, error=exc)
        if isinstance(exc, TimeoutError):
            return bce.ConnectTimeoutError(endpoint_url=self._url, error=exc)
        return bce.EndpointConnectionError(endpoint_url=self._url, error=exc)

    def _sending_error(self, exc: Exception) -> Exception:
        if isinstance(exc, ssl.SSLError):
            return bce.SSLError(endpoint_url=self._url, error=exc)
        if isinstance(exc, TimeoutError):
            return bce.ReadTimeoutError(endpoint_url=self._url, error=exc)
        if isinstance(exc, OSError | http.client.HTTPException):
            return bce.ConnectionClosedError(endpoint_url=self._url, error=exc, request=None)
        return exc


__all__ = ["Answer", "IdleConnections", "Wire"]
