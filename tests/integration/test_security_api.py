"""API and secrets rows: auth, tenant isolation, unguessable ids, rate limit, canaries.

The API and the workers run from the Procfile (real sockets, their own Redis);
each row ends with the shared invariants (tests/support/invariants.py).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from cryptography.fernet import Fernet

from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.helpers import wait_for
from tests.support.invariants import (
    Services,
    assert_invariants,
    redis_dump_texts,
    wait_terminal,
)
from tests.support.workers import QueueStack, StartStack

CANARY = "CANARYs3cr3tZq7"
RATE = 40  # requests per second per token in this stack


@pytest.fixture(scope="module")
def sec_stack(start_module_stack: StartStack) -> QueueStack:
    return start_module_stack(
        queue="genblaze-sec",
        n_workers=1,
        concurrency=2,
        extra_env={
            "GENBLAZE_MAX_RETRIES": "0",
            "GENBLAZE_API_RATE_LIMIT": f"{RATE}/1",
            # the documented production setting: raw source URLs sealed in Redis
            "GENBLAZE_SOURCE_KEY": Fernet.generate_key().decode(),
            "GENBLAZE_SOURCE_READ_TIMEOUT": "5",
        },
    )


@pytest.fixture
def svc(sec_stack: QueueStack, s3_client: object) -> Services:
    return Services(redis_url=sec_stack.redis_url, s3=s3_client)


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _body(seaweed: SeaweedS3, bucket: str, urls: list[str]) -> dict:
    return {
        "assets": [{"url": u} for u in urls],
        "destination": {"bucket": bucket, "endpoint_url": seaweed.endpoint_url},
    }


def _submit(
    stack: QueueStack, seaweed: SeaweedS3, bucket: str, urls: list[str], token: str | None = None
) -> httpx.Response:
    return httpx.post(
        f"{stack.api_url}/v1/jobs",
        json=_body(seaweed, bucket, urls),
        headers=_h(token or stack.tokens["acme"]),
        timeout=10,
    )


def _get(stack: QueueStack, job_id: str, token: str) -> httpx.Response:
    return httpx.get(f"{stack.api_url}/v1/jobs/{job_id}", headers=_h(token), timeout=10)


# -- authentication ---------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer  x"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic YWNtZTp0b2stYWNtZQ=="},
        {"Authorization": "tok-acme"},
        {"Authorization": "Bearer tok-acme2"},
        {"Authorization": "Bearer tok-acm"},
    ],
)
def test_missing_or_wrong_token_is_401_with_bearer_challenge(
    sec_stack: QueueStack,
    seaweed: SeaweedS3,
    bucket: str,
    headers: dict[str, str],
) -> None:
    api = sec_stack.api_url
    job_path = f"/v1/jobs/{'a' * 32}"
    for method, path, kw in (
        ("GET", job_path, {}),
        ("DELETE", job_path, {}),
        ("GET", f"{job_path}/events", {}),
        ("POST", "/v1/jobs", {"json": _body(seaweed, bucket, ["http://x/a"])}),
    ):
        r = httpx.request(method, api + path, headers=headers, timeout=10, **kw)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer"), r.headers
        assert "tok-" not in r.text


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every configured token goes through hmac.compare_digest: no early exit, no `==`."""
    import hmac

    from genblaze_s3.ingest import tenants

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tenants.hmac, "compare_digest", spy)
    reg = tenants.TenantRegistry.from_api_tokens(",".join(f"t{i}:tok-{i}" for i in range(5)))
    assert reg.authenticate("Bearer tok-0").name == "t0"  # type: ignore[union-attr]
    assert len(calls) == 5, "comparison stopped at the first match"
    calls.clear()
    assert reg.authenticate("Bearer nope") is None
    assert len(calls) == 5


# -- tenant isolation and ids ---------------------------------------------------------
def test_other_tenants_job_is_404_exactly_like_an_unknown_id(
    sec_stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    svc: Services,
) -> None:
    url = cdn.add("/iso.png", os.urandom(5000), content_type="image/png")
    r = _submit(sec_stack, seaweed, bucket, [url])
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    acme, globex = sec_stack.tokens["acme"], sec_stack.tokens["globex"]
    api = sec_stack.api_url
    assert _get(sec_stack, job_id, acme).status_code == 200
    unknown = "f" * 32
    for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/events")):
        theirs = httpx.request(method, f"{api}/v1/jobs/{job_id}{suffix}", headers=_h(globex))
        nobody = httpx.request(method, f"{api}/v1/jobs/{unknown}{suffix}", headers=_h(globex))
        assert theirs.status_code == nobody.status_code == 404, (method, suffix)
        assert theirs.content == nobody.content
        drop = {"date", "content-length"}
        assert {k: v for k, v in theirs.headers.items() if k not in drop} == {
            k: v for k, v in nobody.headers.items() if k not in drop
        }
    # the owner's job was not canceled by the other tenant's DELETE
    wait_terminal(svc, [job_id])
    assert _get(sec_stack, job_id, acme).json()["state"] == "succeeded"
    assert_invariants(svc, [job_id])


def test_job_ids_are_128_bit_random(
    sec_stack: QueueStack,
    seaweed: SeaweedS3,
    bucket: str,
    svc: Services,
) -> None:
    # Submissions that fail fast (404 source) so the row also proves they end cleanly.
    ids = []
    for _ in range(24):
        r = _submit(sec_stack, seaweed, bucket, ["http://127.0.0.1:9/never.png"])
        assert r.status_code == 202, r.text
        ids.append(r.json()["job_id"])
    assert len(set(ids)) == len(ids)
    for j in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", j), j  # 32 hex digits = 128 bits
    bits = [int(j, 16) for j in ids]
    always_one = ~0
    always_zero = ~0
    for b in bits:
        always_one &= b
        always_zero &= ~b
    # With 24 random ids, any fixed bit has odds 2^-23 of looking constant; allow 2.
    mask = 2**128 - 1
    constant = bin(always_one & mask).count("1") + bin(always_zero & mask).count("1")
    assert constant <= 2, f"{constant} of 128 bits never vary: not random"
    wait_terminal(svc, ids, timeout=60)
    assert_invariants(svc, ids)


# -- rate limit ------------------------------------------------------------------
def test_per_token_rate_limit_answers_429_with_retry_after(sec_stack: QueueStack) -> None:
    api = sec_stack.api_url
    acme, globex = sec_stack.tokens["acme"], sec_stack.tokens["globex"]
    url = f"{api}/v1/jobs/{'e' * 32}"
    with httpx.Client(timeout=10) as c, ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: c.get(url, headers=_h(acme)), range(RATE * 4)))
        limited = [r for r in codes if r.status_code == 429]
        assert limited, f"no 429 in {RATE * 4} requests: {sorted({r.status_code for r in codes})}"
        assert {r.status_code for r in codes} <= {404, 429}
        for r in limited[:5]:
            assert int(r.headers["retry-after"]) >= 1, r.headers
            assert r.json().get("detail")
        # another token is not limited by acme's burst
        other = c.get(url, headers=_h(globex))
        assert other.status_code == 404, other.status_code
        # acme is served again within the Retry-After it was given (+1 s for the
        # requests themselves); polled at 10/s, a quarter of the rate, so the polls
        # cannot keep the bucket empty
        wait = int(limited[-1].headers["retry-after"])
        wait_for(
            lambda: c.get(url, headers=_h(acme)).status_code == 404,
            timeout=wait + 1,
            interval=0.1,
            what=f"acme still limited past its Retry-After: {wait}",
        )


# -- canary secrets -----------------------------------------------------------------
class _Listener:
    """A loopback socket that records every connection (proves SSRF never connects)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._t.join(2)
        self.sock.close()


class _BrokerSampler:
    """Reads every queued / unacked broker message while the jobs run."""

    def __init__(self, url: str) -> None:
        from tests.support.invariants import broker_messages

        self._client = redis.Redis.from_url(url)
        self._read = broker_messages
        self.seen: set[str] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.seen.update(self._read(self._client))
            self.samples += 1

    def close(self) -> None:
        self._stop.set()
        self._t.join(5)


def _canary_urls(cdn: CDNServer, listener_port: int) -> dict[str, str]:
    data = os.urandom(20_000)
    cdn.add("/canary-ok.png", data, content_type="image/png")
    cdn.add("/canary-big.mp4", os.urandom(20 * 1024 * 1024), content_type="video/mp4")
    cdn.add("/canary-403.png", data, content_type="image/png")
    cdn.add("/canary-stall.png", data, content_type="image/png")
    amz = (
        f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA{CANARY}%2F20260101%2Fus-east-1"
        f"%2Fs3%2Faws4_request&X-Amz-Security-Token={CANARY}tok&X-Amz-Signature={CANARY}sig"
    )
    cf = f"Policy={CANARY}pol&Signature={CANARY}cfsig&Key-Pair-Id=K2ABC"
    return {
        "ok_amz": f"{cdn.url('/canary-ok.png')}?{amz}",
        "ok_cloudfront": f"{cdn.url('/canary-ok.png')}?{cf}",
        "ok_multipart": f"{cdn.url('/canary-big.mp4', mode='slow', rate=8 * 1024 * 1024)}&{amz}",
        "expired_403": f"{cdn.url('/canary-403.png', mode='expired')}&{amz}",
        "expired_410": f"{cdn.url('/canary-403.png', mode='expired', code=410)}&{cf}",
        "timeout": f"{cdn.url('/canary-stall.png', mode='stall', after=100, seconds=45)}&{amz}",
        "ssrf_short_ip": f"http://127.1:{listener_port}/x.png?{amz}",
        "ssrf_metadata": f"http://169.254.169.254/latest/meta-data?{cf}",
        "userinfo": f"http://user:{CANARY}pw@127.0.0.1:{listener_port}/x.png",
        "userinfo_ok_host": f"http://{CANARY}:x@{cdn.url('/canary-ok.png').split('://')[1]}",
    }


@pytest.mark.slow
def test_canary_secret_never_leaves_the_job(
    sec_stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    svc: Services,
) -> None:
    listener = _Listener()
    sampler = _BrokerSampler(sec_stack.redis_url)
    try:
        urls = _canary_urls(cdn, listener.port)
        api = sec_stack.api_url
        acme = sec_stack.tokens["acme"]
        responses: list[str] = []
        jobs: dict[str, str] = {}
        for name, url in urls.items():
            r = _submit(sec_stack, seaweed, bucket, [url])
            responses.append(r.text + json.dumps(dict(r.headers)))
            assert r.status_code in (202, 422), (name, r.status_code, r.text)
            if r.status_code == 202:
                jobs[name] = r.json()["job_id"]
        # Refused-at-submit shapes whose error bodies could echo the input.
        bad = [
            {"assets": [{"url": urls["ok_amz"] + "&pad=" + "a" * 9000}]},  # too long
            {"assets": [{"url": urls["ok_amz"], "sha256": f"{CANARY}"}]},  # bad pattern
            {"assets": [{"url": f"ftp://h/x?X-Amz-Signature={CANARY}"}]},  # scheme
            {"assets": [{"url": f"https://h/x\n?X-Amz-Signature={CANARY}"}]},  # control char
            {"assets": [{"url": urls["ok_amz"]}], "notify_url": f"https://u:{CANARY}@h/"},
            {"assets": [{"url": urls["ok_amz"], "extra": CANARY}]},
        ]
        for b in bad:
            body = {**b, "destination": {"bucket": bucket, "endpoint_url": seaweed.endpoint_url}}
            r = httpx.post(f"{api}/v1/jobs", json=body, headers=_h(acme), timeout=10)
            assert r.status_code == 422, (b, r.status_code, r.text[:300])
            responses.append(r.text)
        views = wait_terminal(svc, jobs.values(), timeout=120)
        codes = {
            name: (views[j].assets[0].error.code if views[j].assets[0].error else None)
            for name, j in jobs.items()
        }
        assert views[jobs["ok_amz"]].state.value == "succeeded", codes
        assert views[jobs["ok_cloudfront"]].state.value == "succeeded", codes
        assert views[jobs["ok_multipart"]].state.value == "succeeded", codes
        assert codes["expired_403"] == codes["expired_410"] == "source_expired", codes
        assert codes["timeout"] == "source_too_slow", codes
        assert codes["ssrf_short_ip"] == "url_blocked", codes
        assert codes["ssrf_metadata"] == "url_blocked", codes
        # Credentials in a URL are refused where they are given (422), not at the worker.
        assert "userinfo" not in jobs and "userinfo_ok_host" not in jobs, codes
        assert listener.accepted == 0, "a blocked URL was connected to"
        for j in jobs.values():
            responses.append(_get(sec_stack, j, acme).text)
            events = f"{api}/v1/jobs/{j}/events"
            with httpx.stream("GET", events, headers=_h(acme), timeout=30) as r:
                responses.append(r.read().decode())
            responses.append(httpx.delete(f"{api}/v1/jobs/{j}", headers=_h(acme)).text)
        responses.append(httpx.get(f"{api}/metrics").text)
        responses.append(httpx.get(f"{api}/healthz").text)
        facts = assert_invariants(svc, jobs.values())
        for f in facts.values():  # the manifest in the bucket carries no canary either
            assert CANARY not in json.dumps(f.manifest or {})
    finally:
        listener.close()
        sampler.close()

    leaks: list[str] = [f"broker message: {t[:200]}" for t in sampler.seen if CANARY in t]
    assert sampler.samples > 3
    for i, text in enumerate(responses):
        if CANARY in text:
            leaks.append(f"API response #{i}: {text[:200]}")
    logs = [sec_stack.api, *sec_stack.workers]
    for h in logs:
        assert h is not None
        for line in h.log().splitlines():
            if CANARY in line:
                leaks.append(f"log {Path(h.log_path).name}: {line[:200]}")
    client = redis.Redis.from_url(sec_stack.redis_url)
    for key, text in redis_dump_texts(client):
        if CANARY in text:
            leaks.append(f"redis key {key}: {text[:160]}")
    assert not leaks, "canary leaked:\n" + "\n".join(leaks)


@pytest.fixture(scope="module")
def unsealed_stack(start_module_stack: StartStack) -> QueueStack:
    """A deployment that did not set GENBLAZE_SOURCE_KEY (the development default)."""
    return start_module_stack(
        redis_url=None,  # a Redis of its own: nothing sealed by the other stack in it
        queue="genblaze-unsealed",
        n_workers=1,
        extra_env={"GENBLAZE_SOURCE_KEY": "", "GENBLAZE_MAX_RETRIES": "0"},
    )


def test_without_a_source_key_the_raw_url_leaves_redis_when_the_asset_ends(
    unsealed_stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    s3_client: object,
) -> None:
    urls = _canary_urls(cdn, 9)
    picked = [urls["ok_amz"], urls["expired_403"], urls["ssrf_short_ip"], urls["ssrf_metadata"]]
    ids = []
    for url in picked:
        r = _submit(unsealed_stack, seaweed, bucket, [url])
        assert r.status_code == 202, r.text
        ids.append(r.json()["job_id"])
    svc = Services(redis_url=unsealed_stack.redis_url, s3=s3_client)
    wait_terminal(svc, ids, timeout=60)
    assert_invariants(svc, ids)
    client = redis.Redis.from_url(unsealed_stack.redis_url)
    leaks = [key for key, text in redis_dump_texts(client) if CANARY in text]
    assert not leaks, f"canary still in Redis after the jobs ended: {sorted(set(leaks))}"
