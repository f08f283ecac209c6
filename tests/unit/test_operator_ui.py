"""The /ui page in-process: sign-in, CSRF, escaping, tenant isolation (the browser
flow itself runs in Chromium: tests/integration/test_operator_ui.py)."""

from __future__ import annotations

import re

import fakeredis
from fastapi.testclient import TestClient

from genblaze_s3.api import create_app
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import MemorySender
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.settings import load_settings

POLICY = {"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:8333"}


def _client() -> TestClient:
    service = IngestService(
        StatusStore(fakeredis.FakeRedis()),
        MemorySender(),
        "q",
        DestinationPolicy.from_settings(load_settings(POLICY)),
    )
    app = create_app(service, {"tok-a": "acme", "tok-b": "globex"})
    return TestClient(app, headers={"Origin": "http://testserver"})  # as a browser sends


def _sign_in(c: TestClient, token: str) -> str:
    r = c.post("/ui/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
    page = c.get("/ui").text
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]


def test_ui_signs_in_submits_escapes_and_keeps_tenants_apart() -> None:
    c = _client()
    assert c.get("/ui", follow_redirects=False).headers["location"] == "/ui/login"
    bad = c.post("/ui/login", data={"token": "nope"}, follow_redirects=False)
    assert "error=" in bad.headers["location"]
    csrf = _sign_in(c, "tok-a")
    form = {
        "urls": "https://cdn.x/a.png\nhttps://cdn.x/<script>alert(1)</script>.png",
        "bucket": "media",
        "endpoint_url": "http://127.0.0.1:8333",
        "labels": 'team=<b onmouseover="x">',
    }
    assert c.post("/ui/jobs", data={**form, "csrf": "forged"}).status_code == 403
    r = c.post("/ui/jobs", data={**form, "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    job_url = r.headers["location"]
    page = c.get(job_url)
    assert page.status_code == 200 and "content-security-policy" in page.headers
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    assert '<b onmouseover="x">' not in c.get("/ui").text
    c.cookies.clear()
    _sign_in(c, "tok-b")
    assert c.get(job_url).status_code == 404  # another tenant's job: not found
    assert c.get(f"{job_url}/events").status_code == 404
    assert job_url.rsplit("/", 1)[-1] not in c.get("/ui").text
