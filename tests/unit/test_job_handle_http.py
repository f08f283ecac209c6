"""`job_handle(api_url=..., token=...)` reads through the one HTTP client: its errors are the
typed API errors (a 404 is a JobNotFoundError, a 401 an UnauthorizedError), not raw httpx."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from genblaze_s3.ingest import job_handle
from genblaze_s3.ingest.client.http import JobNotFoundAPIError, UnauthorizedError
from genblaze_s3.ingest.errors import JobNotFoundError
from tests.support.helpers import serve_http


class _API(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.headers.get("Authorization") != "Bearer good":
            status, body = 401, b'{"detail":"invalid token","code":"unauthorized"}'
        else:
            status, body = 404, b'{"detail":"job not found","code":"job_not_found"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api_url() -> Iterator[str]:
    with serve_http(_API) as url:
        yield url


def test_an_http_handle_raises_the_typed_api_errors(api_url: str) -> None:
    with pytest.raises(JobNotFoundAPIError) as info:
        job_handle("j-1", api_url=api_url, token="good").status()
    assert isinstance(info.value, JobNotFoundError) and info.value.status == 404
    with pytest.raises(UnauthorizedError):
        job_handle("j-1", api_url=api_url, token="bad").wait(timeout=1)
