"""The worker step with expiring and not-ready sources (fakeredis, a fake copy engine)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest

import genblaze_s3.transfer as transfer
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.models import AssetState, utc_now
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.worker.asset_copy import Action, WorkerContext, process_asset
from genblaze_s3.ingest.worker.sources import SourceRules
from genblaze_s3.settings import load_settings
from genblaze_s3.transfer import FetchPolicy, SourceExpired, SourceNotReady, SourceValidators
from tests.unit.ingest_fixtures import make_submission


@pytest.fixture(autouse=True)
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """cdn.example resolves to a public address (unit tests make no DNS queries)."""
    import genblaze_s3.transfer.urlguard as urlguard

    monkeypatch.setattr(urlguard, "system_resolver", lambda host, port: ["93.184.216.34"])


class FakeBackend(SimpleNamespace):
    def get_durable_url(self, key: str) -> str:
        return f"http://s3/{key}"


class FakeRefresher:
    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.requests: list[Any] = []

    def available(self, meta: Any) -> bool:
        return True

    def refresh(self, meta: Any, request: Any) -> str | None:
        self.requests.append(request)
        return self.answer


def _ctx(refresher: Any = None, **rules: Any) -> WorkerContext:
    client = fakeredis.FakeRedis()
    return WorkerContext(
        redis=client,
        store=StatusStore(client),
        backend_for=lambda d: FakeBackend(bucket=d.bucket),
        policy=DestinationPolicy.from_settings(
            load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:9000"})
        ),
        fetch_policy=FetchPolicy(),
        max_attempts=3,
        max_retries=1,
        refresher=refresher,
        source_rules=SourceRules(**rules),
    )


def _raw_source(ctx: WorkerContext, job_id: str, aid: str) -> str | None:
    raw = ctx.redis.hget(keys.sources_key(job_id), aid)
    return raw.decode() if isinstance(raw, bytes) else raw


def _job(ctx: WorkerContext) -> tuple[str, str]:
    sub = make_submission(1)
    ctx.store.create_job(sub.meta, sub.assets, sub.sealed_sources(ctx.sealer), sub.payload)
    return sub.meta.job_id, sub.meta.asset_ids[0]


RESULT = transfer.CopyResult(
    "genblaze/assets/ab/x.png", "a" * 64, 10, "image/png", '"e"', False, 10, 1,
    source=SourceValidators(etag='"e"', last_modified="lm", length=10),
)  # fmt: skip


def _copies(monkeypatch: pytest.MonkeyPatch, outcomes: list[Any]) -> list[str]:
    urls: list[str] = []

    def copy_url(backend: Any, url: str, dest: Any, **kw: Any) -> Any:
        urls.append(url)
        out = outcomes.pop(0)
        if isinstance(out, BaseException):
            raise out
        return out

    monkeypatch.setattr(transfer, "copy_url", copy_url)
    return urls


def test_not_ready_source_waits_visibly_and_is_not_an_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = _ctx()
    job_id, aid = _job(ctx)
    _copies(monkeypatch, [SourceNotReady("503", retry_after=2)] * 3 + [RESULT])
    for _ in range(3):
        step = process_asset(ctx, job_id, aid)
        assert (step.action, step.countdown) == (Action.WAIT, 2)
        rec = ctx.store.get_asset(job_id, aid)
        assert rec is not None and rec.state == AssetState.WAITING_SOURCE and rec.retry_at
        assert int(ctx.redis.get(keys.attempts_key(job_id, aid)) or 0) == 0
    assert process_asset(ctx, job_id, aid).action is Action.DONE
    rec = ctx.store.get_asset(job_id, aid)
    assert rec is not None and rec.state == AssetState.STORED and rec.retry_at is None
    assert rec.provenance is not None and rec.provenance.attempts == 1 and rec.attempts == 1
    assert rec.provenance.etag == '"e"' and rec.provenance.host == "cdn.example"


def test_not_ready_past_the_wait_budget_fails_source_not_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = _ctx(ready_wait=60)
    job_id, aid = _job(ctx)
    _copies(monkeypatch, [SourceNotReady("503", retry_after=5)] * 2)
    assert process_asset(ctx, job_id, aid).action is Action.WAIT
    rec = ctx.store.get_asset(job_id, aid)
    assert rec is not None
    past = utc_now() - timedelta(seconds=61)  # as if the first "not yet" came 61 s ago
    ctx.redis.set(
        keys.asset_key(job_id, aid),
        rec.model_copy(update={"waiting_since": past}).model_dump_json(),
    )
    step = process_asset(ctx, job_id, aid)
    rec = ctx.store.get_asset(job_id, aid)
    assert step.action is Action.DONE and rec is not None and rec.state == AssetState.FAILED
    assert rec.error is not None and rec.error.code == "source_not_found"


def test_expired_source_is_refreshed_stored_sealed_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refresher = FakeRefresher("https://cdn.example/a0.png?X-Amz-Signature=FRESH")
    ctx = _ctx(refresher)
    job_id, aid = _job(ctx)
    urls = _copies(monkeypatch, [SourceExpired("403"), RESULT])
    assert process_asset(ctx, job_id, aid).action is Action.DONE
    assert urls[1].endswith("FRESH")
    (req,) = refresher.requests
    assert (req.host, req.path) == ("cdn.example", "/a0.png") and "SECRET" not in repr(req)
    rec = ctx.store.get_asset(job_id, aid)
    assert rec is not None and rec.refreshes == 1 and rec.provenance is not None
    assert rec.provenance.refreshes == 1 and "FRESH" not in rec.source_url


def test_refreshes_are_bounded_per_asset(monkeypatch: pytest.MonkeyPatch) -> None:
    refresher = FakeRefresher("https://cdn.example/again.png?sig=x")
    ctx = _ctx(refresher, max_refreshes=2)
    job_id, aid = _job(ctx)
    _copies(monkeypatch, [SourceExpired("403")] * 3)
    process_asset(ctx, job_id, aid)
    rec = ctx.store.get_asset(job_id, aid)
    assert rec is not None and rec.state == AssetState.FAILED and rec.refreshes == 2
    assert rec.error is not None and rec.error.code == "source_expired"
    assert len(refresher.requests) == 2


def test_a_refreshed_url_at_a_private_address_fails_url_blocked_and_is_not_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = _ctx(FakeRefresher("https://169.254.169.254/latest/meta-data"))
    job_id, aid = _job(ctx)
    _copies(monkeypatch, [SourceExpired("403")])
    process_asset(ctx, job_id, aid)
    rec = ctx.store.get_asset(job_id, aid)
    assert rec is not None and rec.error is not None and rec.error.code == "url_blocked"
    assert rec.refreshes == 0
    assert _raw_source(ctx, job_id, aid) is None  # a failed asset keeps no source


def test_no_fresh_url_fails_source_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = _ctx(FakeRefresher(None))
    job_id, aid = _job(ctx)
    _copies(monkeypatch, [SourceExpired("410")])
    process_asset(ctx, job_id, aid)
    rec = ctx.store.get_asset(job_id, aid)
    assert rec is not None and rec.error is not None and rec.error.code == "source_expired"


def test_refreshed_source_is_sealed_at_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.fernet import Fernet

    from genblaze_s3.ingest.sealing import SourceSealer

    ctx = _ctx(FakeRefresher("https://cdn.example/a0.png?X-Amz-Signature=FRESH"))
    ctx.sealer = SourceSealer(Fernet.generate_key().decode())
    job_id, aid = _job(ctx)
    seen: list[str | None] = []

    def copy_url(backend: Any, url: str, dest: Any, **kw: Any) -> Any:
        seen.append(_raw_source(ctx, job_id, aid))
        if len(seen) == 1:
            raise SourceExpired("403")
        return RESULT

    monkeypatch.setattr(transfer, "copy_url", copy_url)
    process_asset(ctx, job_id, aid)
    stored = seen[1]
    assert stored is not None and stored.startswith("fernet:") and "FRESH" not in stored
    assert ctx.sealer.unseal_source(stored).url.endswith("FRESH")


def test_a_sliced_copy_records_its_first_read_and_no_extra_attempts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = _ctx()
    job_id, aid = _job(ctx)
    paused = transfer.CopyPaused(bytes_done=5, bytes_total=10, bytes_uploaded=5)
    _copies(monkeypatch, [paused, RESULT])
    assert process_asset(ctx, job_id, aid).action is Action.CONTINUE
    first = ctx.store.get_asset(job_id, aid)
    assert first is not None and first.fetch_started_at is not None
    assert process_asset(ctx, job_id, aid).action is Action.DONE
    rec = ctx.store.get_asset(job_id, aid)
    assert rec is not None and rec.provenance is not None
    assert rec.provenance.fetched_at == first.fetch_started_at  # when the copy began
    assert rec.provenance.attempts == 1  # a slice handing on is not an attempt
