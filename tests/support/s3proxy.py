"""A fault-injecting HTTP proxy in front of SeaweedFS, plus copy-test helpers.

Why our own (stdlib) proxy: we need faults keyed by S3 *operation and part
number* (503 SlowDown on UploadPart 3, a reset mid-part 5...), which generic
proxies do not understand. The client is pointed at the proxy's endpoint; the
proxy forwards each request to SeaweedFS unchanged (SigV4 signs the Host header,
so the client must sign for the proxy's host:port -- forwarding keeps the
bytes as signed and SeaweedFS does not check the Host against itself).

Faults: ``proxy.fail("UploadPart", part=3, status=503, times=1)`` or
``kind="reset"`` (drop the connection after reading the request).
``proxy.log`` records (operation, part_number, status, bytes) per request;
``proxy.connections_accepted`` counts client connections (reuse shows as fewer).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
    b"<Message>injected</Message></Error>"
)


def s3_operation(method: str, path: str) -> tuple[str, int | None]:
    """Name the S3 operation of a path-style request, and its part number if any."""
    q = parse_qs(urlsplit(path).query, keep_blank_values=True)
    part = int(q["partNumber"][0]) if "partNumber" in q else None
    if method == "PUT" and "uploadId" in q:
        return "UploadPart", part
    if method == "POST" and "uploads" in q:
        return "CreateMultipartUpload", None
    if method == "POST" and "uploadId" in q:
        return "CompleteMultipartUpload", None
    if method == "DELETE" and "uploadId" in q:
        return "AbortMultipartUpload", None
    if method == "GET" and "uploadId" in q:
        return "ListParts", None
    if method == "GET" and "uploads" in q:
        return "ListMultipartUploads", None
    sub = next((name for name in _SUBRESOURCES if name in q), None)
    if sub is not None:
        return _SUBRESOURCES[sub].get(method, f"{method}?{sub}"), None
    has_key = "/" in urlsplit(path).path.strip("/")
    if method == "PUT":
        return ("PutObject" if has_key else "CreateBucket"), None
    if method == "HEAD":
        return ("HeadObject" if has_key else "HeadBucket"), None
    if method == "GET":
        return ("GetObject" if has_key else "ListObjects"), None
    if method == "DELETE":
        return ("DeleteObject" if has_key else "DeleteBucket"), None
    return f"{method}", None


# Sub-resources whose requests are their own S3 operations (a cost count names them).
_SUBRESOURCES: dict[str, dict[str, str]] = {
    "retention": {"PUT": "PutObjectRetention", "GET": "GetObjectRetention"},
    "legal-hold": {"PUT": "PutObjectLegalHold", "GET": "GetObjectLegalHold"},
    "tagging": {"PUT": "PutObjectTagging", "GET": "GetObjectTagging"},
    "acl": {"PUT": "PutObjectAcl", "GET": "GetObjectAcl"},
    "delete": {"POST": "DeleteObjects"},
    "versions": {"GET": "ListObjectVersions"},
}


@dataclass
class Fault:
    operation: str
    part: int | None
    status: int
    kind: str  # "status" or "reset"
    times: int
    code: str = "SlowDown"


@dataclass
class ProxyLogEntry:
    operation: str
    part: int | None
    status: int
    bytes: int


@dataclass
class _ProxyState:
    upstream_host: str
    upstream_port: int
    faults: list[Fault] = field(default_factory=list)
    log: list[ProxyLogEntry] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    conns: set[socket.socket] = field(default_factory=set)
    connections_accepted: int = 0


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet."""

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

    def _handle(self) -> None:
        st = self.server.state
        op, part = s3_operation(self.command, self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = None
        with st.lock:
            for f in st.faults:
                if f.times > 0 and f.operation == op and (f.part is None or f.part == part):
                    f.times -= 1
                    fault = f
                    break
        if fault is not None and fault.kind == "reset":
            with st.lock:
                st.log.append(ProxyLogEntry(op, part, 0, len(body)))
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                self.connection.close()
            return
        if fault is not None:
            payload = _SLOWDOWN.replace(b"{code}", fault.code.encode())
            with st.lock:
                st.log.append(ProxyLogEntry(op, part, fault.status, len(body)))
            self.send_response(fault.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        conn = http.client.HTTPConnection(st.upstream_host, st.upstream_port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            with st.lock:  # log before answering: the client may look right after
                st.log.append(ProxyLogEntry(op, part, resp.status, len(body)))
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Injected resets make handler errors expected; keep test output clean."""

    def __init__(self, state: _ProxyState) -> None:
        self.state = state
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class S3FaultProxy:
    """Context manager: a proxy to ``upstream`` (an http://host:port endpoint)."""

    def __init__(self, upstream: str) -> None:
        u = urlsplit(upstream)
        self._state = _ProxyState(u.hostname or "127.0.0.1", u.port or 80)
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> S3FaultProxy:
        self._server = _ProxyServer(self._state)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        with self._state.lock:
            conns = list(self._state.conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(
        self,
        operation: str,
        *,
        part: int | None = None,
        status: int = 503,
        kind: str = "status",
        times: int = 1,
        code: str = "SlowDown",
    ) -> None:
        with self._state.lock:
            self._state.faults.append(Fault(operation, part, status, kind, times, code))

    @property
    def connections_accepted(self) -> int:
        """Client connections accepted so far (a client that reuses one counts once)."""
        with self._state.lock:
            return self._state.connections_accepted

    @property
    def log(self) -> list[ProxyLogEntry]:
        with self._state.lock:
            return list(self._state.log)


def make_backend(seaweed: Any, bucket: str, endpoint_url: str | None = None) -> Any:
    """The real S3StorageBackend on SeaweedFS (optionally through a proxy)."""
    from genblaze_s3 import S3StorageBackend

    return S3StorageBackend(
        bucket,
        endpoint_url=endpoint_url or seaweed.endpoint_url,
        access_key_id=seaweed.access_key,
        secret_access_key=seaweed.secret_key,
        region="us-east-1",
        preflight=False,
    )


def debris(client: Any, bucket: str) -> tuple[list[str], list[str]]:
    """(object keys, in-progress multipart upload keys) in the bucket."""
    objects = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    uploads = [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    return objects, uploads
