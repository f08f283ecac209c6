"""`genblaze-ingest fleet`: the /v1/fleet snapshot on stdout, by the CLI's output rules.

The API runs on a real socket (uvicorn, fakeredis behind it); the CLI runs in-process
with pytest capturing stdout and stderr, which is a pipe: pure JSON with --json, tab-
separated records otherwise, errors as one line on stderr and an exit code.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import fakeredis
import httpx
import pytest
import uvicorn

from genblaze_s3.api import create_app
from genblaze_s3.cli import app as cli
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.models import AssetState
from genblaze_s3.ingest.operators import OperatorRegistry
from genblaze_s3.ingest.store.fleet import FleetStore, QueueStats, WorkerBeat
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import MemorySender
from genblaze_s3.ingest.submit.service import IngestService
from tests.unit.test_operator_cli import _free_port


class _FleetServer:
    def __init__(self) -> None:
        self.redis = fakeredis.FakeRedis()
        self.store = StatusStore(self.redis)
        service = IngestService(self.store, MemorySender(), "q", DestinationPolicy())
        app = create_app(
            service,
            {"tok-a": "acme"},
            queue_stats=lambda: [
                QueueStats(name="genblaze-ingest", depth=3, oldest_age_seconds=4.0)
            ],
            operators=OperatorRegistry.from_tokens("watch:op-view"),
        )
        self.port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            assert self.thread.is_alive(), "API did not start"
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def api() -> Iterator[_FleetServer]:
    s = _FleetServer()
    now = time.time()
    FleetStore(s.redis).beat(
        WorkerBeat(
            host="celery@w0",
            pid=7,
            pool="prefork",
            concurrency=2,
            active=1,
            started_at=now - 10,
            heartbeat_at=now,
        )
    )
    s.store.incr_stat("jobs_submitted", 1)
    s.store.incr_stat("failed_code:source_expired", 2)
    try:
        yield s
    finally:
        s.stop()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_fleet_json_is_the_v1_fleet_document_and_nothing_else(
    api: _FleetServer, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = _run(capsys, "fleet", "--api-url", api.url, "--token", "op-view", "--json")
    assert rc == 0 and err == ""
    doc = json.loads(out)  # one document: json.loads would fail on anything around it
    direct = httpx.get(f"{api.url}/v1/fleet", headers={"Authorization": "Bearer op-view"}).json()
    assert doc["totals"] == direct["totals"] and doc["queues"] == direct["queues"]
    assert doc["failures_by_code"] == {"source_expired": 2}
    assert [w["host"] for w in doc["workers"]] == ["celery@w0"]


def test_fleet_on_a_pipe_prints_whole_tab_separated_records(
    api: _FleetServer, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = _run(capsys, "fleet", "--api-url", api.url, "--token", "op-view")
    assert rc == 0 and err == ""
    rows = [line.split("\t") for line in out.splitlines()]
    kinds = {r[0] for r in rows}
    assert kinds == {"worker", "queue", "rate", "totals", "failures"}
    worker = next(r for r in rows if r[0] == "worker")
    assert worker[:6] == ["worker", "celery@w0", "alive", "prefork", "2", "1"]
    assert ["queue", "genblaze-ingest", "3", "4.0"] in rows
    assert ["failures", "source_expired", "2"] in rows
    assert "\x1b[" not in out  # no colour on a pipe


def test_fleet_with_a_tenant_token_is_refused_with_one_line(
    api: _FleetServer, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = _run(capsys, "fleet", "--api-url", api.url, "--token", "tok-a")
    assert rc == 4 and out == ""
    assert len(err.strip().splitlines()) == 1 and "operator" in err


def test_a_finished_asset_counts_in_its_minute_of_the_series() -> None:
    # '@' counters go to the series hash in the asset's CAS script (counters.ASSET_CAS).
    from genblaze_s3.ingest.store.stats import series_counters

    assert series_counters(AssetState.FAILED, None, 120.0) == [("@2:failed", 1)]
    assert series_counters(AssetState.STORED, 10, 61.0) == [("@1:ok", 1), ("@1:bytes", 10)]
    assert series_counters(AssetState.CANCELED, 10, 61.0) == []
