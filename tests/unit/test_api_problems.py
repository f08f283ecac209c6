"""One error body for every 4xx/5xx, whoever answers: a route, the body guard, FastAPI's
validation, Starlette's router, an unexpected exception (issue 21: a bad cursor's 422 had
`detail` a string where the document said an array; 400 and 413 were undocumented)."""

from __future__ import annotations

import fakeredis
import httpx
import pytest
from fastapi.testclient import TestClient

from genblaze_s3.api import create_app
from genblaze_s3.api.problems import PROBLEM_MEDIA_TYPE
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import MemorySender
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.settings import load_settings

H = {"Authorization": "Bearer tok-a"}
KEYS = {"type", "title", "status", "detail", "code"}


@pytest.fixture
def client() -> TestClient:
    service = IngestService(
        StatusStore(fakeredis.FakeRedis()),
        MemorySender(),
        "q",
        DestinationPolicy.from_settings(
            load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:8333"})
        ),
    )
    app = create_app(service, {"tok-a": "acme"}, max_body_bytes=1024)

    @app.get("/v1/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("a bug, with a secret: sig=SECRET")

    return TestClient(app, raise_server_exceptions=False)


def _problem(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_MEDIA_TYPE, r.headers
    body = r.json()
    assert set(body) >= KEYS and body["status"] == status and body["code"] == code, body
    assert body["type"] == "about:blank" and isinstance(body["detail"], str)
    return dict(body)


def test_every_kind_of_error_has_the_problem_shape(client: TestClient) -> None:
    r = client.get("/v1/jobs")
    _problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")
    _problem(client.get("/v1/nowhere", headers=H), 404, "not_found")
    _problem(client.get("/v1/jobs/" + "ab" * 16, headers=H), 404, "job_not_found")
    body = _problem(client.get("/v1/jobs?limit=0", headers=H), 422, "invalid_request")
    assert body["errors"] == [
        {"field": "limit", "message": "Input should be greater than or equal to 1"}
    ]
    r = client.post("/v1/jobs", content=b"\x80", headers={**H, "content-type": "application/json"})
    _problem(r, 400, "invalid_body")
    r = client.post(
        "/v1/jobs", content=b"x" * 2048, headers={**H, "content-type": "application/json"}
    )
    _problem(r, 413, "body_too_large")
    r = client.get("/v1/boom", headers=H)
    _problem(r, 500, "internal_error")
    assert "SECRET" not in r.text


def test_405_names_every_method_of_the_path(client: TestClient) -> None:
    """Starlette named only the first route's method (`GET /v1/jobs` and `POST /v1/jobs`
    are two routes), so `Allow` said POST where GET works too."""
    r = client.request("PATCH", "/v1/jobs", headers=H)
    _problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, POST"
    r = client.request("PUT", "/v1/jobs/" + "ab" * 16, headers=H)
    assert r.headers["allow"] == "DELETE, GET"


def test_the_document_declares_each_status_with_the_problem_body(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    submit = doc["paths"]["/v1/jobs"]["post"]["responses"]
    assert sorted(submit) == ["202", "400", "401", "409", "413", "422", "429", "503"]
    for status, response in submit.items():
        if status.startswith(("4", "5")):
            assert list(response["content"]) == [PROBLEM_MEDIA_TYPE], status
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["paths"]["/v1/jobs"]["get"]["security"] == [{"bearer": []}]
    assert "Retry-After" in submit["503"]["headers"]
