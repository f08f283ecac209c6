"""Small helpers the queue tests share (fixtures live in tests/integration/conftest.py)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from genblaze_s3 import S3StorageBackend
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.local.services import SeaweedS3
from genblaze_s3.local.supervisor import wait_until
from genblaze_s3.settings import load_settings


def backend_for(seaweed: SeaweedS3, bucket: str) -> S3StorageBackend:
    return seaweed.backend(bucket)


def user_backend(seaweed: SeaweedS3, bucket: str, **kwargs: Any) -> S3StorageBackend:
    """The backend as the README builds it (endpoint and keys, every other argument its
    default unless given), on SeaweedFS."""
    return S3StorageBackend(
        bucket,
        endpoint_url=seaweed.endpoint_url,
        access_key_id=seaweed.access_key,
        secret_access_key=seaweed.secret_key,
        **kwargs,
    )


def policy_for(seaweed: SeaweedS3) -> DestinationPolicy:
    return DestinationPolicy.from_settings(
        load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": seaweed.endpoint_url})
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def no_multipart_uploads(s3: Any, bucket: str) -> bool:
    return not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def wait_for(
    pred: Callable[[], bool], timeout: float = 30, interval: float = 0.05, what: str = ""
) -> None:
    """Poll an observable condition (a store field, a log line, a counter) until true."""
    wait_until(pred, timeout, what or "condition not met", interval=interval)


@contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server on a free loopback port running `handler`; yields its URL
    and stops it (and its thread) on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
