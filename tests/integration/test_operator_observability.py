"""What an operator's tools see: Celery task events (Flower) and JSON log lines.

A stack started as the Procfile starts it, with GENBLAZE_LOG_FORMAT=json. A job with
one expired source: the failed copy is a `task-failed` event on the broker (what
Flower shows as FAILURE) while the store records the asset's error code; every log
line of the worker and the API is one JSON object, the copy's lines carry job_id,
asset_id and tenant.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from typing import Any

import pytest
from celery import Celery

from genblaze_s3.ingest import IngestClient
from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.helpers import wait_for
from tests.support.workers import QueueStack, StartStack


@pytest.fixture(scope="module")
def json_stack(start_module_stack: StartStack) -> QueueStack:
    return start_module_stack(
        queue="genblaze-observed", n_workers=1, extra_env={"GENBLAZE_LOG_FORMAT": "json"}
    )


def _events(broker_url: str, got: list[dict[str, Any]], stop: threading.Event) -> None:
    """Capture task events from the broker, as Flower does."""
    app = Celery(broker=broker_url)
    with app.connection() as conn:
        recv = app.events.Receiver(conn, handlers={"*": got.append})
        while not stop.is_set():
            try:
                recv.capture(limit=None, timeout=0.5, wakeup=False)
            except TimeoutError:
                continue
            except OSError:
                time.sleep(0.1)


def _wait_subscribed(broker_url: str, got: list[dict[str, Any]]) -> None:
    """Publish a probe event until the receiver has seen one: its queue is then bound.

    On Redis, events are pub/sub messages: whatever is sent before the receiver has
    subscribed is lost, so the job is sent only after this returns.
    """
    app = Celery(broker=broker_url)
    with app.connection() as conn:
        probe = app.events.Dispatcher(conn)

        def seen() -> bool:
            probe.send("probe-ready")
            return any(e.get("type") == "probe-ready" for e in got)

        wait_for(seen, timeout=20, interval=0.1, what="the event receiver never subscribed")


def test_a_failed_copy_is_a_failed_task_and_logs_are_json_lines(
    json_stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str
) -> None:
    cdn.add("/obs-ok.png", os.urandom(6000), content_type="image/png")
    cdn.add("/obs-expired.png", os.urandom(6000), content_type="image/png")
    got: list[dict[str, Any]] = []
    stop = threading.Event()
    listener = threading.Thread(target=_events, args=(json_stack.redis_url, got, stop), daemon=True)
    listener.start()
    try:
        _wait_subscribed(json_stack.redis_url, got)
        with IngestClient(json_stack.api_url, json_stack.tokens["acme"]) as api:
            # Two jobs, so two tasks: a small job's assets travel in one delivery, and a
            # delivery with a failed asset is a failed task.
            dest = {"bucket": bucket, "endpoint_url": seaweed.endpoint_url}
            ok = api.submit([cdn.url("/obs-ok.png")], dest)
            job = api.submit([cdn.url("/obs-expired.png", mode="expired")], dest)
            for submitted, state in ((ok, "succeeded"), (job, "failed")):
                final = None
                for event in api.events(submitted.job_id):
                    final = event.job
                assert final is not None and final.state.value == state
            assert final is not None and final.error_codes == {"source_expired": 1}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(e.get("type") == "task-failed" for e in got):
            time.sleep(0.1)
    finally:
        stop.set()
        listener.join(5)
    types = {e.get("type") for e in got}
    assert {"task-received", "task-started", "task-succeeded", "task-failed"} <= types, types
    failed = [e for e in got if e.get("type") == "task-failed"]
    assert any("source_expired" in str(e.get("exception")) for e in failed), failed
    assert all("expired.png" not in str(e.get("exception")) for e in failed)  # no URLs

    # Celery prints its start banner and shutdown notice as text (not log records);
    # every log record is a JSON object: none in Celery's "[2026-..." or our text format.
    worker_log = json_stack.workers[0].log()
    lines = [ln for ln in worker_log.splitlines() if ln.strip()]
    parsed = [json.loads(ln) for ln in lines if ln.startswith("{")]
    assert parsed, worker_log[-2000:]
    text_records = [ln for ln in lines if re.match(r"^\[?\d{4}-\d\d-\d\d", ln)]
    assert not text_records, text_records[:5]
    assert {"ts", "level", "logger", "message"} <= set(parsed[0])
    tagged = [p for p in parsed if p.get("job_id") == job.job_id]
    assert tagged, [json.dumps(p)[:300] for p in parsed]
    assert all(p.get("tenant") == "acme" for p in tagged if "asset_id" in p and "tenant" in p)
    assert any("asset_id" in p and p.get("tenant") == "acme" for p in tagged)
    api_lines = [ln for ln in json_stack.api.log().splitlines() if ln.strip()]
    assert api_lines and all(json.loads(ln)["level"] for ln in api_lines), api_lines[:5]
