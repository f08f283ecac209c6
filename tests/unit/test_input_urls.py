"""One URL parser for every URL a client gives: a typed value or a refusal that says why.

Rows of issue 21: `submit 'http://[::1'` answered 500 (urlsplit's ValueError
escaped), `submit https://` was refused for the wrong reason ("must be http(s)").
Each URL a client can send (asset, retry replacement, notify_url, refresh_url,
endpoint_url) goes through `transfer.urls.parse_web_url` and a refusal names
the request field.
"""

from __future__ import annotations

import fakeredis
import pytest
from fastapi.testclient import TestClient

from genblaze_s3.api import create_app
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.models import AssetState, DestinationSpec
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import MemorySender
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.settings import load_settings
from genblaze_s3.transfer.config import FetchPolicy
from genblaze_s3.transfer.errors import InvalidURL, URLBlocked
from genblaze_s3.transfer.urlguard import validate_url
from genblaze_s3.transfer.urls import parse_web_url

DEST = {"bucket": "media", "endpoint_url": "http://127.0.0.1:8333"}
H = {"Authorization": "Bearer tok-a"}

REFUSED = [
    ("http://[::1", "has an invalid IPv6 address in brackets"),
    ("https://[not-an-ip]/a", "has an invalid IPv6 address in brackets"),
    ("https://", "has no host"),
    ("https:///path", "has no host"),
    ("https://.", "has no host"),
    ("cdn.example.com/a.png", "has no scheme (it must start with https:// or http://)"),
    ("ftp://cdn.example.com/a", "must be http(s), not 'ftp'"),
    ("file:///etc/passwd", "must be http(s), not 'file'"),
    ("https://cdn.example.com:99999/a", "has an invalid port"),
    ("https://cdn.example.com:0/a", "has an invalid port"),
    ("https://cdn.example.com:8333.evil/a", "has an invalid port"),
    ("https://u:p@cdn.example.com/a", "must not carry credentials (user:password@)"),
    ("https://cdn.example.com@evil.example/a", "must not carry credentials (user:password@)"),
    ("https://cdn.example.com/a b", "contains spaces, control characters or backslashes"),
    ("https://cdn.example.com\\@evil/", "contains spaces, control characters or backslashes"),
    ("https://cdn.example.com/\x00", "contains spaces, control characters or backslashes"),
    ("", "is empty"),
    ("https://cdn.example.com/" + "a" * 8200, "is longer than 8192 characters"),
    ("https://" + "é" * 64 + ".example/a", "has a host that is not a valid domain name"),
]


@pytest.mark.parametrize(
    ("url", "reason"), REFUSED, ids=[r[1][:30] + "-" + r[0][:20] for r in REFUSED]
)
def test_parser_refuses_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(InvalidURL) as info:
        parse_web_url(url)
    assert info.value.reason == reason
    assert str(info.value) == f"URL {reason}"


def test_parser_gives_typed_pieces() -> None:
    u = parse_web_url("HTTPS://CDN.Example.com.:8443/a/b.png?sig=x#frag")
    assert (u.scheme, u.host, u.port, u.explicit_port) == ("https", "cdn.example.com", 8443, True)
    assert (u.path, u.query, u.fragment, u.target) == (
        "/a/b.png",
        "sig=x",
        "frag",
        "/a/b.png?sig=x",
    )
    v6 = parse_web_url("http://[::1]/x")
    assert v6.host == "::1" and v6.port == 80 and v6.literal_ip is not None
    assert str(parse_web_url("http://2130706433/").literal_ip) == "127.0.0.1"
    assert parse_web_url("https://bücher.example/").host == "xn--bcher-kva.example"


def test_ssrf_guard_starts_from_the_same_parse() -> None:
    """The fetcher's guard refuses exactly the shapes submit refuses, with the same words."""
    policy = FetchPolicy(allow_http=True)
    for url, reason in REFUSED:
        with pytest.raises(InvalidURL) as info:
            validate_url(url, policy)
        assert info.value.reason == reason
    with pytest.raises(URLBlocked):
        validate_url("http://cdn.example.com/a", FetchPolicy())


def test_endpoint_rules_use_the_parser() -> None:
    with pytest.raises(ValueError, match="endpoint_url has an invalid IPv6 address"):
        DestinationSpec(bucket="media", endpoint_url="http://[::1")
    with pytest.raises(ValueError, match="endpoint_url has no host"):
        DestinationSpec(bucket="media", endpoint_url="https://")
    with pytest.raises(ValueError, match="without path or query"):
        DestinationSpec(bucket="media", endpoint_url="https://s3.example.com/b")
    assert DestinationSpec(bucket="media", endpoint_url="https://s3.example.com/").endpoint_url == (
        "https://s3.example.com"
    )


@pytest.fixture
def client() -> TestClient:
    store = StatusStore(fakeredis.FakeRedis())
    policy = DestinationPolicy.from_settings(
        load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:8333"})
    )
    service = IngestService(store, MemorySender(), "q", policy)
    return TestClient(create_app(service, {"tok-a": "acme"}), raise_server_exceptions=False)


def _submit(client: TestClient, **body: object) -> tuple[int, dict[str, object]]:
    r = client.post("/v1/jobs", json={"destination": DEST, **body}, headers=H)
    return r.status_code, r.json()


@pytest.mark.parametrize(
    ("url", "reason"),
    [("http://[::1", "has an invalid IPv6 address in brackets"), ("https://", "has no host")],
)
def test_submit_refuses_a_malformed_asset_url_with_422_naming_it(
    client: TestClient, url: str, reason: str
) -> None:
    ok = {"url": "https://cdn.example.com/a.png"}
    status, body = _submit(client, assets=[ok, {"url": url}])
    assert status == 422, body
    assert body["code"] == "invalid_job"
    assert body["detail"] == f"assets.1.url {reason}"
    assert body["errors"] == [{"field": "assets.1.url", "message": f"assets.1.url {reason}"}]


def test_a_run_source_is_named_by_its_place_in_the_run(client: TestClient) -> None:
    from tests.unit.ingest_fixtures import make_manifest

    run = make_manifest(["https://cdn.example.com/a.png", "http://[::1"]).run
    status, body = _submit(client, run=run.model_dump(mode="json"))
    assert status == 422 and body["errors"][0]["field"] == "run.steps.0.assets.1.url", body


@pytest.mark.parametrize("field", ["notify_url", "refresh_url"])
@pytest.mark.parametrize(
    ("url", "reason"),
    [("http://[::1", "has an invalid IPv6 address in brackets"), ("https://", "has no host")],
)
def test_callback_urls_go_through_the_same_parser(
    client: TestClient, field: str, url: str, reason: str
) -> None:
    status, body = _submit(client, assets=[{"url": "https://cdn.example.com/a"}], **{field: url})
    assert status == 422, body
    assert body["detail"] == f"{field} {reason}" and body["errors"][0]["field"] == field


def test_retry_replacement_url_is_parsed_before_anything_else(client: TestClient) -> None:
    status, job = _submit(client, assets=[{"url": "https://cdn.example.com/a"}])
    assert status == 202
    job_id = str(job["job_id"])
    r = client.post(
        f"/v1/jobs/{job_id}/retry",
        json={"replacements": [{"asset_id": "x", "url": "http://[::1"}]},
        headers=H,
    )
    # Malformed input is a 422 naming it, whatever the job's state (queued: 409 otherwise).
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "replacements.0.url"


def test_retry_service_names_the_replaced_asset() -> None:
    """The Python path (IngestService.retry) refuses with the same parser and field."""
    from genblaze_s3.ingest.errors import InvalidJobError
    from genblaze_s3.ingest.submit.retry import Replacement
    from genblaze_s3.ingest.submit.submission import build_submission
    from tests.unit.ingest_fixtures import make_manifest

    store = StatusStore(fakeredis.FakeRedis())
    policy = DestinationPolicy.from_settings(
        load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:8333"})
    )
    service = IngestService(store, MemorySender(), "q", policy)
    sub = build_submission(
        make_manifest(["https://cdn.example.com/a"]),
        DestinationSpec.model_validate(DEST),
        tenant="default",
    )
    job_id, _ = service.submit(sub)
    service.cancel(job_id)
    aid = sub.meta.asset_ids[0]
    assert store.asset_ids_in(job_id, AssetState.QUEUED) == [aid]  # never sent: retried too
    with pytest.raises(InvalidJobError) as info:
        service.retry(job_id, {aid: Replacement("https://")})
    assert info.value.field == f"replacements.{aid}.url"
    assert str(info.value) == f"replacements.{aid}.url has no host"
