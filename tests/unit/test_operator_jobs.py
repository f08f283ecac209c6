"""The operator's view in-process: find, page, retry and watch jobs (issue 13).

The API runs on a TestClient over fakeredis (and real Redis for the cost checks),
with the store written the way workers write it.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
from fastapi.testclient import TestClient

from genblaze_s3.api import create_app
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.finalize.manifest import finalize_job
from genblaze_s3.ingest.models import AssetState, ErrorInfo, JobState
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import (
    FINALIZE_JOB,
    INGEST_ASSET,
    INGEST_ASSETS,
    MemorySender,
)
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {"tok-a": "acme", "tok-b": "globex"}
DEST = {"bucket": "media", "endpoint_url": "http://127.0.0.1:8333"}
POLICY = {"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:8333"}


def _h(tok: str = "tok-a") -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


SOURCE_KEY = "dGVzdC1vbmx5LWtleS1ub3QtYS1zZWNyZXQtMDAwMDA="  # Fernet format, tests only


def _app(
    client: redis.Redis, source_key: str | None = SOURCE_KEY
) -> tuple[TestClient, IngestService, MemorySender]:
    sender = MemorySender()
    service = IngestService(
        StatusStore(client),
        sender,
        "q",
        DestinationPolicy.from_settings(load_settings(POLICY)),
        SourceSealer(source_key),
        batch_max=16,
    )
    return TestClient(create_app(service, TOKENS)), service, sender


@pytest.fixture
def api() -> tuple[TestClient, IngestService, MemorySender]:
    return _app(fakeredis.FakeRedis())


def _submit(c: TestClient, n: int, tok: str = "tok-a", **extra: Any) -> str:
    body = {
        "assets": [{"url": f"https://cdn.x/a{i}.png?X-Amz-Signature=S{i}"} for i in range(n)],
        "destination": DEST,
        **extra,
    }
    r = c.post("/v1/jobs", json=body, headers=_h(tok))
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def _finish(store: StatusStore, job_id: str, aid: str, state: AssetState, **kw: Any) -> int:
    store.start_asset(job_id, aid, worker="h:1")
    if state in (AssetState.STORED, AssetState.DEDUPLICATED):
        kw = {"key": f"k/{aid}", "url": f"u/{aid}", "sha256": "0" * 64, "size": 10, **kw}
    return store.finish_asset(job_id, aid, state, **kw)


# -- 1. the queue extra, the worker command, the sink's queue -----------------------


def test_the_queue_extra_installs_httpx_and_it_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    queue = project["optional-dependencies"]["queue"]
    assert any(d.startswith("httpx") for d in queue), queue
    pins = (ROOT / "constraints.txt").read_text().split()
    assert any(p.startswith("httpx==") for p in pins)


def _procfile_worker() -> list[str]:
    line = next(
        ln for ln in (ROOT / "Procfile").read_text().splitlines() if ln.startswith("worker:")
    )
    return line.split(":", 1)[1].split()


def test_worker_runs_celery_through_this_interpreter_with_the_procfiles_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from genblaze_s3.cli import app as cli

    monkeypatch.setenv("GENBLAZE_WORKER_POOL", "threads")
    monkeypatch.setenv("GENBLAZE_WORKER_CONCURRENCY", "3")
    execs: list[list[str]] = []
    monkeypatch.setattr(cli.os, "execv", lambda path, argv: execs.append(list(argv)))
    cli.main(["worker"])
    (argv,) = execs
    assert argv[:3] == [sys.executable, "-m", "celery"]
    expected = [
        a.replace("${GENBLAZE_WORKER_POOL:-prefork}", "threads").replace(
            "${GENBLAZE_WORKER_CONCURRENCY:-2}", "3"
        )
        for a in _procfile_worker()[1:]
    ]
    assert sorted(argv[3:]) == sorted(expected)
    assert "--without-gossip" in argv and "--without-mingle" in argv and "-E" in argv


def test_the_sink_sends_to_the_queue_named_by_GENBLAZE_QUEUE(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from genblaze_s3.ingest import QueuedStorageSink
    from tests.unit.ingest_fixtures import make_manifest

    class Backend(SimpleNamespace):
        def get_durable_url(self, key: str) -> str:
            return f"http://127.0.0.1:8333/media/{key}"

    monkeypatch.setenv("GENBLAZE_QUEUE", "custom-q")
    sender = MemorySender()
    sink = QueuedStorageSink(
        Backend(bucket="media", endpoint_url="http://127.0.0.1:8333", region="us-east-1"),
        store=StatusStore(fakeredis.FakeRedis()),
        sender=sender,
        destination_policy=DestinationPolicy.from_settings(load_settings(POLICY)),
    )
    m = make_manifest(["https://cdn.invalid/a.png"])
    sink.write_run(m.run, m)
    assert [q for _, _, q in sender.sent] == ["custom-q"]


def test_celery_sends_task_events_for_flower() -> None:
    from workers.celery_app import SETTINGS

    assert SETTINGS["worker_send_task_events"] is True


# -- 2. jobs you can find and page ---------------------------------------------------


def test_list_shows_only_the_callers_jobs_newest_first_with_a_cursor(api: Any) -> None:
    c, _, _ = api
    mine = [_submit(c, 1) for _ in range(5)]
    theirs = _submit(c, 1, tok="tok-b")
    first = c.get("/v1/jobs?limit=2", headers=_h()).json()
    assert [j["job_id"] for j in first["jobs"]] == mine[::-1][:2]
    seen = [j["job_id"] for j in first["jobs"]]
    cursor = first["next_cursor"]
    while cursor:
        page = c.get("/v1/jobs", params={"limit": 2, "cursor": cursor}, headers=_h()).json()
        seen += [j["job_id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
    assert seen == mine[::-1] and theirs not in seen
    assert [j["job_id"] for j in c.get("/v1/jobs", headers=_h("tok-b")).json()["jobs"]] == [theirs]
    assert c.get("/v1/jobs").status_code == 401
    assert c.get("/v1/jobs?cursor=nonsense!", headers=_h()).json()["code"] == "invalid_cursor"


def test_list_filters_by_state_label_and_creation_time(api: Any) -> None:
    c, service, _ = api
    a = _submit(c, 1, labels={"team": "video", "env": "prod"})
    b = _submit(c, 1, labels={"team": "audio"})
    service.cancel(b)

    def ids(**params: Any) -> list[str]:
        r = c.get("/v1/jobs", params=params, headers=_h())
        assert r.status_code == 200, r.text
        return [j["job_id"] for j in r.json()["jobs"]]

    assert ids(state="canceled") == [b] and ids(state="queued") == [a]
    assert ids(label="team=video") == [a] and ids(label="env") == [a]
    assert ids(label="team=audio", state="canceled") == [b]
    created = c.get(f"/v1/jobs/{a}", headers=_h()).json()["created_at"]
    assert ids(created_after=created) == [b]
    assert ids(created_before=created) == []
    bad = c.post(
        "/v1/jobs",
        json={"assets": [{"url": "https://cdn.x/a"}], "destination": DEST, "labels": {"": "x"}},
        headers=_h(),
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_job"


def test_job_document_is_a_summary_plus_the_first_page_and_assets_page_by_state(
    api: Any,
) -> None:
    c, service, _ = api
    store = service.store
    job_id = _submit(c, 250)
    ids = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    for aid in ids[:3]:
        _finish(store, job_id, aid, AssetState.FAILED, error=ErrorInfo(code="source_expired"))
    _finish(store, job_id, ids[3], AssetState.FAILED, error=ErrorInfo(code="url_blocked"))
    for aid in ids[4:10]:
        _finish(store, job_id, aid, AssetState.STORED)
    store.start_asset(job_id, ids[10], worker="h:2")
    store.record_progress(job_id, ids[10], 5, 50)
    doc = c.get(f"/v1/jobs/{job_id}", headers=_h()).json()
    assert doc["state"] == "running"
    assert doc["counts"] == {
        "queued": 239,
        "copying": 1,
        "waiting_source": 0,
        "stored": 6,
        "deduplicated": 0,
        "failed": 4,
        "canceled": 0,
    }
    assert doc["error_codes"] == {"source_expired": 3, "url_blocked": 1}
    assert doc["progress"] == {
        "bytes_done": 65,
        "bytes_total": None,
        "assets_done": 10,
        "assets_total": 250,
    }
    assert [a["asset_id"] for a in doc["assets"]] == ids[:100] and doc["next_cursor"]
    rest = []
    cursor = doc["next_cursor"]
    while cursor:
        page = c.get(f"/v1/jobs/{job_id}/assets?cursor={cursor}", headers=_h()).json()
        rest += [a["asset_id"] for a in page["assets"]]
        cursor = page["next_cursor"]
    assert rest == ids[100:]
    failed = c.get(f"/v1/jobs/{job_id}/assets?state=failed&limit=3", headers=_h()).json()
    assert [a["asset_id"] for a in failed["assets"]] == ids[:3]
    more = c.get(
        f"/v1/jobs/{job_id}/assets",
        params={"state": "failed", "cursor": failed["next_cursor"]},
        headers=_h(),
    ).json()
    assert [(a["asset_id"], a["error"]["code"]) for a in more["assets"]] == [
        (ids[3], "url_blocked")
    ]
    assert more["next_cursor"] is None
    assert "Signature" not in json.dumps(doc)
    other = c.get(f"/v1/jobs/{job_id}/assets", headers=_h("tok-b"))
    assert other.status_code == 404


def _commands(client: redis.Redis) -> int:
    return int(client.info("stats")["total_commands_processed"])


def test_polling_a_job_costs_the_same_whatever_its_asset_count(redis_url: str) -> None:
    """Redis commands and bytes read per `GET /v1/jobs/{id}` do not grow with assets."""
    client = redis.Redis.from_url(redis_url)
    c, service, _ = _app(client)
    costs = []
    for n in (20, 2000):
        job_id = _submit(c, n)
        ids = service.store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
        _finish(service.store, job_id, ids[-1], AssetState.STORED)  # new version: no cache
        before = _commands(client)
        r = c.get(f"/v1/jobs/{job_id}?limit=10", headers=_h())
        costs.append((_commands(client) - before, len(r.content)))
    (cmd_small, size_small), (cmd_big, size_big) = costs
    assert cmd_small == cmd_big <= 6, costs
    assert size_big < 2 * size_small, costs


# -- 3. retry -------------------------------------------------------------------------


def test_retry_requeues_failed_assets_with_a_fresh_url_and_the_manifest_follows(
    api: Any,
) -> None:
    c, service, sender = api
    store = service.store
    job_id = _submit(c, 3)
    a, b, d = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    _finish(store, job_id, a, AssetState.STORED)
    _finish(store, job_id, b, AssetState.FAILED, error=ErrorInfo(code="source_expired"))
    left = _finish(store, job_id, d, AssetState.CANCELED, error=ErrorInfo(code="canceled"))
    assert left == 0
    assert c.post(f"/v1/jobs/{job_id}/retry", headers=_h()).status_code == 409  # running
    written: list[str] = []

    class Backend:
        def exists(self, key: str) -> bool:
            return False

        def put(self, key: str, data: bytes, **kw: Any) -> None:
            written.append(key)

        def get_durable_url(self, key: str) -> str:
            return "u/" + key

    assert finalize_job(store, lambda _: Backend(), job_id) == JobState.CANCELED
    assert written == []
    sender.sent.clear()
    bad = c.post(
        f"/v1/jobs/{job_id}/retry",
        json={"replacements": [{"asset_id": a, "url": "https://cdn.x/new"}]},
        headers=_h(),
    )
    assert bad.status_code == 422  # `a` is stored: nothing to replace
    blocked = c.post(
        f"/v1/jobs/{job_id}/retry",
        json={"replacements": [{"asset_id": b, "url": "file:///etc/passwd"}]},
        headers=_h(),
    )
    assert blocked.status_code == 422 and store.job_state(job_id) == JobState.CANCELED
    assert c.post(f"/v1/jobs/{job_id}/retry", headers=_h("tok-b")).status_code == 404
    r = c.post(
        f"/v1/jobs/{job_id}/retry",
        json={"replacements": [{"asset_id": b, "url": "https://cdn.x/fresh.png?sig=NEW"}]},
        headers=_h(),
    )
    assert r.status_code == 202, r.text
    assert r.json() == {"job_id": job_id, "state": "running", "retried": [b, d]}
    assert sender.sent == [(INGEST_ASSETS, [job_id, [b, d]], "q")] or sender.sent == [
        (INGEST_ASSET, [job_id, b], "q"),
        (INGEST_ASSET, [job_id, d], "q"),
    ]
    doc = c.get(f"/v1/jobs/{job_id}", headers=_h()).json()
    assert doc["state"] == "running" and doc["error"] is None
    assert doc["counts"]["queued"] == 2 and doc["counts"]["stored"] == 1
    assert doc["error_codes"] == {}

    def source(aid: str) -> str:
        return service.sealer.unseal_source(store.source(job_id, aid) or "").url

    assert source(b).endswith("sig=NEW") and source(d).startswith("https://cdn.x/a2")
    assert c.post(f"/v1/jobs/{job_id}/retry", headers=_h()).status_code == 409
    assert store.remaining(job_id) == 2
    _finish(store, job_id, b, AssetState.STORED)
    assert _finish(store, job_id, d, AssetState.STORED) == 0
    assert finalize_job(store, lambda _: Backend(), job_id) == JobState.SUCCEEDED
    assert len(written) == 1
    assert c.post(f"/v1/jobs/{job_id}/retry", headers=_h()).status_code == 409  # succeeded
    stats = store.stats()
    assert stats["jobs_retried"] == 1 and stats["assets_retried"] == 2


def test_without_a_source_key_a_retry_needs_fresh_urls_for_failed_assets() -> None:
    """Raw URLs never outlive their asset's copy; the retry says what it needs."""
    c, service, _ = _app(fakeredis.FakeRedis(), source_key=None)
    store = service.store
    job_id = _submit(c, 1)
    (a,) = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    _finish(store, job_id, a, AssetState.FAILED, error=ErrorInfo(code="source_expired"))
    assert store.source(job_id, a) is None
    finalize_job(store, lambda _: None, job_id)
    r = c.post(f"/v1/jobs/{job_id}/retry", headers=_h())
    assert r.status_code == 422 and "replacement" in r.json()["detail"]
    r = c.post(
        f"/v1/jobs/{job_id}/retry",
        json={"replacements": [{"asset_id": a, "url": "https://cdn.x/again.png"}]},
        headers=_h(),
    )
    assert r.status_code == 202 and r.json()["retried"] == [a]


def test_a_failed_manifest_write_retries_as_a_finalize(api: Any) -> None:
    c, service, sender = api
    store = service.store
    job_id = _submit(c, 1)
    (a,) = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    _finish(store, job_id, a, AssetState.STORED)
    store.transition_job(job_id, JobState.FAILED, error=ErrorInfo(code="manifest_write_failed"))
    sender.sent.clear()
    assert c.post(f"/v1/jobs/{job_id}/retry", headers=_h()).json()["retried"] == []
    assert sender.sent == [(FINALIZE_JOB, [job_id], "q")]


# -- 4. events ------------------------------------------------------------------------


def test_events_resume_from_last_event_id_and_end_at_the_terminal_state(api: Any) -> None:
    c, service, _ = api
    store = service.store
    job_id = _submit(c, 1)
    (a,) = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    _finish(store, job_id, a, AssetState.FAILED, error=ErrorInfo(code="source_expired"))
    store.transition_job(job_id, JobState.FAILED)
    with c.stream("GET", f"/v1/jobs/{job_id}/events", headers=_h()) as r:
        body = r.read().decode()
    assert "event: job" in body
    version = next(ln[4:] for ln in body.splitlines() if ln.startswith("id: "))
    data = json.loads(next(ln[6:] for ln in body.splitlines() if ln.startswith("data: ")))
    assert data["state"] == "failed" and data["counts"]["failed"] == 1
    with c.stream(
        "GET", f"/v1/jobs/{job_id}/events", headers={**_h(), "Last-Event-ID": version.strip()}
    ) as r:
        assert "data:" not in r.read().decode()  # nothing new since that version
    assert c.get(f"/v1/jobs/{job_id}/events", headers=_h("tok-b")).status_code == 404


# -- 7. metrics by the Prometheus conventions ---------------------------------------


def test_metrics_follow_prometheus_naming_with_a_copy_duration_histogram(api: Any) -> None:
    c, service, _ = api
    store = service.store
    job_id = _submit(c, 3)
    a, b, d = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    _finish(store, job_id, a, AssetState.STORED, copy_seconds=0.05)
    _finish(store, job_id, b, AssetState.STORED, copy_seconds=3.0)
    _finish(store, job_id, d, AssetState.STORED, copy_seconds=7200.0)
    text = c.get("/metrics").text
    assert 'genblaze_copy_duration_seconds_bucket{le="0.1"} 1.0' in text
    assert 'genblaze_copy_duration_seconds_bucket{le="5.0"} 2.0' in text
    assert 'genblaze_copy_duration_seconds_bucket{le="3600.0"} 2.0' in text
    assert 'genblaze_copy_duration_seconds_bucket{le="+Inf"} 3.0' in text
    assert "genblaze_copy_duration_seconds_count 3.0" in text
    assert "genblaze_ingested_bytes_total 30.0" in text
    assert "genblaze_job_retries_total" in text and "genblaze_asset_retries_total" in text
    assert "process_cpu_seconds_total" in text or "python_info" in text
    assert "genblaze_copy_seconds_sum" not in text and "genblaze_copy_count" not in text


def test_counter_deltas_follow_an_asset_through_its_states() -> None:
    from genblaze_s3.ingest.store.counters import delta, totals

    queued = {"asset_id": "a", "state": "queued", "bytes_done": 0, "bytes_total": None}
    copying = {**queued, "state": "copying", "bytes_done": 10, "bytes_total": 100}
    failed = {**copying, "state": "failed", "error": {"code": "source_expired"}}
    assert totals([queued]) == {"n:queued": 1, "bytes_done": 0, "bytes_unknown": 1}
    assert delta(queued, copying) == {
        "n:copying": 1,
        "n:queued": -1,
        "bytes_done": 10,
        "bytes_total": 100,
        "bytes_unknown": -1,
    }
    assert delta(copying, failed) == {"n:failed": 1, "n:copying": -1, "e:source_expired": 1}
    assert delta(failed, queued) == {
        "n:queued": 1,
        "n:failed": -1,
        "bytes_done": -10,
        "bytes_total": -100,
        "bytes_unknown": 1,
        "e:source_expired": -1,
    }
