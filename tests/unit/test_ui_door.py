"""/ui goes through the API's one door (issue 21, item 3): rate-limited like /v1 per
address for failures and per token for use, server-side sessions revoked on sign-out,
Origin-checked sign-in (login CSRF), nosniff static files."""

from __future__ import annotations

import fakeredis
from fastapi.testclient import TestClient

from genblaze_s3.api import create_app
from genblaze_s3.api.guard import UI_COOKIE
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.sessions import SessionStore, session_digest
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import MemorySender
from genblaze_s3.ingest.submit.service import IngestService

ORIGIN = {"Origin": "http://testserver"}


def _app(rate: tuple[float, float] | None = None) -> tuple[TestClient, fakeredis.FakeRedis]:
    redis = fakeredis.FakeRedis()
    service = IngestService(StatusStore(redis), MemorySender(), "q", DestinationPolicy())
    app = create_app(service, {"tok-a": "acme"}, rate_limit=rate)
    return TestClient(app, headers=ORIGIN), redis


def _sign_in(c: TestClient, token: str = "tok-a") -> str:
    r = c.post("/ui/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui", r.text
    return str(r.cookies[UI_COOKIE])


def test_wrong_cookies_use_up_the_address_allowance_and_get_429() -> None:
    c, _ = _app((5, 60))
    c.cookies.set(UI_COOKIE, "not-a-session", path="/ui")
    codes = [c.get("/ui", follow_redirects=False).status_code for _ in range(12)]
    assert codes[:5] == [303] * 5  # to the sign-in page
    assert set(codes[5:]) == {429}, codes
    r = c.get("/ui/jobs.json")
    assert r.status_code == 429 and r.headers["retry-after"]
    # The same address guessing API tokens is out of allowance too: one door.
    assert c.get("/v1/jobs", headers={"Authorization": "Bearer guess"}).status_code == 429


def test_a_signed_in_page_is_limited_like_the_api_token_it_was_opened_with() -> None:
    c, _ = _app((5, 60))
    _sign_in(c)  # sign-in spends one of the token's 5
    codes = [c.get("/ui/jobs.json").status_code for _ in range(12)]
    assert codes[:4] == [200] * 4 and set(codes[4:]) == {429}, codes
    # The page and the API share the token's bucket.
    api = c.get("/v1/jobs", headers={"Authorization": "Bearer tok-a"})
    assert api.status_code == 429


def test_the_cookie_is_an_opaque_session_not_the_token_and_sign_out_revokes_it() -> None:
    c, redis = _app()
    sid = _sign_in(c)
    assert "tok-a" not in sid and len(sid) >= 40
    # The store keeps a digest of the id, never the id or the token.
    key = keys.ui_session_key(session_digest(sid))
    stored = {k.decode(): v.decode() for k, v in redis.hgetall(key).items()}
    assert stored["kind"] == "tenant" and stored["name"] == "acme"
    assert "tok-a" not in str(stored) and sid not in str(stored)
    assert 0 < redis.ttl(key) <= 12 * 3600
    # The raw token in the cookie (the old scheme) opens nothing.
    raw = TestClient(c.app, headers=ORIGIN)
    raw.cookies.set(UI_COOKIE, "tok-a", path="/ui")
    assert raw.get("/ui", follow_redirects=False).headers["location"] == "/ui/login"
    # Sign out, then replay the old cookie: refused.
    page = c.get("/ui").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    out = c.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and not redis.exists(key)
    replay = TestClient(c.app, headers=ORIGIN)
    replay.cookies.set(UI_COOKIE, sid, path="/ui")
    assert replay.get("/ui", follow_redirects=False).status_code == 303
    assert replay.get("/ui/jobs.json").status_code == 401


def test_an_expired_session_is_refused() -> None:
    redis = fakeredis.FakeRedis()
    sessions = SessionStore(redis)
    sid, _ = sessions.create("tenant", "acme", "00" * 32)
    assert sessions.get(sid) is not None
    redis.hset(keys.ui_session_key(session_digest(sid)), "expires_at", "1.0")
    assert sessions.get(sid) is None
    assert sessions.get("x" * 500) is None and sessions.get("") is None


def test_cross_site_sign_in_is_refused_login_csrf() -> None:
    c, redis = _app()
    for headers in (
        {"Origin": "https://attacker.example"},
        {"Origin": "null"},
        {"Origin": "", "Referer": "https://attacker.example/form"},
    ):
        r = c.post("/ui/login", data={"token": "tok-a"}, headers=headers, follow_redirects=False)
        assert r.status_code == 403, headers
        assert UI_COOKIE not in r.cookies
    bare = TestClient(c.app)  # no Origin nor Referer at all: refused too (fail closed)
    assert bare.post("/ui/login", data={"token": "tok-a"}).status_code == 403
    assert not list(redis.scan_iter(keys.ui_session_key("*")))
    # Same origin by Referer alone is accepted (older browsers).
    ok = bare.post(
        "/ui/login",
        data={"token": "tok-a"},
        headers={"Referer": "http://testserver/ui/login"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and UI_COOKIE in ok.cookies


def test_static_files_carry_nosniff() -> None:
    c, _ = _app()
    for name in ("jobs.js", "job.js", "fleet.js", "ui.css"):
        r = c.get(f"/ui/static/{name}")
        assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
