"""Preflight against stub S3 endpoints on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock

import pytest
from genblaze_core.exceptions import StorageError
from genblaze_core.storage.config import StorageConfig
from genblaze_core.storage.errors import StorageErrorCode

from genblaze_s3 import S3StorageBackend


@dataclass
class Stub:
    """One fake S3 endpoint: answers HEAD /bucket with ``status`` (and headers)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    requests: list[tuple[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            stub.requests.append((self.command, self.path))
            if stub.delay:
                time.sleep(stub.delay)
            path = self.path.split("?")[0].strip("/")
            status = stub.status if "/" not in path else 200
            self.send_response(status)
            for k, v in stub.headers.items():
                self.send_header(k, v)
            if "/" in path:  # HEAD of an object
                self.send_header("ETag", '"abc"')
                self.send_header("Last-Modified", "Wed, 25 Nov 2026 09:00:00 GMT")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = _answer
        do_GET = _answer

    return Handler


@pytest.fixture
def stubs() -> Iterator[Callable[..., Stub]]:
    started: list[Stub] = []

    def start(**kwargs: Any) -> Stub:
        stub = Stub(**kwargs)
        stub.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
        stub.server.daemon_threads = True
        threading.Thread(target=stub.server.serve_forever, daemon=True).start()
        started.append(stub)
        return stub

    yield start
    for stub in started:
        assert stub.server is not None
        stub.server.shutdown()
        stub.server.server_close()


def b2_backend(regions: dict[str, Stub], home: str, **kwargs: Any) -> S3StorageBackend:
    return S3StorageBackend.for_backblaze(
        "bkt",
        region=home,
        key_id="kid",
        app_key="secret",
        endpoint_template=lambda r: regions[r].url,
        regions=tuple(regions),
        config=StorageConfig(retries=0),
        **kwargs,
    )


def test_region_redirect_is_followed(stubs: Callable[..., Stub]) -> None:
    regions = {
        "us-west-004": stubs(status=301, headers={"x-amz-bucket-region": "us-east-005"}),
        "us-east-005": stubs(status=200),
    }
    backend = b2_backend(regions, "us-west-004")
    assert backend.region == "us-east-005"
    assert backend.endpoint_url == regions["us-east-005"].url
    assert backend.region_verified
    assert backend.exists("some/key")
    assert ("HEAD", "/bkt/some/key") in regions["us-east-005"].requests


def test_b2_403_probes_regions_in_parallel_and_names_the_right_one(
    stubs: Callable[..., Stub],
) -> None:
    regions = {
        "us-west-004": stubs(status=403),
        "us-east-005": stubs(status=200),
        "eu-central-003": stubs(status=404),
        "us-west-002": stubs(status=200, delay=10),  # hangs past the 3 s probe timeout
    }
    started = time.monotonic()
    with pytest.raises(StorageError) as exc:
        b2_backend(regions, "us-west-004")
    elapsed = time.monotonic() - started
    assert "us-east-005" in str(exc.value)
    assert exc.value.error_code is StorageErrorCode.REGION_REDIRECT
    assert elapsed < 8, f"probes were not parallel / bounded: {elapsed:.1f}s"
    assert len(regions["us-west-002"].requests) == 1, "a probe was retried"


def test_b2_403_with_bucket_nowhere_says_so(stubs: Callable[..., Stub]) -> None:
    regions = {"us-west-004": stubs(status=403), "us-east-005": stubs(status=404)}
    with pytest.raises(StorageError) as exc:
        b2_backend(regions, "us-west-004")
    assert "does not exist in any" in str(exc.value)
    # The code comes from the finding, not from the hint's wording: nowhere is not a redirect.
    assert exc.value.error_code is StorageErrorCode.ACCESS_DENIED


def test_permanent_failure_is_remembered(stubs: Callable[..., Stub]) -> None:
    stub = stubs(status=403)
    backend = S3StorageBackend(
        "bkt", endpoint_url=stub.url, access_key_id="a", secret_access_key="b"
    )
    with pytest.raises(StorageError) as first:
        backend.exists("k")
    assert first.value.error_code is StorageErrorCode.ACCESS_DENIED
    assert not first.value.is_retriable
    seen = len(stub.requests)
    with pytest.raises(StorageError):
        backend.put("k", b"x")
    assert len(stub.requests) == seen


def test_transient_failure_is_not_remembered(stubs: Callable[..., Stub]) -> None:
    stub = stubs(status=503)
    backend = S3StorageBackend(
        "bkt",
        endpoint_url=stub.url,
        access_key_id="a",
        secret_access_key="b",
        config=StorageConfig(retries=0),
    )
    with pytest.raises(StorageError) as exc:
        backend.exists("k")
    assert exc.value.is_retriable
    assert not backend.region_verified
    stub.status = 200
    assert backend.exists("k")
    assert backend.region_verified


def test_custom_endpoint_301_names_region_without_guessing_endpoint(
    stubs: Callable[..., Stub],
) -> None:
    stub = stubs(status=301, headers={"x-amz-bucket-region": "eu-west-1"})
    backend = S3StorageBackend(
        "bkt", endpoint_url=stub.url, access_key_id="a", secret_access_key="b", region="us-east-1"
    )
    with pytest.raises(StorageError) as exc:
        backend.exists("k")
    assert "eu-west-1" in str(exc.value)
    assert exc.value.error_code is StorageErrorCode.REGION_REDIRECT
    assert backend.endpoint_url == stub.url


def test_for_backblaze_without_preflight_makes_no_network_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("B2_BUCKET_NAME", "env-bucket")
    monkeypatch.setenv("B2_APPLICATION_KEY_ID", "kid")
    monkeypatch.setenv("B2_APPLICATION_KEY", "secret")
    monkeypatch.delenv("B2_BUCKET", raising=False)
    monkeypatch.delenv("B2_KEY_ID", raising=False)
    monkeypatch.delenv("B2_APP_KEY", raising=False)
    monkeypatch.delenv("B2_REGION", raising=False)

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("network call during construction")

    with (
        mock.patch.object(socket.socket, "connect", no_network),
        mock.patch.object(socket, "create_connection", no_network),
        mock.patch("botocore.endpoint.Endpoint._send", no_network),
        mock.patch("socket.getaddrinfo", no_network),
    ):
        backend = S3StorageBackend.for_backblaze(preflight=False)
        assert backend.bucket == "env-bucket"
        assert backend.region == "us-west-004"
        assert backend.endpoint_url == "https://s3.us-west-004.backblazeb2.com"
        assert backend.get_durable_url("a/b") == (
            "https://s3.us-west-004.backblazeb2.com/env-bucket/a/b"
        )
        assert backend.key_from_url("https://s3.us-east-005.backblazeb2.com/env-bucket/a/b") == (
            "a/b"
        )
        assert backend.key_from_url("https://s3.us-east-005.backblazeb2.com/other/a/b") is None
    assert not backend.region_verified


def test_for_backblaze_env_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "B2_BUCKET",
        "B2_BUCKET_NAME",
        "B2_KEY_ID",
        "B2_APP_KEY",
        "B2_APPLICATION_KEY_ID",
        "B2_APPLICATION_KEY",
        "B2_REGION",
    ):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="bucket"):
        S3StorageBackend.for_backblaze(preflight=False)
    with pytest.raises(ValueError, match="credentials"):
        S3StorageBackend.for_backblaze("b", preflight=False)
    monkeypatch.setenv("B2_KEY_ID", "kid")
    monkeypatch.setenv("B2_APP_KEY", "secret")
    monkeypatch.setenv("B2_REGION", "eu-central-003")
    monkeypatch.setenv("B2_BUCKET", "envb")
    b = S3StorageBackend.for_backblaze(preflight=False)
    assert (b.bucket, b.region) == ("envb", "eu-central-003")
    assert b.endpoint_url == "https://s3.eu-central-003.backblazeb2.com"
    with pytest.raises(ValueError):
        S3StorageBackend.for_backblaze(preflight=False, auto_lifecycle=True)
