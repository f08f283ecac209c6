"""Keep-alive connections to checked source addresses: http.client, pooled per target.

Why not urllib3's pools (what this replaced): for a 64 KiB https GET from a kept-alive
connection the fetching thread spent ~390 us of CPU through ``HTTPSConnectionPool.urlopen``
and its response wrapper against ~195 us on http.client (``python -m bench.bench_small_put``
has the S3 side of the same comparison; the source side is in bench/results/cost_cuts.md).
urllib3 spends the difference on URL parsing, pool lookups, per-request timeout and retry
objects and its response wrapper, none of which a request with a checked target and no
retries needs; http.client is what urllib3 itself sends with. And urllib3 built an
``SSLContext`` (loading the CA bundle) for every new connection; here one context per
CA bundle is shared by every connection of the process.

What is kept from the pinned design (`transfer.fetch`): a pool is keyed by (scheme,
checked IP, port, TLS name, CA bundle), so reuse never reaches an address that was not
checked, nor a name its certificate was not verified for; the socket goes to the IP,
while SNI and the certificate check use the URL's name. A connection the server closed
while idle is noticed before it is lent (urllib3's own check); a response read to its
end gives its connection back, one left unread (or cut short) closes it.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import certifi

from genblaze_s3.backend.lean.wire import IdleConnections
from genblaze_s3.transfer.errors import SourceConnectTimeout, SourceTLSFailed, map_source_error
from genblaze_s3.transfer.urlguard import Target

_CONTEXTS: dict[str | None, ssl.SSLContext] = {}
_CONTEXTS_LOCK = threading.Lock()


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The process's client context for ``ca_bundle`` (certifi's CAs when None): TLS 1.2+,
    certificate and host name verified. Built once: loading a CA bundle costs milliseconds."""
    with _CONTEXTS_LOCK:
        context = _CONTEXTS.get(ca_bundle)
        if context is None:
            context = ssl.create_default_context(cafile=ca_bundle or certifi.where())
            _CONTEXTS[ca_bundle] = context
        return context


def _context_for(ca_bundle: str | None) -> ssl.SSLContext:
    """`tls_context`, with a CA bundle that cannot be loaded reported as the TLS failure
    it is (a missing or unreadable file, or not PEM) instead of an unmapped OSError."""
    try:
        return tls_context(ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise SourceTLSFailed(
            f"the CA bundle for sources cannot be loaded ({type(exc).__name__}: "
            f"{getattr(exc, 'strerror', None) or exc})"
        ) from exc


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the checked address; TLS (SNI, certificate) is for ``tls_name``."""

    def __init__(
        self, ip: str, port: int, *, tls_name: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(ip, port, timeout=timeout, context=context)
        self._tls_name = tls_name
        self._tls_context = context

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # TCP to the IP, TCP_NODELAY set
        self.sock = self._tls_context.wrap_socket(self.sock, server_hostname=self._tls_name)


class SourceResponse:
    """An answer from a source: status, headers, the body as an http.client response.

    ``close`` gives the connection back when the body was read to its declared end and
    closes it otherwise (an unread body cannot carry another request; a short one came
    from a connection that broke)."""

    def __init__(
        self,
        pool: PinnedPool,
        conn: http.client.HTTPConnection,
        raw: http.client.HTTPResponse,
        sock: socket.socket | None,
    ) -> None:
        self._pool = pool
        self._conn: http.client.HTTPConnection | None = conn
        self.raw = raw
        self.status_code = raw.status
        self.headers = raw.headers  # case-insensitive .get
        self.sock = sock  # what the watchdog shuts down to wake a blocked read

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        raw = self.raw
        whole = raw.isclosed() and not raw.will_close and (raw.chunked or raw.length == 0)
        if whole and conn.sock is not None:
            self._pool.give_back(conn)
            return
        raw.close()
        conn.close()


class PinnedPool:
    """Idle keep-alive connections to one checked target (scheme, IP, port, name, CA)."""

    def __init__(self, target: Target, ip: str, ca_bundle: str | None, maxsize: int) -> None:
        self._target = target
        self._ip = ip
        self._context = _context_for(ca_bundle) if target.scheme == "https" else None
        self._idle = IdleConnections(maxsize)

    def get(
        self,
        path: str,
        headers: Mapping[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> SourceResponse:
        """GET ``path`` on a kept-alive connection (a new one if none is idle)."""
        conn = self._idle.take() or self._new(connect_timeout)
        if conn.sock is None:
            self._connect(conn, read_timeout)
        # The socket as sent on: a close-delimited answer (``Connection: close``, or no
        # length) makes http.client drop it from the connection inside getresponse,
        # and the watchdog still has to be able to shut it down.
        sock = conn.sock
        try:
            conn.request("GET", path, headers=dict(headers))
            raw = conn.getresponse()
        except BaseException as exc:
            conn.close()  # half sent or half read: never lent again
            if isinstance(exc, Exception):
                raise map_source_error(exc) from exc
            raise
        return SourceResponse(self, conn, raw, sock)

    def _new(self, connect_timeout: float) -> http.client.HTTPConnection:
        if self._context is not None:
            return _PinnedHTTPSConnection(
                self._ip,
                self._target.port,
                tls_name=self._target.host,
                timeout=connect_timeout,
                context=self._context,
            )
        return http.client.HTTPConnection(self._ip, self._target.port, timeout=connect_timeout)

    def _connect(self, conn: http.client.HTTPConnection, read_timeout: float) -> None:
        """TCP connect and TLS handshake under the connect timeout; reads under the read one."""
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(read_timeout)
        except TimeoutError as exc:
            conn.close()
            raise SourceConnectTimeout(f"source connect timed out ({type(exc).__name__})") from exc
        except Exception as exc:
            conn.close()
            raise map_source_error(exc) from exc

    def give_back(self, conn: http.client.HTTPConnection) -> None:
        self._idle.keep(conn)

    def close(self) -> None:
        self._idle.close()


class PinnedPools:
    """`PinnedPool`s by (scheme, checked IP, port, TLS name, CA bundle); thread-safe.

    At most ``max_pools`` are kept (least recently used closed first); each keeps up to
    ``maxsize`` idle keep-alive connections.
    """

    def __init__(self, *, max_pools: int = 16, maxsize: int = 4) -> None:
        self._max_pools = max_pools
        self._maxsize = maxsize
        self._pools: OrderedDict[tuple[Any, ...], PinnedPool] = OrderedDict()
        self._lock = threading.Lock()

    def pool(self, target: Target, ip: str, ca_bundle: str | None) -> PinnedPool:
        key = (target.scheme, ip, target.port, target.host, ca_bundle)
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            pool = PinnedPool(target, ip, ca_bundle, self._maxsize)
            self._pools[key] = pool
            if len(self._pools) > self._max_pools:
                _, old = self._pools.popitem(last=False)
                old.close()
            return pool

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            pool.close()


__all__ = ["PinnedPool", "PinnedPools", "SourceResponse", "tls_context"]
