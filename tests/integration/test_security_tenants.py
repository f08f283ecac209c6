"""Hostile-tenant rows (issue 12): scoped destinations, sealed secrets, strict input.

The API and the workers run from the Procfile on their own Redis (store and
broker), configured by a GENBLAZE_TENANTS_FILE; objects land in SeaweedFS; sources
come from the test CDN. Every refused request is checked to have written nothing:
not to the bucket, not to Redis (which is also the broker here).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from cryptography.fernet import Fernet
from standardwebhooks import Webhook

from genblaze_s3.ingest.finalize.webhooks import new_secret
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store import stats as stat_names
from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.helpers import wait_for
from tests.support.invariants import (
    Services,
    assert_invariants,
    redis_dump_texts,
    wait_terminal,
)
from tests.support.workers import AMQP_URL, QueueStack, StartStack

RATE = 40  # requests per second per token (and per address for failed authentications)
SECRETS = {"acme": new_secret(), "globex": new_secret()}
METRICS_TOKEN = "metrics-" + os.urandom(8).hex()
TOKENS = {"acme": "tok-acme", "globex": "tok-globex"}
TENANTS = f"""
[tenants.acme]
tokens = ["tok-acme", "tok-acme-next"]
webhook_secret = "{SECRETS["acme"]}"
allow_compliance = true

[tenants.globex]
tokens = ["tok-globex"]
webhook_secret = "{SECRETS["globex"]}"
max_assets_per_job = 3
"""


@pytest.fixture(scope="module")
def stack(start_module_stack: StartStack) -> QueueStack:
    return start_module_stack(
        redis_url=None,  # a Redis of its own: refused requests must leave it empty
        queue="genblaze-tenants",
        tenants=TENANTS,
        n_workers=1,
        concurrency=2,
        tokens=TOKENS,
        extra_env={
            "GENBLAZE_MAX_RETRIES": "0",
            "GENBLAZE_API_RATE_LIMIT": f"{RATE}/1",
            "GENBLAZE_SOURCE_KEY": Fernet.generate_key().decode(),
            "GENBLAZE_METRICS_TOKEN": METRICS_TOKEN,
        },
    )


@pytest.fixture(scope="module")
def legacy_stack(start_module_stack: StartStack) -> QueueStack:
    """The 0.4 configuration users already have: GENBLAZE_API_TOKENS with two tenants."""
    return start_module_stack(
        redis_url=None,
        queue="genblaze-legacy",
        n_workers=1,
        concurrency=2,
        tokens=TOKENS,
        extra_env={"GENBLAZE_MAX_RETRIES": "0"},
    )


@pytest.fixture(scope="module")
def rabbit_stack(start_rabbit_stack: StartStack) -> QueueStack:
    """The tenants file again, with RabbitMQ as the broker (Redis stays the store)."""
    return start_rabbit_stack(
        queue_prefix="genblaze-tenants",
        tenants=TENANTS,
        n_workers=1,
        concurrency=2,
        tokens=TOKENS,
        extra_env={"GENBLAZE_MAX_RETRIES": "0"},
    )


_STACKS = {"tenants-file": "stack", "api-tokens": "legacy_stack", "rabbitmq": "rabbit_stack"}


@pytest.fixture(params=list(_STACKS))
def any_stack(request: pytest.FixtureRequest, s3_client: Any) -> tuple[QueueStack, Services]:
    """The cross-tenant rows run under both ways of configuring tenants, and on both
    brokers."""
    s = request.getfixturevalue(_STACKS[request.param])
    return s, Services(redis_url=s.redis_url, s3=s3_client)


@pytest.fixture
def svc(stack: QueueStack, s3_client: Any) -> Services:
    return Services(redis_url=stack.redis_url, s3=s3_client)


def _h(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[tenant]}"}


def _dest(seaweed: SeaweedS3, bucket: str, **kw: Any) -> dict[str, Any]:
    return {"bucket": bucket, "endpoint_url": seaweed.endpoint_url, **kw}


def _post(stack: QueueStack, body: dict[str, Any], tenant: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{stack.api_url}/v1/jobs", json=body, headers={**_h(tenant), **headers}, timeout=10
    )


def _fixed_run(url: str, media_type: str = "image/png") -> dict[str, Any]:
    """A genblaze run with fixed run_id / asset_id / created_at: the same keys every time."""
    return {
        "run_id": "11111111-2222-3333-4444-555555555555",
        "name": "fixed",
        "status": "completed",
        "created_at": "2026-11-30T12:00:00Z",
        "steps": [
            {
                "step_id": "66666666-7777-8888-9999-000000000000",
                "provider": "p",
                "model": "m",
                "status": "succeeded",
                "assets": [
                    {
                        "asset_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                        "url": url,
                        "media_type": media_type,
                    }
                ],
            }
        ],
    }


_SWEEPER_LOCK = keys.sweeper_lock_key().encode()
_STATS = keys.stats_key().encode()
_HEARTBEATS = keys.workers_key().encode()


def _store_snapshot(client: redis.Redis) -> dict[bytes, Any]:
    """Every key and its serialized value: equal snapshots mean nothing was written.

    Left out: the sweeper's own bookkeeping (its interval lock and `sweeps_total`),
    which every worker takes each interval whatever the requests do; a sweep that
    re-enqueued something still shows (`swept_*` counters, the broker's keys). And
    the workers' heartbeats (the fleet view's workers table), rewritten every 2 s.
    """
    snap: dict[bytes, Any] = {}
    for k in client.scan_iter(count=1000):
        if k in (_SWEEPER_LOCK, _HEARTBEATS):
            continue
        if k == _STATS:
            counters = client.hgetall(k)
            counters.pop(stat_names.SWEEPS_TOTAL.encode(), None)
            if counters:  # a hash the first sweep created holds nothing else
                snap[k] = counters
        else:
            snap[k] = client.dump(k)
    return snap


class _NothingWritten:
    """Assert a block of refused requests leaves Redis (store + broker) and the bucket as
    they were."""

    def __init__(self, stack: QueueStack, s3: Any, bucket: str) -> None:
        self.client = redis.Redis.from_url(stack.redis_url)
        self.s3, self.bucket = s3, bucket

    def __enter__(self) -> _NothingWritten:
        self.before = _store_snapshot(self.client)
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return
        assert _store_snapshot(self.client) == self.before, "a refused request wrote to Redis"
        assert not self.s3.list_objects_v2(Bucket=self.bucket).get("KeyCount")


def _objects(s3: Any, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def _asset_key(doc: dict[str, Any]) -> str:
    return str(doc["assets"][0]["key"])


def _wait_doc(svc: Services, stack: QueueStack, job_id: str, tenant: str) -> dict[str, Any]:
    wait_terminal(svc, [job_id], timeout=90)
    r = httpx.get(f"{stack.api_url}/v1/jobs/{job_id}", headers=_h(tenant), timeout=10)
    return dict(r.json())


# -- scoped destinations ----------------------------------------------------------------
def test_tenant_b_cannot_overwrite_tenant_a_with_the_same_run_ids(
    any_stack: tuple[QueueStack, Services], seaweed: SeaweedS3, cdn: CDNServer, bucket: str
) -> None:
    """The reported row: same run_id / asset_id / created_at, HIERARCHICAL, prefix `shared`."""
    stack, svc = any_stack
    a_bytes, b_bytes = os.urandom(20_000), os.urandom(20_000)
    dest = _dest(seaweed, bucket, key_strategy="hierarchical", prefix="shared")
    a_url = cdn.add(f"/{stack.queue}/iso-a.png", a_bytes, content_type="image/png")
    b_url = cdn.add(f"/{stack.queue}/iso-b.png", b_bytes, content_type="image/png")
    a = _post(stack, {"run": _fixed_run(a_url), "destination": dest}, "acme")
    assert a.status_code == 202, a.text
    a_doc = _wait_doc(svc, stack, a.json()["job_id"], "acme")
    assert a_doc["state"] == "succeeded", a_doc
    a_objects = _objects(svc.s3, bucket)
    b = _post(stack, {"run": _fixed_run(b_url), "destination": dest}, "globex")
    assert b.status_code == 202, b.text
    b_doc = _wait_doc(svc, stack, b.json()["job_id"], "globex")
    # A's bytes and manifest are untouched; B stored under its own root, its own manifest.
    after = _objects(svc.s3, bucket)
    assert {k: after[k] for k in a_objects} == a_objects
    assert after[_asset_key(a_doc)] == a_bytes and _asset_key(a_doc).startswith("acme/shared/")
    assert b_doc["state"] == "succeeded", b_doc
    assert _asset_key(b_doc).startswith("globex/shared/") and after[_asset_key(b_doc)] == b_bytes
    assert b_doc["manifest"]["key"].startswith("globex/") and b_doc["manifest"]["key"] in after
    assert "acme" not in json.dumps(b_doc)  # B learns nothing of A
    assert_invariants(svc, [a.json()["job_id"], b.json()["job_id"]])


@pytest.mark.parametrize("size", [20_000, 17 * 1024 * 1024], ids=["single-put", "multipart"])
def test_a_key_holding_other_bytes_is_never_overwritten(
    stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    svc: Services,
    size: int,
) -> None:
    """Within one tenant: a replayed run with other bytes fails `key_conflict`; with the
    same bytes it is `deduplicated` (a job redelivered after its write looks like this)."""
    first, other = os.urandom(size), os.urandom(size)
    dest = _dest(seaweed, bucket, key_strategy="hierarchical")
    url1 = cdn.add(f"/kc-1-{size}.png", first, content_type="image/png")
    url2 = cdn.add(f"/kc-2-{size}.png", other, content_type="image/png")
    j1 = _post(stack, {"run": _fixed_run(url1), "destination": dest}, "acme").json()["job_id"]
    d1 = _wait_doc(svc, stack, j1, "acme")
    assert d1["state"] == "succeeded", d1
    stored = _objects(svc.s3, bucket)
    j2 = _post(stack, {"run": _fixed_run(url2), "destination": dest}, "acme").json()["job_id"]
    d2 = _wait_doc(svc, stack, j2, "acme")
    assert d2["state"] == "failed" and d2["assets"][0]["error"]["code"] == "key_conflict", d2
    assert _objects(svc.s3, bucket) == stored  # nothing replaced, no second manifest
    assert not svc.s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    j3 = _post(stack, {"run": _fixed_run(url1), "destination": dest}, "acme").json()["job_id"]
    d3 = _wait_doc(svc, stack, j3, "acme")
    assert d3["state"] == "succeeded" and d3["assets"][0]["state"] == "deduplicated", d3
    assert d3["manifest"]["key"] == d1["manifest"]["key"]
    assert _objects(svc.s3, bucket) == stored


def test_a_claimed_sha256_of_another_tenants_file_proves_nothing(
    any_stack: tuple[QueueStack, Services], seaweed: SeaweedS3, cdn: CDNServer, bucket: str
) -> None:
    """B claims the hash of a file A stored: B's source is downloaded all the same; other
    bytes fail `checksum_mismatch`, the same bytes land under B's own root; B never gets
    `deduplicated` from A's object and A's object is unchanged."""
    import hashlib

    stack, svc = any_stack
    secret_file, decoy = os.urandom(30_000), os.urandom(30_000)
    digest = hashlib.sha256(secret_file).hexdigest()
    dest = _dest(seaweed, bucket)
    a_url = cdn.add(f"/{stack.queue}/claim-a.png", secret_file, content_type="image/png")
    a = _post(stack, {"assets": [{"url": a_url}], "destination": dest}, "acme").json()["job_id"]
    a_doc = _wait_doc(svc, stack, a, "acme")
    assert a_doc["state"] == "succeeded", a_doc
    a_objects = _objects(svc.s3, bucket)
    cdn.clear_requests()
    tag = stack.queue  # one CDN for both stacks: paths per stack
    decoy_url = cdn.add(f"/{tag}/claim-decoy.png", decoy, content_type="image/png")
    same_url = cdn.add(f"/{tag}/claim-same.png", secret_file, content_type="image/png")
    # The decoy first, on its own: once B's own copy of the bytes exists under B's root,
    # a claim of that hash by B deduplicates against it (docs/SECURITY.md, "Claimed
    # hashes ... stay inside a tenant"), so in one job the outcome would hang on which
    # asset a worker happens to take first.
    b_docs = []
    for url in (decoy_url, same_url):
        claim = {"url": url, "sha256": digest, "media_type": "image/png"}
        b = _post(stack, {"assets": [claim], "destination": dest}, "globex").json()["job_id"]
        b_docs.append(_wait_doc(svc, stack, b, "globex"))
    by_url = {x["source_url"].rsplit("/", 1)[-1]: x for d in b_docs for x in d["assets"]}
    b_doc = {"jobs": b_docs}
    assert by_url["claim-decoy.png"]["state"] == "failed"
    assert by_url["claim-decoy.png"]["error"]["code"] == "checksum_mismatch"
    assert by_url["claim-same.png"]["state"] == "stored"  # downloaded, not deduplicated
    assert by_url["claim-same.png"]["key"].startswith("globex/")
    fetched = {r.path for r in cdn.requests if r.method == "GET"}
    assert {f"/{tag}/claim-decoy.png", f"/{tag}/claim-same.png"} <= fetched
    after = _objects(svc.s3, bucket)
    assert {k: after[k] for k in a_objects} == a_objects
    assert "acme" not in json.dumps(b_doc)


# -- strict input at the edge -----------------------------------------------------------
def test_job_ids_are_checked_before_the_store_and_another_tenants_is_unknown(
    stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str, svc: Services
) -> None:
    url = cdn.add("/ids.png", os.urandom(2000), content_type="image/png")
    real = _post(stack, {"assets": [{"url": url}], "destination": _dest(seaweed, bucket)}, "acme")
    job_id = real.json()["job_id"]
    wait_terminal(svc, [job_id])
    api = stack.api_url
    before = _store_snapshot(redis.Redis.from_url(stack.redis_url))
    for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/events")):
        unknown = httpx.request(method, f"{api}/v1/jobs/{'f' * 32}{suffix}", headers=_h("globex"))
        # Another tenant's job answers exactly like an unknown one ...
        r = httpx.request(method, f"{api}/v1/jobs/{job_id}{suffix}", headers=_h("globex"))
        assert r.status_code == unknown.status_code == 404, (method, r.text)
        assert r.content == unknown.content, method
        # ... and an id that cannot be one is refused by its shape, naming the field.
        for bad in (f"{job_id}:x", "x:y", job_id.upper(), job_id + "0", "0"):
            r = httpx.request(method, f"{api}/v1/jobs/{bad}{suffix}", headers=_h("globex"))
            assert r.status_code == 422, (method, bad, r.text)
            assert r.json()["errors"][0]["field"] == "job_id", r.text
    assert _store_snapshot(redis.Redis.from_url(stack.redis_url)) == before
    assert stack.api is not None and "WRONGTYPE" not in stack.api.log()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("endpoint_url", "http://127.0.0.1:8333.evil"),
        ("endpoint_url", "http://127.0.0.1:70000"),
        ("endpoint_url", "http://user:pw@127.0.0.1:8333"),
        ("region", "r" * 300),
        ("region", "us-east-1\n"),
        ("prefix", "p" * 5000),
        ("prefix", "../../etc"),
        ("prefix", "a//b"),
        ("prefix", "a/\x01"),
        ("bucket", "Not_A_Bucket"),
    ],
)
def test_destination_fields_are_refused_with_422_naming_the_field(
    stack: QueueStack, seaweed: SeaweedS3, bucket: str, svc: Services, field: str, value: str
) -> None:
    dest = {**_dest(seaweed, bucket), field: value}
    with _NothingWritten(stack, svc.s3, bucket):
        r = _post(
            stack, {"assets": [{"url": "https://cdn.example/a.png"}], "destination": dest}, "acme"
        )
    assert r.status_code == 422, r.text
    assert f"destination.{field}" in [e["field"] for e in r.json()["errors"]]
    assert value not in r.text or len(value) < 3  # the rejected value is not echoed back
    assert stack.api is not None and "Traceback" not in stack.api.log()


@pytest.mark.parametrize(
    ("tenant", "lock", "field"),
    [
        ("acme", {"mode": "GOVERNANCE", "retain_until": "2020-01-01T00:00:00Z"}, "retain_until"),
        ("acme", {"mode": "COMPLIANCE", "retain_until": "9999-12-31T00:00:00Z"}, "retain_until"),
        ("acme", {"mode": "GOVERNANCE", "retain_until": "PLUS_3651_DAYS"}, "retain_until"),
        ("globex", {"mode": "COMPLIANCE", "retain_until": "PLUS_1_DAYS"}, "mode"),
    ],
)
def test_manifest_locks_must_be_future_bounded_and_allowed(
    stack: QueueStack,
    seaweed: SeaweedS3,
    bucket: str,
    svc: Services,
    tenant: str,
    lock: dict[str, str],
    field: str,
) -> None:
    if lock["retain_until"].startswith("PLUS_"):
        days = int(lock["retain_until"].split("_")[1])
        lock = {**lock, "retain_until": (datetime.now(UTC) + timedelta(days=days)).isoformat()}
    body = {
        "assets": [{"url": "https://cdn.example/a.png"}],
        "destination": _dest(seaweed, bucket),
        "manifest_lock": lock,
    }
    with _NothingWritten(stack, svc.s3, bucket):
        r = _post(stack, body, tenant)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == f"manifest_lock.{field}", r.json()


@pytest.mark.parametrize(
    "notify_url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.2:8080/hook",
        "http://10.0.0.7/hook",
        "http://[::1]/hook",
        "file:///etc/passwd",
        "http://user:pw@hooks.example/x",
    ],
)
def test_notify_url_passes_the_ssrf_guard_at_submit(
    stack: QueueStack, seaweed: SeaweedS3, bucket: str, svc: Services, notify_url: str
) -> None:
    body = {
        "assets": [{"url": "https://cdn.example/a.png"}],
        "destination": _dest(seaweed, bucket),
        "notify_url": notify_url,
    }
    with _NothingWritten(stack, svc.s3, bucket):
        r = _post(stack, body, "acme")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "notify_url", r.text


def test_refused_requests_leave_nothing_with_rabbitmq_as_broker(
    rabbit_stack: QueueStack, seaweed: SeaweedS3, bucket: str, s3_client: Any
) -> None:
    """Refusals happen before the store write, and nothing is sent before the store
    write: the store unchanged and the queue empty mean nothing reached the broker."""
    from kombu import Connection

    past = {"mode": "GOVERNANCE", "retain_until": "2020-01-01T00:00:00Z"}
    bodies = [
        {"assets": [{"url": "https://cdn.example/a.png"}], "destination": d}
        for d in (
            {**_dest(seaweed, bucket), "endpoint_url": "http://127.0.0.1:8333.evil"},
            {**_dest(seaweed, bucket), "prefix": "../up"},
        )
    ] + [
        {
            "assets": [{"url": "https://cdn.example/a.png"}],
            "destination": _dest(seaweed, bucket),
            **extra,
        }
        for extra in ({"manifest_lock": past}, {"notify_url": "http://169.254.169.254/x"})
    ]
    with _NothingWritten(rabbit_stack, s3_client, bucket):
        codes = [_post(rabbit_stack, b, "acme").status_code for b in bodies]
    assert codes == [422] * len(bodies)
    with Connection(AMQP_URL) as conn:
        _, count, _ = conn.default_channel.queue_declare(rabbit_stack.queue, passive=True)
    assert count == 0


def test_asset_limit_per_tenant(
    stack: QueueStack, seaweed: SeaweedS3, bucket: str, svc: Services
) -> None:
    body = {
        "assets": [{"url": f"https://cdn.example/{i}.png"} for i in range(4)],
        "destination": _dest(seaweed, bucket),
    }
    with _NothingWritten(stack, svc.s3, bucket):
        r = _post(stack, body, "globex")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "assets", r.text


def test_idempotency_key_reused_with_another_body_is_409(
    stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str, svc: Services
) -> None:
    url = cdn.add("/idem-1.png", os.urandom(1000), content_type="image/png")
    first = {"assets": [{"url": url}], "destination": _dest(seaweed, bucket)}
    key = {"Idempotency-Key": "order-" + os.urandom(4).hex()}
    a = _post(stack, first, "acme", **key)
    again = _post(stack, first, "acme", **key)
    assert a.status_code == again.status_code == 202 and a.json() == again.json()
    wait_terminal(svc, [a.json()["job_id"]])
    changed = {**first, "assets": [{"url": url + "?v=2"}]}
    client = redis.Redis.from_url(stack.redis_url)
    before = _store_snapshot(client)
    other = _post(stack, changed, "acme", **key)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    assert _store_snapshot(client) == before
    # the same key is another tenant's own namespace
    assert _post(stack, first, "globex", **key).status_code == 202


# -- bodies, tokens, metrics ------------------------------------------------------------
def _raw_post(api_url: str, headers: dict[str, str], send_bytes: int) -> tuple[int, float]:
    """POST announcing a 64 MiB body, send only `send_bytes` of it, read the answer."""
    host, port = api_url.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            (
                f"POST /v1/jobs HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {64 * 1024 * 1024}\r\n{head}\r\n"
            ).encode()
        )
        s.sendall(b"{" + b" " * (send_bytes - 1))
        started = time.monotonic()
        answer = s.recv(4096).decode(errors="replace")
    return int(answer.split(" ", 2)[1]), time.monotonic() - started


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_large_body_without_a_token_is_refused_before_it_is_read(stack: QueueStack) -> None:
    assert stack.api is not None
    rss = _rss_kib(stack.api.pid)
    # 64 KiB of a 64 MiB body: the answer comes without the rest ever being sent.
    status, _ = _raw_post(stack.api_url, {}, 64 * 1024)
    assert status == 401
    status, _ = _raw_post(stack.api_url, {"Authorization": "Bearer wrong"}, 64 * 1024)
    assert status == 401
    status, _ = _raw_post(stack.api_url, _h("acme"), 64 * 1024)
    assert status == 413  # authenticated, but over GENBLAZE_MAX_BODY_BYTES (8 MiB)
    assert _rss_kib(stack.api.pid) - rss < 16 * 1024


def test_a_chunked_body_over_the_limit_is_cut_at_the_limit(stack: QueueStack) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b" " * (1024 * 1024)

    r = httpx.post(
        f"{stack.api_url}/v1/jobs",
        content=chunks(),
        headers={**_h("acme"), "Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"


def test_metrics_need_the_metrics_token_and_carry_no_tenant_secret(stack: QueueStack) -> None:
    url = f"{stack.api_url}/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers=_h("acme")).status_code == 401  # a tenant token is not it
    ok = httpx.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert ok.status_code == 200 and "genblaze_jobs" in ok.text
    for secret in [*TOKENS.values(), *SECRETS.values(), METRICS_TOKEN]:
        assert secret not in ok.text


def test_wrong_tokens_are_rate_limited_per_address(stack: QueueStack) -> None:
    url = f"{stack.api_url}/v1/jobs/{'e' * 32}"
    with httpx.Client(timeout=10) as c:
        codes = [
            c.get(url, headers={"Authorization": f"Bearer guess-{i}"}) for i in range(RATE * 2)
        ]
        limited = [r for r in codes if r.status_code == 429]
        assert limited and {r.status_code for r in codes} == {401, 429}
        assert int(limited[0].headers["retry-after"]) >= 1
        # a client with a valid token is not locked out by someone else's guessing
        assert c.get(url, headers=_h("acme")).status_code == 404
        # and the address is answered again (401, not 429) within its Retry-After (+1 s
        # for the requests themselves): guessing slows an address down, never locks it out
        wait = int(limited[-1].headers["retry-after"])
        wait_for(
            lambda: c.get(url, headers={"Authorization": "Bearer guess-x"}).status_code == 401,
            timeout=wait + 1,
            interval=0.1,
            what=f"the address still limited past its Retry-After: {wait}",
        )


# -- sealed callback URL and Standard Webhooks ---------------------------------------
def test_notify_url_is_sealed_and_the_delivery_verifies_with_standardwebhooks(
    stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str, svc: Services
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: list[tuple[bytes, dict[str, str]]] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((body, {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    canary = "CANARY" + os.urandom(6).hex()
    try:
        # A slow source keeps the job open while Redis and the broker are searched.
        data = os.urandom(256 * 1024)
        cdn.add("/hooked.png", data, content_type="image/png")
        src = cdn.url("/hooked.png", mode="slow", rate=64 * 1024)
        hook = f"http://127.0.0.1:{server.server_address[1]}/done?token={canary}"
        body = {"assets": [{"url": src}], "destination": _dest(seaweed, bucket), "notify_url": hook}
        r = _post(stack, body, "acme")
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        client = redis.Redis.from_url(stack.redis_url)
        leaks = [k for k, text in redis_dump_texts(client) if canary in text]
        assert leaks == [], f"notify_url token readable in Redis/broker: {leaks}"
        wait_terminal(svc, [job_id])
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
    body_bytes, headers = got[0]
    assert headers["webhook-id"] == f"{job_id}.succeeded"
    doc = Webhook(SECRETS["acme"]).verify(body_bytes, headers)
    assert doc["job_id"] == job_id and doc["state"] == "succeeded"
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):  # globex's secret cannot vouch for it
        Webhook(SECRETS["globex"]).verify(body_bytes, headers)
    assert stack.api is not None and canary not in stack.api.log()
    assert_invariants(svc, [job_id])
