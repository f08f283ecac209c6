"""The submitter's side of source refresh, for tests: an HTTP refresh endpoint and a
Python refresher, both answering with a URL the test CDN's ``gated`` mode accepts.

The endpoint verifies every POST with the Standard Webhooks library and the
tenant's secret (as a real submitter would) and records what it was sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.cdn import refresh_token


def gated_url(scheme: str, host: str, path: str) -> str:
    """A fresh URL for a ``gated`` CDN path (the token the CDN wants, and the mode)."""
    return f"{scheme}://{host}{path}?mode=gated&token={refresh_token(path)}"


def fresh_cdn_url(request: Any) -> str:
    """A ``source_refresher`` (import path ``tests.support.refresher:fresh_cdn_url``)."""
    return gated_url(request.scheme, request.host, request.path)


@dataclass
class RefreshCall:
    headers: dict[str, str]
    body: dict[str, Any]
    verified: bool


@dataclass
class _State:
    secret: str | bytes
    answer: Callable[[dict[str, Any]], tuple[int, dict[str, Any] | None]]
    calls: list[RefreshCall] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def default_answer(body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    src = body["source"]
    return 200, {"url": gated_url(src["scheme"], src["host"], src["path"])}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        """Quiet."""

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        st = self.server.state
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k: v for k, v in self.headers.items()}
        try:
            Webhook(st.secret).verify(raw, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        body = json.loads(raw)
        with st.lock:
            st.calls.append(RefreshCall(headers, body, verified))
        status, doc = st.answer(body) if verified else (401, None)
        out = json.dumps(doc).encode() if doc is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: _State) -> None:
        self.state = state
        super().__init__(("127.0.0.1", 0), _Handler)


class RefreshEndpoint:
    """``with RefreshEndpoint(secret) as ep: ep.url``; ``ep.calls`` are the POSTs seen."""

    def __init__(
        self,
        secret: str | bytes,
        answer: Callable[[dict[str, Any]], tuple[int, dict[str, Any] | None]] = default_answer,
    ) -> None:
        key = (
            secret.encode()
            if isinstance(secret, str) and not secret.startswith("whsec_")
            else secret
        )
        self._state = _State(key, answer)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RefreshEndpoint:
        self._server = _Server(self._state)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/refresh"

    @property
    def calls(self) -> list[RefreshCall]:
        with self._state.lock:
            return list(self._state.calls)

    def set_answer(
        self, answer: Callable[[dict[str, Any]], tuple[int, dict[str, Any] | None]]
    ) -> None:
        self._state.answer = answer
