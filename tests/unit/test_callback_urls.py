"""A callback URL (notify_url, refresh_url) may carry a token: it leaves the store once
its last use is over, with or without GENBLAZE_SOURCE_KEY (issue 21, item 7)."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from moto import mock_aws

from genblaze_s3 import S3StorageBackend
from genblaze_s3.ingest.finalize.manifest import finalize_job
from genblaze_s3.ingest.models import AssetState, DestinationSpec, ErrorInfo, JobState
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.submission import build_submission
from tests.unit.ingest_fixtures import make_manifest

KEY = "dGVzdC1vbmx5LWtleS1ub3QtYS1zZWNyZXQtMDAwMDA="
NOTIFY = "https://hooks.example/done?token=NOTIFYSECRET"
REFRESH = "https://api.example/refresh?token=REFRESHSECRET"


def _everything_stored(client: fakeredis.FakeRedis) -> str:
    """Every value in the store, as text (what someone reading Redis would see)."""
    out: list[str] = []
    for k in client.keys("*"):
        kind = client.type(k).decode()
        if kind == "string":
            out.append(client.get(k).decode(errors="replace"))
        elif kind == "hash":
            out += [v.decode(errors="replace") for v in client.hvals(k)]
    return "\n".join(out)


def _job(store: StatusStore, sealer: SourceSealer, *, fail: bool) -> tuple[str, Any]:
    import boto3

    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="media")
    backend = S3StorageBackend(
        "media", region="us-east-1", access_key_id="x", secret_access_key="y", preflight=False
    )
    sub = build_submission(
        make_manifest(["https://cdn.invalid/a.png"]),
        DestinationSpec(bucket="media"),
        tenant="t",
        notify_url=NOTIFY,
        refresh_url=REFRESH,
    )
    # as IngestService.submit stores them: sealed when a key is set, as is otherwise
    meta = sub.meta.model_copy(
        update={"notify_url": sealer.seal(NOTIFY), "refresh_url": sealer.seal(REFRESH)}
    )
    store.create_job(meta, sub.assets, sub.sealed_sources(sealer), sub.payload)
    (aid,) = meta.asset_ids
    if fail:
        store.finish_asset(meta.job_id, aid, AssetState.FAILED, error=ErrorInfo(code="x"))
    else:
        backend.put("genblaze/a.png", b"a", content_type="image/png")
        store.finish_asset(
            meta.job_id, aid, AssetState.STORED, key="genblaze/a.png", sha256="0" * 64, size=1
        )
    return meta.job_id, backend


@pytest.mark.parametrize("key", [None, KEY], ids=["no-source-key", "source-key"])
def test_a_finished_jobs_callback_urls_leave_the_store_after_the_webhook(key: str | None) -> None:
    store = StatusStore(fakeredis.FakeRedis())
    sealer = SourceSealer(key)
    with mock_aws():
        job_id, backend = _job(store, sealer, fail=False)
        assert ("NOTIFYSECRET" in _everything_stored(store.redis)) is (key is None)
        sent: list[str] = []

        def notify(meta: Any, body: str) -> None:
            sent.append(sealer.unseal(meta.notify_url))  # what the worker POSTs to

        assert finalize_job(store, lambda d: backend, job_id, notify=notify) == JobState.SUCCEEDED
    assert sent == [NOTIFY]
    meta = store.get_meta(job_id)
    assert meta is not None and meta.notify_url is None and meta.refresh_url is None
    text = _everything_stored(store.redis)
    assert "NOTIFYSECRET" not in text and "REFRESHSECRET" not in text
    assert "hooks.example" not in text


@pytest.mark.parametrize(("key", "kept"), [(None, False), (KEY, True)])
def test_a_failed_job_keeps_only_sealed_callbacks_for_its_retry(
    key: str | None, kept: bool
) -> None:
    store = StatusStore(fakeredis.FakeRedis())
    with mock_aws():
        job_id, backend = _job(store, SourceSealer(key), fail=True)
        assert finalize_job(store, lambda d: backend, job_id) == JobState.FAILED
    meta = store.get_meta(job_id)
    assert meta is not None and (meta.notify_url is not None) is kept
    assert "NOTIFYSECRET" not in _everything_stored(store.redis)


def test_a_canceled_jobs_raw_callback_urls_go_at_once() -> None:
    store = StatusStore(fakeredis.FakeRedis())
    with mock_aws():
        job_id, _ = _job(store, SourceSealer(None), fail=True)
    store.redis.hset(f"genblaze:job:{job_id}", "state", "running")
    assert store.request_cancel(job_id) == JobState.CANCELED
    assert "NOTIFYSECRET" not in _everything_stored(store.redis)
