"""The API in-process (TestClient) on fakeredis with an in-memory sender."""

from __future__ import annotations

import fakeredis
import pytest
import redis
from fastapi.testclient import TestClient

from genblaze_s3.api import create_app
from genblaze_s3.api.ratelimit import RateLimiter
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import FINALIZE_JOB, INGEST_ASSETS, MemorySender
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.ingest.tenants import TenantRegistry
from genblaze_s3.settings import load_settings

TOKENS = {"tok-a": "acme", "tok-b": "globex"}
DEST = {"bucket": "media", "endpoint_url": "http://127.0.0.1:8333"}


@pytest.fixture
def sender() -> MemorySender:
    return MemorySender()


@pytest.fixture
def client(sender: MemorySender) -> TestClient:
    store = StatusStore(fakeredis.FakeRedis())
    policy = DestinationPolicy.from_settings(
        load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:8333"})
    )
    return TestClient(create_app(IngestService(store, sender, "q", policy), TOKENS))


def _h(tok: str = "tok-a") -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def test_submit_enqueues_a_small_job_as_one_task(client: TestClient, sender: MemorySender) -> None:
    body = {
        "assets": [{"url": "https://cdn.x/a.png"}, {"url": "https://cdn.x/b.mp4"}],
        "destination": DEST,
    }
    r = client.post("/v1/jobs", json=body, headers=_h())
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    assert [(n, a[0], len(a[1]), q) for n, a, q in sender.sent] == [(INGEST_ASSETS, job_id, 2, "q")]
    doc = client.get(f"/v1/jobs/{job_id}", headers=_h()).json()
    assert doc["state"] == "queued" and doc["progress"]["assets_total"] == 2


def test_a_run_json_is_accepted(client: TestClient) -> None:
    from tests.unit.ingest_fixtures import make_manifest

    run = make_manifest(["https://cdn.x/a.png"]).run.model_dump(mode="json")
    r = client.post("/v1/jobs", json={"run": run, "destination": DEST}, headers=_h())
    assert r.status_code == 202
    assert (
        client.get(f"/v1/jobs/{r.json()['job_id']}", headers=_h()).json()["run_id"] == run["run_id"]
    )


def test_empty_run_goes_straight_to_finalize(client: TestClient, sender: MemorySender) -> None:
    from genblaze_core.models.run import Run

    run = Run(name="empty").model_dump(mode="json")
    r = client.post("/v1/jobs", json={"run": run, "destination": DEST}, headers=_h())
    assert r.status_code == 202 and sender.sent[0][0] == FINALIZE_JOB


def test_auth_and_tenant_isolation(client: TestClient) -> None:
    body = {"assets": [{"url": "https://cdn.x/a.png"}], "destination": DEST}
    job_id = client.post("/v1/jobs", json=body, headers=_h()).json()["job_id"]
    assert client.get(f"/v1/jobs/{job_id}", headers=_h("tok-b")).status_code == 404
    r = client.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/v1/jobs", json=body).status_code == 401


def test_cancel_then_cancel_again(client: TestClient) -> None:
    body = {"assets": [{"url": "https://cdn.x/a.png"}], "destination": DEST}
    job_id = client.post("/v1/jobs", json=body, headers=_h()).json()["job_id"]
    r = client.delete(f"/v1/jobs/{job_id}", headers=_h())
    assert r.status_code == 200 and r.json()["state"] == "canceled"
    assert client.delete(f"/v1/jobs/{job_id}", headers=_h()).status_code == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {
                "assets": [{"url": "https://cdn.x/a"}],
                "destination": {**DEST, "endpoint_url": "http://evil:1"},
            },
            "destination_not_allowed",
        ),
        ({"assets": [{"url": "gopher://x/"}], "destination": DEST}, "invalid_job"),
        ({"destination": DEST}, "invalid_job"),
        (  # genblaze-core's Asset rejects it: a 422, not a 500 (found by the API fuzzer)
            {"assets": [{"url": "https://cdn.x/a", "media_type": "t"}], "destination": DEST},
            "invalid_job",
        ),
        (
            {
                "assets": [{"url": "https://cdn.x/a"}],
                "destination": DEST,
                "notify_url": "file:///x",
            },
            "invalid_job",
        ),
    ],
)
def test_invalid_input_is_422_with_a_code(client: TestClient, body: dict, code: str) -> None:
    r = client.post("/v1/jobs", json=body, headers=_h())
    assert r.status_code == 422 and r.json()["code"] == code


def test_schema_errors_are_422(client: TestClient) -> None:
    r = client.post("/v1/jobs", json={"assets": "nope", "destination": DEST}, headers=_h())
    assert r.status_code == 422


def test_store_down_is_503_not_500(sender: MemorySender) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    app = create_app(IngestService(StatusStore(dead), sender, "q", DestinationPolicy()), TOKENS)
    c = TestClient(app, raise_server_exceptions=False)
    r = c.get("/v1/jobs/" + "ab" * 16, headers=_h())
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "status store unavailable",
        "code": "store_unavailable",
    }
    body = {"assets": [{"url": "https://cdn.x/a.png"}], "destination": {"bucket": "media"}}
    assert c.post("/v1/jobs", json=body, headers=_h()).status_code == 503
    assert c.get("/healthz").status_code == 503


def test_every_mapped_error_answers_its_code_and_status() -> None:
    """The one table (api/errors.py): each library error, its status and stable code."""
    from fastapi import FastAPI

    from genblaze_s3.api.errors import ERROR_RESPONSES, install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise/{name}")
    def raise_(name: str) -> None:
        cls = next(c for c in ERROR_RESPONSES if c.__name__ == name)
        raise cls("https://cdn.x/a.png?sig=SECRET")

    c = TestClient(app)
    for cls, how in ERROR_RESPONSES.items():
        r = c.get(f"/raise/{cls.__name__}")
        assert r.status_code == how.status and r.json()["code"] == cls.code
        assert ("Retry-After" in r.headers) == how.retry_after
        if how.detail is not None:  # infrastructure errors never echo their text
            assert "SECRET" not in r.text


def test_openapi_document_in_repo_is_current(client: TestClient) -> None:
    import json
    from pathlib import Path

    import genblaze_s3.api

    saved = json.loads((Path(genblaze_s3.api.__file__).parent / "openapi.json").read_text())
    assert saved == client.get("/openapi.json").json(), (
        "regenerate: python -m genblaze_s3.api > genblaze_s3/api/openapi.json"
    )


def test_token_parsing_and_lookup() -> None:
    reg = TenantRegistry.from_api_tokens("acme:t1, globex:t2,")
    assert sorted(reg.tenants) == ["acme", "globex"]
    assert reg.authenticate("Bearer t2").name == "globex"  # type: ignore[union-attr]
    assert reg.authenticate("Bearer t3") is None and reg.authenticate(None) is None
    with pytest.raises(ValueError):
        TenantRegistry.from_api_tokens("broken")


def test_cached_document_follows_every_write(client: TestClient) -> None:
    body = {"assets": [{"url": "https://cdn.x/a.png"}], "destination": DEST}
    job_id = client.post("/v1/jobs", json=body, headers=_h()).json()["job_id"]
    first = client.get(f"/v1/jobs/{job_id}", headers=_h()).json()
    assert client.get(f"/v1/jobs/{job_id}", headers=_h()).json() == first
    client.delete(f"/v1/jobs/{job_id}", headers=_h())
    assert client.get(f"/v1/jobs/{job_id}", headers=_h()).json()["state"] == "canceled"


def _tenant_client(spec: dict, sender: MemorySender) -> TestClient:
    store = StatusStore(fakeredis.FakeRedis())
    policy = DestinationPolicy.from_settings(
        load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:8333"})
    )
    service = IngestService(
        store, sender, "q", policy, tenants=TenantRegistry.from_mapping({"tenants": spec})
    )
    client = TestClient(create_app(service, max_body_bytes=4096))
    client.store = store  # type: ignore[attr-defined]
    return client


def test_concurrent_job_limit_answers_429_until_a_job_ends(sender: MemorySender) -> None:
    c = _tenant_client({"acme": {"tokens": ["tok-a"], "max_concurrent_jobs": 2}}, sender)
    body = {"assets": [{"url": "https://cdn.x/a.png"}], "destination": DEST}
    ids = [c.post("/v1/jobs", json=body, headers=_h()).json()["job_id"] for _ in range(2)]
    third = c.post("/v1/jobs", json=body, headers=_h())
    assert third.status_code == 429 and third.json()["code"] == "too_many_jobs"
    assert third.headers["retry-after"]
    assert c.delete(f"/v1/jobs/{ids[0]}", headers=_h()).status_code == 200  # canceled: over
    assert c.post("/v1/jobs", json=body, headers=_h()).status_code == 202


def test_submit_places_the_prefix_under_the_tenants_root(sender: MemorySender) -> None:
    c = _tenant_client({"acme": {"tokens": ["tok-a"], "prefix_root": "customers/acme"}}, sender)
    body = {"assets": [{"url": "https://cdn.x/a.png"}], "destination": {**DEST, "prefix": "p"}}
    r = c.post("/v1/jobs", json=body, headers=_h())
    assert r.status_code == 202
    meta = c.store.get_meta(r.json()["job_id"])  # type: ignore[attr-defined]
    assert meta is not None and meta.destination.prefix == "customers/acme/p"


def test_body_limit_and_auth_happen_before_the_body_is_used(sender: MemorySender) -> None:
    c = _tenant_client({"acme": {"tokens": ["tok-a"]}}, sender)
    big = {"assets": [{"url": "https://cdn.x/" + "a" * 5000}], "destination": DEST}
    assert c.post("/v1/jobs", json=big).status_code == 401
    r = c.post("/v1/jobs", json=big, headers=_h())
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"
    assert sender.sent == []


def test_rate_limit_serves_again_after_the_retry_after_it_answered(sender: MemorySender) -> None:
    """The Retry-After contract on an injected clock: 429 until exactly that wait has
    passed, per token and per address (failed authentications), no sleeping."""
    now = [1000.0]
    store = StatusStore(fakeredis.FakeRedis())
    app = create_app(IngestService(store, sender, "q", DestinationPolicy()), TOKENS)
    # 2 requests per 4 s: the wait after a burst (2 s) shows in Retry-After as is.
    app.state.gate.limiter = RateLimiter(2, 4, clock=lambda: now[0])
    client = TestClient(app)
    url = f"/v1/jobs/{'e' * 32}"
    for headers, served in ((_h("tok-a"), 404), ({"Authorization": "Bearer guess"}, 401)):
        assert [client.get(url, headers=headers).status_code for _ in range(2)] == [served] * 2
        limited = client.get(url, headers=headers)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
        now[0] += 1.5  # not yet
        assert client.get(url, headers=headers).status_code == 429
        now[0] += 0.5  # Retry-After seconds after the refusal
        assert client.get(url, headers=headers).status_code == served
    assert client.get(url, headers=_h("tok-b")).status_code == 404  # its own bucket
