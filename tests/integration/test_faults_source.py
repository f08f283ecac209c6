"""Source (CDN) faults through the queue: each job fails with the right code or succeeds,
retries are bounded, and nothing is left behind.

All rows are submitted at once over the API (module fixture) and run in parallel
on real workers; each row then asserts its outcome, how many times the source was
asked (no retry loop), and the shared invariants. Every row has its own bucket so
"no debris" is exact.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from genblaze_s3.local.services import SeaweedS3, drop_bucket
from tests.support.cdn import CDNServer
from tests.support.invariants import Services, assert_invariants, wait_terminal
from tests.support.workers import QueueStack, StartStack

MAX_RETRIES = 2
CAP = 8 * 1024 * 1024


class _ExpiresOnResume(BaseHTTPRequestHandler):
    """First GET: a body cut short (retryable); every later GET: 403 (URL expired)."""

    protocol_version = "HTTP/1.1"
    hits = 0
    lock = threading.Lock()

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        with self.lock:
            type(self).hits += 1
            first = type(self).hits == 1
        if first:
            self.send_response(200)
            self.send_header("Content-Length", "200000")
            self.send_header("ETag", '"v1"')
            self.end_headers()
            self.wfile.write(b"z" * 50_000)
            self.close_connection = True
            return
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()


@dataclass
class Row:
    name: str
    url: str
    path: str | None  # CDN path whose requests are counted
    expect: str  # "succeeded" or an error code
    max_requests: int
    data: bytes | None = None
    job_id: str = ""
    bucket: str = ""


@pytest.fixture(scope="module")
def src_stack(start_module_stack: StartStack) -> QueueStack:
    return start_module_stack(
        queue="genblaze-src",
        n_workers=1,
        concurrency=4,
        extra_env={
            "GENBLAZE_MAX_SOURCE_BYTES": str(CAP),
            "GENBLAZE_MAX_RETRIES": str(MAX_RETRIES),
            # Shorter source timeouts, when the worker reads them.
            "GENBLAZE_SOURCE_READ_TIMEOUT": "3",
            "GENBLAZE_SOURCE_MIN_RATE_GRACE": "3",
        },
    )


@pytest.fixture(scope="module")
def rows(src_stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer) -> Iterator[dict[str, Row]]:
    """Submit every row at once; yield them once all jobs are terminal."""
    data = os.urandom(300_000)
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    expiring = ThreadingHTTPServer(("127.0.0.1", 0), _ExpiresOnResume)
    expiring.daemon_threads = True
    t = threading.Thread(target=expiring.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    for p in (
        "trunc",
        "wrong",
        "chunk",
        "flaky",
        "norange",
        "etag",
        "stall",
        "trickle",
        "huge",
        "endless",
        "exp403",
        "exp410",
    ):
        cdn.add(f"/{p}.bin", data)
    cdn.add("/bomb.bin", bomb, content_type="application/gzip")
    table = [
        Row(
            "truncated",
            cdn.url("/trunc.bin", mode="truncate", at=1000),
            "/trunc.bin",
            "source_truncated",
            MAX_RETRIES + 1,
        ),
        Row(
            "wrong_length",
            cdn.url("/wrong.bin", mode="wrong_length"),
            "/wrong.bin",
            "source_truncated",
            MAX_RETRIES + 1,
        ),
        Row(
            "chunked_without_final_chunk",
            cdn.url("/chunk.bin", mode="chunked_cut"),
            "/chunk.bin",
            "source_truncated",
            MAX_RETRIES + 1,
        ),
        Row(
            "5xx_then_ok",
            cdn.url("/flaky.bin", mode="flaky5xx", n=2),
            "/flaky.bin",
            "succeeded",
            3,
            data,
        ),
        Row(
            "range_ignored",
            cdn.url("/norange.bin", mode="no_range"),
            "/norange.bin",
            "succeeded",
            1,
            data,
        ),
        Row(
            "etag_changes_every_request",
            cdn.url("/etag.bin", mode="changing_etag"),
            "/etag.bin",
            "succeeded",
            1,
            data,
        ),
        Row(
            "stall",
            cdn.url("/stall.bin", mode="stall", after=1000, seconds=120),
            "/stall.bin",
            "source_too_slow",
            MAX_RETRIES + 1,
        ),
        Row(
            "trickle",
            cdn.url("/trickle.bin", mode="slow", rate=600),
            "/trickle.bin",
            "source_too_slow",
            MAX_RETRIES + 1,
        ),
        Row(
            "huge_content_length",
            cdn.url("/huge.bin", mode="huge_length"),
            "/huge.bin",
            "too_large",
            1,
        ),
        Row(
            "endless_body",
            cdn.url("/endless.bin", mode="endless"),
            "/endless.bin",
            "too_large",
            1,
        ),
        Row(
            "gzip_bomb_stored_raw",
            cdn.url("/bomb.bin", mode="gzip"),
            "/bomb.bin",
            "succeeded",
            1,
            bomb,
        ),
        Row(
            "expired_403",
            cdn.url("/exp403.bin", mode="expired"),
            "/exp403.bin",
            "source_expired",
            1,
        ),
        Row(
            "expired_410",
            cdn.url("/exp410.bin", mode="expired", code=410),
            "/exp410.bin",
            "source_expired",
            1,
        ),
        Row(
            "expired_on_retry",
            f"http://127.0.0.1:{expiring.server_address[1]}/v.bin",
            None,
            "source_expired",
            2,
        ),
    ]
    token = src_stack.tokens["acme"]
    shared = seaweed.create_bucket(f"src-{os.urandom(6).hex()}")
    for row in table:
        # one bucket, one prefix per row: "no debris" is checked per prefix
        row.bucket = shared
        body = {
            "assets": [{"url": row.url}],
            "destination": {
                "bucket": row.bucket,
                "endpoint_url": seaweed.endpoint_url,
                "prefix": f"row-{row.name}",
            },
        }
        r = httpx.post(
            f"{src_stack.api_url}/v1/jobs",
            json=body,
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 202, (row.name, r.text)
        row.job_id = r.json()["job_id"]
    try:
        svc = Services(redis_url=src_stack.redis_url, s3=seaweed.client())
        wait_terminal(svc, [r.job_id for r in table], timeout=240)
        counts: dict[str, int] = {}
        for req in cdn.requests:
            counts[req.path] = counts.get(req.path, 0) + 1
        for row in table:
            row.requests = counts.get(row.path, 0) if row.path else _ExpiresOnResume.hits  # type: ignore[attr-defined]
        yield {r.name: r for r in table}
    finally:
        expiring.shutdown()
        expiring.server_close()
        drop_bucket(seaweed.client(), shared)


ROW_NAMES = [
    "truncated",
    "wrong_length",
    "chunked_without_final_chunk",
    "5xx_then_ok",
    "range_ignored",
    "etag_changes_every_request",
    "stall",
    "trickle",
    "huge_content_length",
    "endless_body",
    "gzip_bomb_stored_raw",
    "expired_403",
    "expired_410",
    "expired_on_retry",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", ROW_NAMES)
def test_source_fault_row(
    name: str, rows: dict[str, Row], src_stack: QueueStack, seaweed: SeaweedS3
) -> None:
    row = rows[name]
    svc = Services(redis_url=src_stack.redis_url, s3=seaweed.client())
    view = svc.store.get_job(row.job_id)
    assert view is not None
    asset = view.assets[0]
    if row.expect == "succeeded":
        assert view.state.value == "succeeded", view.model_dump_json()
        assert row.data is not None
        assert asset.sha256 == hashlib.sha256(row.data).hexdigest()
        rec = svc.store.get_asset(row.job_id, asset.asset_id)
        assert rec is not None and rec.size == len(row.data)  # raw bytes, never inflated
    else:
        assert view.state.value == "failed", view.model_dump_json()
        assert asset.error is not None and asset.error.code == row.expect, asset.error
        assert view.error is not None and view.error.transfer_failures == [asset.asset_id]
    n = row.requests  # type: ignore[attr-defined]
    assert 1 <= n <= row.max_requests, f"source asked {n} times (bound {row.max_requests})"
    assert_invariants(svc, [row.job_id])
