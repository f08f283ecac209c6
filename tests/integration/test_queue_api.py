"""The HTTP API over a real socket (Procfile `web:`), with real workers behind it."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from genblaze_core.storage.base import KeyStrategy
from genblaze_core.storage.sink import ObjectStorageSink

from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.helpers import backend_for, sha, wait_for
from tests.support.workers import QueueStack


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _submit(
    stack: QueueStack, seaweed: SeaweedS3, bucket: str, urls: list[str], token: str, **extra: object
) -> httpx.Response:
    body = {
        "assets": [{"url": u} for u in urls],
        "destination": {"bucket": bucket, "endpoint_url": seaweed.endpoint_url},
        **extra,
    }
    return httpx.post(f"{stack.api_url}/v1/jobs", json=body, headers=_h(token), timeout=10)


def _wait_terminal(stack: QueueStack, job_id: str, token: str) -> dict:
    doc: dict = {}

    def done() -> bool:
        nonlocal doc
        doc = httpx.get(f"{stack.api_url}/v1/jobs/{job_id}", headers=_h(token)).json()
        return doc["state"] in {"succeeded", "failed", "canceled"}

    wait_for(done, timeout=60, interval=0.1)
    return doc


def test_submit_poll_and_locked_manifest_over_http(
    stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    locked_bucket: str,
) -> None:
    data = os.urandom(30_000)
    url = cdn.add("/api-a.png", data, content_type="image/png") + "?X-Amz-Signature=CANARY"
    token = stack.tokens["acme"]
    # within GENBLAZE_MAX_RETENTION_DAYS (3650): a lock is refused at submit beyond it
    until = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    r = _submit(
        stack,
        seaweed,
        locked_bucket,
        [url],
        token,
        manifest_lock={"mode": "GOVERNANCE", "retain_until": until.isoformat()},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert r.json()["status_url"].endswith(f"/v1/jobs/{job_id}")
    doc = _wait_terminal(stack, job_id, token)
    assert doc["state"] == "succeeded", doc
    assert set(doc) == {
        "job_id",
        "state",
        "run_id",
        "created_at",
        "updated_at",
        "labels",
        "progress",
        "counts",
        "error_codes",
        "assets",
        "next_cursor",
        "manifest",
        "error",
    }
    asset = doc["assets"][0]
    assert asset["sha256"] == sha(data) and "CANARY" not in json.dumps(doc)
    assert asset["source_url"].endswith("/api-a.png?REDACTED")
    assert doc["manifest"]["locked_until"].startswith(until.date().isoformat())
    assert doc["progress"] == {
        "bytes_done": len(data),
        "bytes_total": len(data),
        "assets_done": 1,
        "assets_total": 1,
    }
    backend = backend_for(seaweed, locked_bucket)
    head = backend.client.head_object(Bucket=locked_bucket, Key=doc["manifest"]["key"])
    assert head["ObjectLockMode"] == "GOVERNANCE"
    raw = json.loads(backend.get(doc["manifest"]["key"]))
    assert raw["run"]["run_id"] == doc["run_id"]
    # The manifest verifies through genblaze-core's own reader.
    from genblaze_core.models.run import Run

    run = Run.model_validate(raw["run"])
    # Two tenants in GENBLAZE_API_TOKENS: acme's keys live under its root, `acme/`.
    assert ObjectStorageSink(
        backend, prefix="acme/genblaze", key_strategy=KeyStrategy.CONTENT_ADDRESSABLE
    ).read_manifest(run)


def test_idempotency_key_returns_the_same_job(
    stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
) -> None:
    url = cdn.add("/idem.png", os.urandom(1000), content_type="image/png")
    body = {
        "assets": [{"url": url}],
        "destination": {"bucket": bucket, "endpoint_url": seaweed.endpoint_url},
    }
    h = {**_h(stack.tokens["acme"]), "Idempotency-Key": "abc-123"}
    a = httpx.post(f"{stack.api_url}/v1/jobs", json=body, headers=h)
    b = httpx.post(f"{stack.api_url}/v1/jobs", json=body, headers=h)
    assert a.status_code == b.status_code == 202 and a.json()["job_id"] == b.json()["job_id"]


def test_tenants_cannot_see_each_others_jobs_and_tokens_are_required(
    stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
) -> None:
    url = cdn.add("/tenant.png", os.urandom(1000), content_type="image/png")
    r = _submit(stack, seaweed, bucket, [url], stack.tokens["acme"])
    job_id = r.json()["job_id"]
    mine = httpx.get(f"{stack.api_url}/v1/jobs/{job_id}", headers=_h(stack.tokens["acme"]))
    theirs = httpx.get(f"{stack.api_url}/v1/jobs/{job_id}", headers=_h(stack.tokens["globex"]))
    unknown = httpx.get(f"{stack.api_url}/v1/jobs/{'0' * 32}", headers=_h(stack.tokens["globex"]))
    assert mine.status_code == 200
    assert theirs.status_code == 404 and theirs.json() == unknown.json()
    cancel = httpx.delete(f"{stack.api_url}/v1/jobs/{job_id}", headers=_h(stack.tokens["globex"]))
    assert cancel.status_code == 404
    for headers in ({}, _h("wrong"), {"Authorization": "Basic eDp5"}):
        r = httpx.get(f"{stack.api_url}/v1/jobs/{job_id}", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


def test_destination_outside_the_allow_list_is_refused_at_submit(
    stack: QueueStack,
    seaweed: SeaweedS3,
    bucket: str,
) -> None:
    body = {
        "assets": [{"url": "https://cdn.example/a.png"}],
        "destination": {"bucket": bucket, "endpoint_url": "http://attacker.example:9000"},
    }
    r = httpx.post(f"{stack.api_url}/v1/jobs", json=body, headers=_h(stack.tokens["acme"]))
    assert r.status_code == 422 and r.json()["code"] == "destination_not_allowed"


def test_events_stream_ends_with_the_terminal_document(
    stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
) -> None:
    url = cdn.add("/sse.png", os.urandom(2000), content_type="image/png")
    job_id = _submit(stack, seaweed, bucket, [url], stack.tokens["acme"]).json()["job_id"]
    docs = []
    with httpx.stream(
        "GET",
        f"{stack.api_url}/v1/jobs/{job_id}/events",
        headers=_h(stack.tokens["acme"]),
        timeout=60,
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data:"):
                docs.append(json.loads(line[5:]))
    assert docs and docs[-1]["state"] == "succeeded"


def test_health_and_metrics(stack: QueueStack) -> None:
    h = httpx.get(f"{stack.api_url}/healthz")
    assert h.status_code == 200 and h.json() == {"ok": True, "store": True, "broker": True}
    m = httpx.get(f"{stack.api_url}/metrics").text
    for name in (
        "genblaze_jobs_total",
        "genblaze_ingested_bytes_total",
        "genblaze_queue_depth",
        "genblaze_copy_duration_seconds_bucket",
        "genblaze_copy_duration_seconds_count",
        "genblaze_copy_duration_seconds_sum",
        "process_resident_memory_bytes",
        "genblaze_copy_retries_total",
    ):
        assert name in m


@pytest.mark.parametrize(
    "body",
    [
        {"assets": []},
        {"assets": [{"url": "file:///etc/passwd"}]},
        {"assets": [{"url": "https://x/a"}], "run": {}},
    ],
)
def test_invalid_submissions_get_422(stack: QueueStack, bucket: str, body: dict) -> None:
    r = httpx.post(
        f"{stack.api_url}/v1/jobs",
        json={**body, "destination": {"bucket": bucket}},
        headers=_h(stack.tokens["acme"]),
    )
    assert r.status_code == 422 and "detail" in r.json()


def test_webhook_gets_the_signed_final_document(
    stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from standardwebhooks import Webhook

    from genblaze_s3.ingest.finalize.webhooks import verify

    got: list[tuple[bytes, dict[str, str]]] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((body, dict(self.headers.items())))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = cdn.add("/hook.png", os.urandom(1500), content_type="image/png")
        hook = f"http://127.0.0.1:{server.server_address[1]}/done"
        r = _submit(stack, seaweed, bucket, [url], stack.tokens["acme"], notify_url=hook)
        job_id = r.json()["job_id"]
        _wait_terminal(stack, job_id, stack.tokens["acme"])
        wait_for(lambda: bool(got), timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    body, headers = got[0]
    assert json.loads(body)["job_id"] == job_id and json.loads(body)["state"] == "succeeded"
    assert verify(body, headers, secret="whsec-test")["job_id"] == job_id
    # The upstream Standard Webhooks verifier accepts it too (a non-`whsec_` secret is bytes).
    assert Webhook(b"whsec-test").verify(body, {k.lower(): v for k, v in headers.items()})


def test_cli_submit_waits_and_status_prints_the_document(
    stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str
) -> None:
    import subprocess
    import sys

    url = cdn.add("/cli.png", os.urandom(4000), content_type="image/png")
    env = {
        **os.environ,
        "GENBLAZE_API_URL": stack.api_url,
        "GENBLAZE_API_TOKEN": stack.tokens["acme"],
    }
    cmd = [
        sys.executable,
        "-m",
        "genblaze_s3.cli",
        "submit",
        url,
        "--bucket",
        bucket,
        "--endpoint",
        seaweed.endpoint_url,
        "--wait",
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout
    job_id = out.stdout.strip().splitlines()[0]
    status = subprocess.run(
        [sys.executable, "-m", "genblaze_s3.cli", "status", job_id, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0 and json.loads(status.stdout)["state"] == "succeeded"
