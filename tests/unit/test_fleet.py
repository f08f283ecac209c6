"""The fleet view in-process (issue 22, items 3-4): operator tokens and roles, the
snapshot (workers, series, failures by code), bulk retry with a dry-run count, the
audit log, the same numbers in /v1/fleet and /metrics, and the two-part bars."""

from __future__ import annotations

import json
import time

import fakeredis
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from genblaze_s3.api import create_app
from genblaze_s3.api.ui.views import Bar
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.models import AssetState, ErrorInfo, JobState
from genblaze_s3.ingest.operators import OperatorRegistry, OperatorRole, operators_from_settings
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store.fleet import FleetStore, QueueStats, WorkerBeat
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import INGEST_ASSET, MemorySender
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.ingest.tenants import TenantConfigError, TenantRegistry
from genblaze_s3.settings import load_settings

TOKENS = {"tok-a": "acme", "tok-b": "globex"}
DEST = {"bucket": "media", "endpoint_url": "http://127.0.0.1:8333"}
OPS = "root:op-admin:admin,watcher:op-view"
KEY = "dGVzdC1vbmx5LWtleS1ub3QtYS1zZWNyZXQtMDAwMDA="
QUEUES = [QueueStats(name="genblaze-ingest", depth=7, oldest_age_seconds=12.5)]


class Fleet:
    def __init__(self) -> None:
        self.redis = fakeredis.FakeRedis()
        self.store = StatusStore(self.redis)
        self.sender = MemorySender()
        policy = DestinationPolicy.from_settings(
            load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": DEST["endpoint_url"]})
        )
        app = create_app(
            # Sealed sources (as in production): a failed asset keeps its source for a retry.
            IngestService(self.store, self.sender, "q", policy, SourceSealer(KEY)),
            TOKENS,
            queue_stats=lambda: QUEUES,
            operators=OperatorRegistry.from_tokens(OPS),
        )
        self.c = TestClient(app)

    def submit(self, token: str, n: int, labels: dict[str, str] | None = None) -> str:
        body = {
            "assets": [{"url": f"https://cdn.x/{i}.png"} for i in range(n)],
            "destination": DEST,
            "labels": labels or {},
        }
        r = self.c.post("/v1/jobs", json=body, headers=_h(token))
        assert r.status_code == 202, r.text
        return str(r.json()["job_id"])

    def finish(self, job_id: str, states: list[tuple[AssetState, str | None]]) -> None:
        """Copy the job's assets to these end states; fail the job if any failed."""
        ids = json.loads(self.redis.hget(f"genblaze:job:{job_id}", "meta"))["asset_ids"]
        for asset_id, (state, code) in zip(ids, states, strict=True):
            self.store.start_asset(job_id, asset_id, worker="w1")
            if state is AssetState.FAILED:
                self.store.finish_asset(job_id, asset_id, state, error=ErrorInfo(code=code or "x"))
            else:
                self.store.finish_asset(
                    job_id,
                    asset_id,
                    state,
                    key=f"k/{asset_id}",
                    url="u",
                    sha256="0" * 64,
                    size=1000,
                )
        failed = any(s is AssetState.FAILED for s, _ in states)
        self.store.transition_job(job_id, JobState.FAILED if failed else JobState.SUCCEEDED)


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def fleet() -> Fleet:
    return Fleet()


def test_only_operator_tokens_open_the_fleet_and_they_own_no_jobs(fleet: Fleet) -> None:
    assert fleet.c.get("/v1/fleet").status_code == 401
    assert fleet.c.get("/v1/fleet", headers=_h("nope")).status_code == 401
    assert fleet.c.get("/v1/fleet", headers=_h("tok-a")).status_code == 403  # a tenant's
    assert fleet.c.get("/v1/fleet", headers=_h("op-view")).status_code == 200
    assert fleet.c.get("/v1/jobs", headers=_h("op-admin")).status_code == 401
    assert fleet.c.post("/v1/jobs", json={}, headers=_h("op-admin")).status_code == 401


def test_snapshot_shows_workers_queues_series_and_failures_by_code(fleet: Fleet) -> None:
    now = time.time()
    fs = FleetStore(fleet.redis)
    for host, age in (("celery@a", 1.0), ("celery@b", 2.0), ("celery@gone", 60.0)):
        fs.beat(
            WorkerBeat(
                host=host,
                pid=1,
                pool="prefork",
                concurrency=2,
                active=1,
                active_jobs=["j"],
                started_at=now - 100,
                heartbeat_at=now - age,
            )
        )
    ok = fleet.submit("tok-a", 2)
    bad = fleet.submit("tok-b", 3)
    fleet.finish(ok, [(AssetState.STORED, None)] * 2)
    fleet.finish(
        bad,
        [
            (AssetState.STORED, None),
            (AssetState.FAILED, "source_expired"),
            (AssetState.FAILED, "source_unavailable"),
        ],
    )
    snap = fleet.c.get("/v1/fleet", headers=_h("op-view")).json()
    alive = {w["host"]: w["alive"] for w in snap["workers"]}
    assert alive == {"celery@a": True, "celery@b": True, "celery@gone": False}
    assert snap["queues"] == [q.model_dump() for q in QUEUES]
    assert snap["totals"] == {
        "jobs_submitted": 2,
        "assets_stored": 3,
        "assets_failed": 2,
        "bytes_ingested": 3000,
    }
    assert snap["failures_by_code"] == {"source_expired": 1, "source_unavailable": 1}
    assert len(snap["series"]) == 6 * 60
    last = snap["series"][-1]
    assert (last["ok"], last["failed"], last["bytes"]) == (3, 2, 3000)
    five = snap["rates"][0]
    assert five["window_seconds"] == 300 and five["failure_rate"] == 0.4
    assert five["assets_per_second"] == round(3 / 300, 4)


def test_metrics_show_the_same_numbers_as_the_fleet(fleet: Fleet) -> None:
    job = fleet.submit("tok-a", 3)
    fleet.finish(
        job,
        [(AssetState.STORED, None), (AssetState.FAILED, "too_large")]
        + [(AssetState.DEDUPLICATED, None)],
    )
    snap = fleet.c.get("/v1/fleet", headers=_h("op-view")).json()
    families = {f.name: f for f in text_string_to_metric_families(fleet.c.get("/metrics").text)}

    def value(name: str, **labels: str) -> float:
        for s in families[name].samples:
            if s.name.endswith(("_created",)):
                continue
            if all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
        raise AssertionError(f"{name} {labels} missing")

    stored = value("genblaze_assets", state="stored") + value(
        "genblaze_assets", state="deduplicated"
    )
    assert stored == snap["totals"]["assets_stored"] == 2
    assert value("genblaze_assets", state="failed") == snap["totals"]["assets_failed"] == 1
    assert value("genblaze_ingested_bytes") == snap["totals"]["bytes_ingested"]
    assert value("genblaze_assets_failed_by_code", code="too_large") == 1
    assert value("genblaze_queue_depth") == snap["queues"][0]["depth"] == 7
    age = value("genblaze_queue_oldest_message_age_seconds", queue="genblaze-ingest")
    assert age == snap["queues"][0]["oldest_age_seconds"]
    assert value("genblaze_workers_alive") == sum(w["alive"] for w in snap["workers"])


def test_bulk_retry_counts_first_then_acts_on_that_set_and_is_audited(fleet: Fleet) -> None:
    expired = [fleet.submit("tok-a", 1, {"batch": "b1"}) for _ in range(2)]
    other = fleet.submit("tok-b", 1, {"batch": "b1"})
    fine = fleet.submit("tok-a", 1)
    for j in expired:
        fleet.finish(j, [(AssetState.FAILED, "source_expired")])
    fleet.finish(other, [(AssetState.FAILED, "checksum_mismatch")])
    fleet.finish(fine, [(AssetState.STORED, None)])
    act = {"action": "retry", "error_code": "source_expired"}
    dry = fleet.c.post("/v1/fleet/actions", json=act, headers=_h("op-admin")).json()
    assert dry["dry_run"] and dry["matched"] == 2 and set(dry["job_ids"]) == set(expired)
    # Other filters: per tenant, per label, everything failed.
    by = {"action": "retry", "label": "batch=b1", "tenant": "globex"}
    assert fleet.c.post("/v1/fleet/actions", json=by, headers=_h("op-admin")).json()["job_ids"] == [
        other
    ]
    every = fleet.c.post("/v1/fleet/actions", json={"action": "retry"}, headers=_h("op-view"))
    assert every.json()["matched"] == 3
    # Acting needs the count; a viewer cannot act; a stale count is refused.
    real = {**act, "dry_run": False}
    r = fleet.c.post("/v1/fleet/actions", json=real, headers=_h("op-admin"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "expected_count"
    r = fleet.c.post("/v1/fleet/actions", json={**real, "expected_count": 2}, headers=_h("op-view"))
    assert r.status_code == 403
    r = fleet.c.post(
        "/v1/fleet/actions", json={**real, "expected_count": 5}, headers=_h("op-admin")
    )
    assert r.status_code == 409 and r.json()["code"] == "count_changed"
    fleet.sender.sent.clear()
    r = fleet.c.post(
        "/v1/fleet/actions", json={**real, "expected_count": 2}, headers=_h("op-admin")
    )
    assert r.status_code == 200 and r.json()["done"] == 2, r.text
    assert {a[0] for n, a, _ in fleet.sender.sent if n == INGEST_ASSET} == set(expired)
    assert all(fleet.store.job_state(j) == JobState.RUNNING for j in expired)
    assert fleet.store.job_state(other) == JobState.FAILED
    log = fleet.c.get("/v1/fleet/audit", headers=_h("op-view")).json()["entries"]
    assert [(e["operator"], e["action"]) for e in log[:3]] == [
        ("root", "retry"),
        ("root", "retry_refused_count_changed"),
        ("watcher", "retry_dry_run"),
    ]
    assert log[0]["detail"]["error_code"] == "source_expired" and log[0]["detail"]["done"] == 2
    # The log is in the store: a new API process on the same Redis still shows it.
    again = create_app(
        IngestService(fleet.store, MemorySender(), "q", DestinationPolicy()),
        TOKENS,
        operators=OperatorRegistry.from_tokens(OPS),
    )
    fresh = TestClient(again).get("/v1/fleet/audit", headers=_h("op-view")).json()["entries"]
    assert fresh == log


def test_bad_filters_are_422_never_5xx(fleet: Fleet) -> None:
    for body in (
        {"action": "explode"},
        {"action": "retry", "error_code": "Not A Code"},
        {"action": "retry", "tenant": "../x"},
        {"action": "retry", "expected_count": -1, "dry_run": False},
        {"action": "cancel", "state": "nope"},
    ):
        r = fleet.c.post("/v1/fleet/actions", json=body, headers=_h("op-admin"))
        assert r.status_code == 422, body
    # A state the action does not pick from matches nothing.
    r = fleet.c.post(
        "/v1/fleet/actions", json={"action": "cancel", "state": "failed"}, headers=_h("op-admin")
    )
    assert r.status_code == 200 and r.json()["matched"] == 0


def test_operator_config_roles_and_collisions(tmp_path: pytest.TempPathFactory) -> None:
    ops = OperatorRegistry.from_tokens("a:t1:admin,b:t2")
    assert ops.operators["a"].role is OperatorRole.ADMIN
    assert ops.operators["b"].role is OperatorRole.VIEWER and not ops.operators["b"].can_act
    for bad in ("a", "a:t1:root", "a:t1:admin,a:t2:viewer", "a:t1,b:t1"):
        with pytest.raises(TenantConfigError):
            OperatorRegistry.from_tokens(bad)
    with pytest.raises(TenantConfigError):
        OperatorRegistry.from_tokens("a:shared").check_disjoint(
            TenantRegistry.from_api_tokens("acme:shared")
        )
    path = tmp_path / "tenants.toml"  # type: ignore[operator]
    path.write_text(
        '[tenants.acme]\ntokens = ["ta"]\n[operators.ops]\ntokens = ["to"]\nrole = "admin"\n'
    )
    from_file = operators_from_settings(str(path), None)
    assert from_file.operators["ops"].can_act
    with pytest.raises(TenantConfigError):
        operators_from_settings(str(path), "x:y")


def test_a_failed_jobs_bar_is_red_and_a_partly_failed_one_shows_both() -> None:
    def doc(state: str, stored: int, failed: int, total: int) -> dict[str, object]:
        done = stored + failed
        return {
            "state": state,
            "counts": {"stored": stored, "failed": failed},
            "progress": {
                "assets_total": total,
                "assets_done": done,
                "bytes_total": 0,
                "bytes_done": 0,
            },
        }

    assert Bar.of(doc("failed", 0, 2, 2)) == Bar(0, 100)
    assert Bar.of(doc("failed", 3, 1, 4)) == Bar(75, 25)
    assert Bar.of(doc("succeeded", 4, 0, 4)) == Bar(100, 0)
    assert Bar.of(doc("running", 1, 1, 4)) == Bar(50, 25)


def _ui_sign_in(c: Fleet, token: str) -> tuple[TestClient, str]:
    ui = TestClient(c.c.app, headers={"Origin": "http://testserver"})
    r = ui.post("/ui/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = ui.get(r.headers["location"], follow_redirects=False)
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return ui, csrf


def test_fleet_page_dry_run_then_confirm_and_roles(fleet: Fleet) -> None:
    failed = [fleet.submit("tok-a", 1) for _ in range(3)]
    for j in failed:
        fleet.finish(j, [(AssetState.FAILED, "source_expired")])
    # A tenant has no fleet page; an operator has no jobs page.
    tenant, _ = _ui_sign_in(fleet, "tok-a")
    assert tenant.get("/ui/fleet").status_code == 403
    assert tenant.get("/ui/fleet.json").status_code == 403
    viewer, vcsrf = _ui_sign_in(fleet, "op-view")
    assert viewer.get("/ui", follow_redirects=False).headers["location"] == "/ui/fleet"
    form = {"action": "retry", "error_code": "source_expired", "dry_run": "1"}
    page = viewer.post("/ui/fleet/actions", data={**form, "csrf": vcsrf}).text
    assert 'id="match-count">3<' in page and "confirm-action" not in page
    assert "read-only operator" in page
    # The admin counts, then confirms with that count.
    admin, csrf = _ui_sign_in(fleet, "op-admin")
    assert admin.post("/ui/fleet/actions", data={**form, "csrf": "forged"}).status_code == 403
    page = admin.post("/ui/fleet/actions", data={**form, "csrf": csrf}).text
    assert 'id="match-count">3<' in page and 'name="expected_count" value="3"' in page
    confirm = {**form, "dry_run": "0", "expected_count": "3", "csrf": csrf}
    r = admin.post("/ui/fleet/actions", data=confirm, follow_redirects=False)
    assert r.status_code == 303
    done = admin.get(r.headers["location"]).text
    assert "retry: 3 of 3 jobs" in done and "retry_dry_run" in done
    # A stale count is refused on the page, not acted on.
    again = admin.post("/ui/fleet/actions", data=confirm).text
    assert "refused: 0 jobs match now, not 3" in again
    assert (
        fleet.c.get("/v1/fleet/audit", headers=_h("op-view")).json()["entries"][0]["action"]
        == "retry_refused_count_changed"
    )
    # The notice is built from numbers: no text is reflected into the page.
    spoof = admin.get("/ui/fleet", params={"done": "<b>x</b>"})
    assert spoof.status_code == 422


def test_bulk_cancel_stops_the_running_jobs_of_a_label(fleet: Fleet) -> None:
    running = [fleet.submit("tok-a", 2, {"batch": "old"}) for _ in range(2)]
    keep = fleet.submit("tok-a", 2, {"batch": "new"})
    act = {"action": "cancel", "label": "batch=old"}
    dry = fleet.c.post("/v1/fleet/actions", json=act, headers=_h("op-admin")).json()
    assert dry["matched"] == 2 and set(dry["job_ids"]) == set(running)
    r = fleet.c.post(
        "/v1/fleet/actions",
        json={**act, "dry_run": False, "expected_count": 2},
        headers=_h("op-admin"),
    )
    assert r.json()["done"] == 2
    assert {fleet.store.job_state(j) for j in running} == {JobState.CANCELED}
    assert fleet.store.job_state(keep) == JobState.QUEUED


def test_a_worker_describes_itself_from_celerys_state() -> None:
    from types import SimpleNamespace

    from celery.worker import state

    from workers.heartbeat import describe

    class Request:  # what the heartbeat reads of celery.worker.request.Request
        def __init__(self, args: list[object], task_name: str) -> None:
            self.args, self.task_name = args, task_name

    req = Request(["job-1", ["a", "b", "c"]], "genblaze.ingest_assets")
    single = Request(["job-2", "a"], "genblaze.ingest_asset")
    consumer = SimpleNamespace(
        hostname="celery@h1",
        controller=SimpleNamespace(
            pool_cls=type("TaskPool", (), {"__module__": "celery.concurrency.prefork"}),
            concurrency=4,
        ),
        app=SimpleNamespace(
            amqp=SimpleNamespace(
                queues=SimpleNamespace(consume_from={"q": SimpleNamespace(name="genblaze-ingest")})
            )
        ),
    )
    state.active_requests.add(req)  # type: ignore[arg-type]
    state.active_requests.add(single)  # type: ignore[arg-type]
    try:
        beat = describe(consumer, started_at=1.0)
    finally:
        state.active_requests.discard(req)  # type: ignore[arg-type]
        state.active_requests.discard(single)  # type: ignore[arg-type]
    assert (beat.host, beat.pool, beat.concurrency) == ("celery@h1", "prefork", 4)
    assert beat.active == 4 and sorted(beat.active_jobs) == ["job-1", "job-2"]
    assert beat.queues == ["genblaze-ingest"]


def test_the_rabbitmq_head_is_read_at_most_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading the head flags it redelivered (a worker then runs that chunk one asset at
    a time): a fleet page polling every 2 s must not do it every time."""
    from genblaze_s3.api import broker

    class Channel:
        def __init__(self) -> None:
            self.gets = 0
            self.rejected: list[int] = []

        def basic_get(self, queue: str, no_ack: bool) -> object:
            self.gets += 1
            return type("M", (), {"headers": {"genblaze_sent_at": 100.0}, "delivery_tag": 7})()

        def basic_reject(self, tag: int, requeue: bool) -> None:
            assert requeue
            self.rejected.append(tag)

    clock = [1000.0]
    monkeypatch.setattr(broker.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(broker.time, "time", lambda: 130.0)
    probe = broker.BrokerProbe("amqp://guest:guest@127.0.0.1:5672//", ["q"])
    ch = Channel()
    assert probe._amqp_age(ch, "q") == 30.0
    clock[0] += broker.AMQP_PEEK_SECONDS - 1
    assert probe._amqp_age(ch, "q") == 30.0 and ch.gets == 1
    clock[0] += 1
    probe._amqp_age(ch, "q")
    assert ch.gets == 2 and ch.rejected == [7, 7]
