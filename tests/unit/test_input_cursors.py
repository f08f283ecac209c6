"""Cursors, ids, labels and dates are parsed at the boundary: a bad one is a 422 naming it.

Rows of issue 21: `GET /v1/jobs?cursor=TmFOfHp6` (base64 of `NaN|zz`) answered 503
`store_unavailable` with Retry-After (Redis refused the NaN score and the store
boundary called it an outage); `GET /v1/jobs/{id}/assets?cursor=%C2%B2` (and
`%E2%91%A0`) answered 500 (`"²".isdigit()` is true, `int("²")` raises); the /ui
routes the same. Run on fakeredis and on the real Redis (where the NaN reached).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import fakeredis
import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from genblaze_s3.api import create_app
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.errors import InvalidListingError
from genblaze_s3.ingest.store.cursors import (
    AssetCursor,
    JobCursor,
    parse_asset_cursor,
    parse_job_cursor,
)
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import MemorySender
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.settings import load_settings

DEST = {"bucket": "media", "endpoint_url": "http://127.0.0.1:8333"}
H = {"Authorization": "Bearer tok-a"}
JOB = "ab" * 16


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


BAD_JOB_CURSORS = [
    "TmFOfHp6",  # base64 of NaN|zz: the row
    _b64(f"1733400000.5|{JOB}"),  # the unversioned form of before: start again
    f"j1.nan_{JOB}",
    f"j1.inf_{JOB}",
    f"j1.-1_{JOB}",
    f"j1.1e400_{JOB}",
    f"j1.100000000000_{JOB}",  # past year 5138
    "j1.1733400000.5_zz",
    f"j1.1733400000.5_{JOB}x",
    f"j1.1733400000.5_{JOB.upper()}",
    "j1.1733400000.5",
    "j1.",
    "a1.5",  # an asset cursor in the job listing
    "nonsense!",
    "%C2%B2",
    "²",
    f"j1.１７_{JOB}",  # fullwidth digits: isdigit() but not ASCII
    "x" * 201,
]
BAD_ASSET_CURSORS = [
    "²",  # "%C2%B2" decoded: isdigit() but not int()
    "①",  # "%E2%91%A0" decoded
    "٣",  # Arabic-Indic three
    "a1.²",
    "-1",
    "1.5",
    "1234567890",
    "a1.x",
    "a1.",
    f"j1.1733400000.5_{JOB}",  # a job cursor in the asset pages
    "x" * 201,
]


@pytest.mark.parametrize("raw", BAD_JOB_CURSORS)
def test_a_bad_job_cursor_is_refused_before_the_store(raw: str) -> None:
    with pytest.raises(InvalidListingError) as info:
        parse_job_cursor(raw)
    assert info.value.code == "invalid_cursor" and info.value.field == "cursor"


@pytest.mark.parametrize("raw", BAD_ASSET_CURSORS)
def test_a_bad_asset_cursor_is_refused_before_the_store(raw: str) -> None:
    with pytest.raises(InvalidListingError):
        parse_asset_cursor(raw)


def test_cursors_round_trip_and_read_the_unversioned_asset_form() -> None:
    c = JobCursor(1733400000.123456, JOB)
    assert c.encode() == f"j1.1733400000.123456_{JOB}" and parse_job_cursor(c.encode()) == c
    assert parse_asset_cursor(AssetCursor(41).encode()) == AssetCursor(41)
    assert parse_asset_cursor("41") == AssetCursor(41)  # handed out before
    assert parse_job_cursor(None) is None and parse_job_cursor("") is None
    assert parse_asset_cursor(None) is None and parse_asset_cursor("") is None


def test_the_document_publishes_the_parsers_own_rules() -> None:
    """A cursor the OpenAPI document calls valid is one the server accepts, and back."""
    import json
    from pathlib import Path

    import genblaze_s3.api
    from genblaze_s3.ingest.store.cursors import ASSET_CURSOR, JOB_CURSOR

    doc = json.loads((Path(genblaze_s3.api.__file__).parent / "openapi.json").read_text())
    params = {
        path: {p["name"]: p["schema"] for p in doc["paths"][path]["get"]["parameters"]}
        for path in ("/v1/jobs", "/v1/jobs/{job_id}/assets")
    }
    assert params["/v1/jobs"]["cursor"]["pattern"] == JOB_CURSOR.pattern
    assert params["/v1/jobs/{job_id}/assets"]["cursor"]["pattern"] == ASSET_CURSOR.pattern


@pytest.fixture(params=["fakeredis", "redis"])
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    if request.param == "fakeredis":
        r: redis.Redis = fakeredis.FakeRedis()
    else:
        r = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    service = IngestService(
        StatusStore(r),
        MemorySender(),
        "q",
        DestinationPolicy.from_settings(
            load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:8333"})
        ),
    )
    app = create_app(service, {"tok-a": "acme"})
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    r.close()


def _job(c: TestClient, n: int = 3) -> str:
    assets = [{"url": f"https://cdn.example.com/{i}.png"} for i in range(n)]
    r = c.post("/v1/jobs", json={"assets": assets, "destination": DEST}, headers=H)
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def _assert_invalid_cursor(r: httpx.Response) -> None:
    body = r.json()
    assert r.status_code == 422, (r.status_code, body)
    assert "retry-after" not in r.headers
    assert body["code"] == "invalid_cursor" and body["status"] == 422
    assert body["errors"] == [{"field": "cursor", "message": body["detail"]}]


@pytest.mark.parametrize("cursor", ["TmFOfHp6", _b64(f"nan|{JOB}"), "a1.NQ"])
def test_job_listing_answers_422_invalid_cursor(client: TestClient, cursor: str) -> None:
    _job(client)
    _assert_invalid_cursor(client.get("/v1/jobs", params={"cursor": cursor}, headers=H))


@pytest.mark.parametrize("cursor", ["%C2%B2", "%E2%91%A0"])
def test_asset_pages_answer_422_invalid_cursor(client: TestClient, cursor: str) -> None:
    job_id = _job(client)
    _assert_invalid_cursor(client.get(f"/v1/jobs/{job_id}/assets?cursor={cursor}", headers=H))


def test_ui_routes_parse_cursors_the_same_way(client: TestClient) -> None:
    job_id = _job(client)
    r = client.post(
        "/ui/login",
        data={"token": "tok-a"},
        headers={"Origin": "http://testserver"},  # as a browser sends: login is Origin-checked
        follow_redirects=False,
    )
    assert r.status_code == 303
    _assert_invalid_cursor(client.get("/ui?cursor=TmFOfHp6"))
    _assert_invalid_cursor(client.get("/ui/jobs.json?cursor=TmFOfHp6"))
    _assert_invalid_cursor(client.get(f"/ui/jobs/{job_id}?cursor=%C2%B2"))
    _assert_invalid_cursor(client.get(f"/ui/jobs/{job_id}?cursor=%E2%91%A0"))
    assert client.get(f"/ui/jobs/{job_id}").status_code == 200


def test_pages_follow_the_cursors_they_hand_out(client: TestClient) -> None:
    ids = {_job(client, n=1) for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        page = client.get("/v1/jobs", params={"limit": 2, "cursor": cursor}, headers=H).json()
        seen += [j["job_id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
        assert cursor.startswith("j1.")
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    job_id = _job(client, n=5)
    assets: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/jobs/{job_id}/assets", params=params, headers=H).json()
        assets += [a["asset_id"] for a in page["assets"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
        assert cursor.startswith("a1.")
    assert len(assets) == len(set(assets)) == 5


def test_a_malformed_job_id_is_a_422_naming_it(client: TestClient) -> None:
    for path in ("/v1/jobs/nope", "/v1/jobs/nope/assets", "/v1/jobs/" + "AB" * 16):
        r = client.get(path, headers=H)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "job_id", r.text
    assert client.get("/v1/jobs/" + JOB, headers=H).json()["code"] == "job_not_found"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("label=%00bad", "label"),
        ("label=k%3Dv%0A", "label"),
        ("created_after=zz", "created_after"),
        ("created_before=2026-13-01", "created_before"),
        ("limit=0", "limit"),
        ("state=lost", "state"),
    ],
)
def test_listing_filters_are_parsed_at_the_boundary(
    client: TestClient, query: str, field: str
) -> None:
    r = client.get(f"/v1/jobs?{query}", headers=H)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text


def test_dates_at_the_ends_of_the_calendar_are_not_a_500(client: TestClient) -> None:
    """`datetime.timestamp()` of a naive year-1 date raised ValueError (a 500)."""
    _job(client)
    for q in (
        "created_after=0001-01-01T00:00:00Z",
        "created_before=9999-12-31T23:59:59Z",
        "created_after=0001-01-01T00:00:00%2B23:59",
        "created_before=9999-12-31T23:59:59-23:59",
        "created_before=9999-12-31T23:59:60.123456789Z",  # a leap second, nanoseconds
    ):
        r = client.get(f"/v1/jobs?{q}", headers=H)
        assert r.status_code == 200, (q, r.text)
    page = client.get("/v1/jobs?created_after=0001-01-01T00:00:00Z", headers=H).json()
    assert len(page["jobs"]) == 1


@pytest.mark.parametrize(
    "value", ["0.5", "1733400000", "2026-01-31", "2026-01-31T12:00:00", "2026-02-30T00:00:00Z"]
)
def test_a_date_is_rfc3339_as_documented(client: TestClient, value: str) -> None:
    """Not epoch seconds, not a bare date, not without a zone: what `format: date-time` says."""
    r = client.get("/v1/jobs", params={"created_after": value}, headers=H)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "created_after", r.text
