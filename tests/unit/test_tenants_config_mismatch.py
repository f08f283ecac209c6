"""A submitter whose tenant rules place a job where no worker writes fails at submit,
naming the setting (issue 21, item 6); workers publish their placement rules."""

from __future__ import annotations

import time
from types import SimpleNamespace

import fakeredis
import pytest
from fastapi.testclient import TestClient
from genblaze_core.exceptions import SinkError

from genblaze_s3.api import create_app
from genblaze_s3.ingest import QueuedStorageSink
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.errors import TenantsConfigMismatchError
from genblaze_s3.ingest.store import placement
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import MemorySender
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.ingest.tenants import TenantRegistry
from genblaze_s3.settings import load_settings
from tests.unit.ingest_fixtures import make_manifest

ENDPOINT = "http://127.0.0.1:8333"
WORKERS = TenantRegistry.from_api_tokens("acme:tok-a,globex:tok-b")  # roots acme/, globex/


class FakeBackend(SimpleNamespace):
    def get_durable_url(self, key: str) -> str:
        return f"{self.endpoint_url}/{self.bucket}/{key}"


def _sink(client: fakeredis.FakeRedis, tenants: TenantRegistry) -> QueuedStorageSink:
    return QueuedStorageSink(
        FakeBackend(bucket="media", endpoint_url=ENDPOINT, region="us-east-1"),
        tenant="acme",
        store=StatusStore(client),
        sender=MemorySender(),
        destination_policy=DestinationPolicy.from_settings(
            load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": ENDPOINT})
        ),
        tenants=tenants,
    )


def test_a_sink_without_the_workers_tenants_config_fails_at_write_run() -> None:
    client = fakeredis.FakeRedis()
    placement.Placements(client).publish(WORKERS)  # what every worker does at start
    sink = _sink(client, TenantRegistry())  # this process has no tenants config
    m = make_manifest(["https://cdn.invalid/a.png"])
    with pytest.raises(SinkError) as info:
        sink.write_run(m.run, m)
    cause = info.value.__cause__
    assert isinstance(cause, TenantsConfigMismatchError)
    text = str(info.value)
    assert "GENBLAZE_TENANTS_FILE" in text and "GENBLAZE_API_TOKENS" in text
    assert "'acme'" in text and WORKERS.placement_fingerprint() in text
    assert "tok-a" not in text
    assert not client.keys("genblaze:job:*")  # refused before anything was recorded


def test_the_workers_config_or_no_worker_yet_is_accepted() -> None:
    client = fakeredis.FakeRedis()
    m = make_manifest(["https://cdn.invalid/a.png"])
    _sink(client, TenantRegistry()).write_run(m.run, m)  # no worker ever seen: nothing to compare
    placement.Placements(client).publish(WORKERS)
    sink = _sink(client, TenantRegistry.from_api_tokens("acme:other-token,globex:x"))
    sink.write_run(m.run, m)  # same placement rules (tokens differ: not placement)
    assert sink.last_job is not None


def test_rules_no_live_worker_runs_any_more_do_not_count() -> None:
    client = fakeredis.FakeRedis()
    placement.Placements(client).publish(WORKERS, now=time.time() - placement.LIVE_FOR - 1)
    assert placement.Placements(client).live() == {}
    m = make_manifest(["https://cdn.invalid/a.png"])
    sink = _sink(client, TenantRegistry())
    sink.write_run(m.run, m)  # the only rules seen are stale: nothing live to compare
    assert sink.last_job is not None


def test_the_published_rules_carry_no_secret_and_fingerprint_the_placement() -> None:
    client = fakeredis.FakeRedis()
    fp = placement.Placements(client).publish(
        TenantRegistry.from_api_tokens("acme:SECRET1,globex:SECRET2")
    )
    stored = b"".join(v for v in client.hvals("genblaze:placement:rules"))
    assert b"SECRET" not in stored and b"acme" in stored
    assert fp == TenantRegistry.from_api_tokens("acme:a,globex:b").placement_fingerprint()
    assert fp != TenantRegistry.from_api_tokens("acme:a").placement_fingerprint()  # no roots


def test_the_api_answers_a_mismatch_with_a_problem_naming_the_setting() -> None:
    client = fakeredis.FakeRedis()
    placement.Placements(client).publish(
        TenantRegistry.from_api_tokens("acme:a,globex:b,initech:c")
    )
    api_tenants = TenantRegistry.from_api_tokens("acme:tok-a")
    service = IngestService(
        StatusStore(client),
        MemorySender(),
        "q",
        DestinationPolicy.from_settings(load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": ENDPOINT})),
        tenants=api_tenants,  # one tenant: no root; the workers (three tenants) root it
    )
    api = TestClient(create_app(service, {"tok-a": "acme"}))
    r = api.post(
        "/v1/jobs",
        json={
            "assets": [{"url": "https://cdn.invalid/a.png"}],
            "destination": {"bucket": "media", "endpoint_url": ENDPOINT},
        },
        headers={"Authorization": "Bearer tok-a"},
    )
    assert r.status_code == 503 and r.json()["code"] == "tenants_config_mismatch", r.text
    assert "GENBLAZE_TENANTS_FILE" in r.text and "tok-a" not in r.text
