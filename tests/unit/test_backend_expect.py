"""Small PUT bodies go without ``Expect: 100-continue``; large ones keep it."""

from __future__ import annotations

import http.server
from collections.abc import Iterator

import pytest

from genblaze_s3 import S3StorageBackend
from genblaze_s3.backend.client import EXPECT_MIN_BODY
from tests.support.helpers import serve_http


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # so the stdlib answers Expect with 100 Continue
    seen: list[tuple[str, str | None]] = []

    def do_PUT(self) -> None:  # noqa: N802 - stdlib naming
        self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.path, self.headers.get("Expect")))
        self.send_response(200)
        self.send_header("ETag", '"0"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    with serve_http(_Recorder) as url:
        yield url


def test_expect_100_continue_only_for_large_bodies(endpoint: str) -> None:
    _Recorder.seen = []
    backend = S3StorageBackend(
        "bkt",
        endpoint_url=endpoint,
        access_key_id="k",
        secret_access_key="s",
        region="us-east-1",
        preflight=False,
    )
    client = backend.client
    client.put_object(Bucket="bkt", Key="small", Body=b"x" * 65536)
    client.upload_part(Bucket="bkt", Key="part", UploadId="u", PartNumber=1, Body=b"x" * 1000)
    client.put_object(Bucket="bkt", Key="large", Body=b"x" * EXPECT_MIN_BODY)
    assert _Recorder.seen == [
        ("/bkt/small", None),
        ("/bkt/part?uploadId=u&partNumber=1", None),
        ("/bkt/large", "100-continue"),
    ]
