"""The worker step without Celery: leases, attempt limits, retry policy, cancel."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest

import genblaze_s3.transfer as transfer
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.models import AssetState, JobState
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.delivery_state import inflight_member
from genblaze_s3.ingest.store.leases import AssetLease, Taken
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.worker.asset_copy import Action, WorkerContext, process_asset
from genblaze_s3.transfer import SourceNotFound, SourceUnavailable
from tests.unit.ingest_fixtures import make_submission, worker_context


@pytest.fixture
def ctx() -> WorkerContext:
    return worker_context(
        max_attempts=2,
        max_retries=1,
        lease_ttl_ms=5000,
    )


def _job(ctx: WorkerContext, n: int = 1) -> tuple[str, list[str]]:
    sub = make_submission(n)
    ctx.store.create_job(sub.meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload)
    return sub.meta.job_id, sub.meta.asset_ids


def _fake_copy(monkeypatch: pytest.MonkeyPatch, behaviour: Any) -> list[dict]:
    calls: list[dict] = []

    def copy_url(backend: Any, url: str, dest: Any, **kw: Any) -> Any:
        calls.append({"url": url, "dest": dest, **kw})
        if isinstance(behaviour, BaseException):
            raise behaviour
        return behaviour

    monkeypatch.setattr(transfer, "copy_url", copy_url)
    return calls


def test_successful_copy_stores_and_asks_for_finalize(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = SimpleNamespace(
        key="genblaze/assets/ab/cd/x.png",
        sha256="a" * 64,
        size=10,
        deduplicated=False,
        bytes_uploaded=10,
        source=None,
    )
    calls = _fake_copy(monkeypatch, result)
    job_id, (aid,) = _job(ctx)
    step = process_asset(ctx, job_id, aid)
    assert step.action is Action.DONE and step.finalize
    assert "SECRET0" in calls[0]["url"]  # the worker gets the real URL from the store
    assert calls[0]["checkpoint_id"] == f"{job_id}:{aid}"
    rec = ctx.store.get_asset(job_id, aid)
    assert (
        rec is not None and rec.state == AssetState.STORED and rec.url == "http://s3/" + result.key
    )
    # A redelivery after success does nothing but (re)ask for finalize.
    assert process_asset(ctx, job_id, aid).finalize and len(calls) == 1


def test_retryable_errors_retry_then_fail_with_code(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_copy(monkeypatch, SourceUnavailable("503 from https://cdn/x?sig=SECRET"))
    job_id, (aid,) = _job(ctx)
    assert process_asset(ctx, job_id, aid, retries=0).action is Action.RETRY
    step = process_asset(ctx, job_id, aid, retries=1)
    assert step.action is Action.DONE and step.finalize
    rec = ctx.store.get_asset(job_id, aid)
    assert rec is not None and rec.error is not None and rec.error.code == "source_unavailable"
    assert "SECRET" not in rec.error.message


def test_permanent_errors_fail_at_once(ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_copy(monkeypatch, SourceNotFound("404"))
    job_id, (aid,) = _job(ctx)
    assert process_asset(ctx, job_id, aid).action is Action.DONE
    assert ctx.store.get_asset(job_id, aid).error.code == "source_not_found"  # type: ignore[union-attr]


def test_a_held_lease_makes_a_duplicate_back_off(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_copy(monkeypatch, SourceNotFound("404"))
    job_id, (aid,) = _job(ctx)
    other = AssetLease(ctx.redis, job_id, aid, 5000)
    assert other.acquire()
    try:
        step = process_asset(ctx, job_id, aid)
        assert step.action is Action.BUSY and 0 < step.countdown <= 6
        assert calls == [] and ctx.store.get_asset(job_id, aid).state == AssetState.QUEUED  # type: ignore[union-attr]
    finally:
        other.release()


def test_poison_task_fails_after_bounded_attempts(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each delivery dies inside the copy (SystemExit stands for the process being killed:
    nothing of ours runs after it); the delivery count in Redis ends it."""
    _fake_copy(monkeypatch, SystemExit("killed"))
    job_id, (aid,) = _job(ctx)
    for _ in range(2):
        with pytest.raises(SystemExit):
            process_asset(ctx, job_id, aid)
    step = process_asset(ctx, job_id, aid)
    assert step.action is Action.DONE
    assert ctx.store.get_asset(job_id, aid).error.code == "too_many_attempts"  # type: ignore[union-attr]


def test_canceled_job_skips_queued_assets(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_copy(monkeypatch, SourceNotFound("x"))
    job_id, (aid,) = _job(ctx)
    ctx.store.request_cancel(job_id)
    assert process_asset(ctx, job_id, aid).action is Action.DONE and calls == []
    assert ctx.store.get_asset(job_id, aid).state == AssetState.CANCELED  # type: ignore[union-attr]
    assert ctx.store.job_state(job_id) == JobState.CANCELED


def _left_behind(ctx: WorkerContext, job_id: str, aid: str) -> list[str]:
    """What a delivery that ended may not leave: a lease, a delivery count, an in-flight entry."""
    out = [
        k
        for k in (keys.lease_key(job_id, aid), keys.attempts_key(job_id, aid))
        if ctx.redis.exists(k)
    ]
    if ctx.redis.zscore(keys.inflight_key(), inflight_member(job_id, aid)) is not None:
        out.append("in-flight")
    return out


@pytest.mark.parametrize("why", ["finished", "canceled", "expired"])
def test_a_delivery_with_nothing_to_do_gives_back_what_its_snapshot_took(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch, why: str
) -> None:
    """The lease is taken in the snapshot's round trip, before the worker knows whether
    there is anything to copy: a finished asset, a canceled job and an expired job must
    each leave no lease (a later delivery would back off), no delivery count and no
    in-flight entry behind."""
    calls = _fake_copy(monkeypatch, SourceNotFound("x"))
    job_id, (aid,) = _job(ctx)
    if why == "finished":
        assert process_asset(ctx, job_id, aid).action is Action.DONE  # fails for good
        calls.clear()
    elif why == "canceled":
        ctx.store.request_cancel(job_id)
    else:
        for k in ctx.redis.keys(f"*{job_id}*"):
            ctx.redis.delete(k)
    assert process_asset(ctx, job_id, aid).action is Action.DONE and calls == []
    assert _left_behind(ctx, job_id, aid) == []


def test_worker_refuses_destinations_outside_its_allow_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _fake_copy(monkeypatch, SourceNotFound("x"))
    client = fakeredis.FakeRedis()
    ctx = WorkerContext(
        redis=client,
        store=StatusStore(client),
        backend_for=lambda d: None,
        policy=DestinationPolicy(frozenset({"http://other:1"})),
    )
    job_id, (aid,) = _job(ctx)
    process_asset(ctx, job_id, aid)
    assert calls == []
    assert ctx.store.get_asset(job_id, aid).error.code == "destination_not_allowed"  # type: ignore[union-attr]


def test_lease_acquire_counts_only_the_delivery_that_got_it(ctx: WorkerContext) -> None:
    inflight = (keys.inflight_key(), "j a", 1.0)
    first = AssetLease(ctx.redis, "j", "a", 5000)
    second = AssetLease(ctx.redis, "j", "a", 5000)
    assert first.take(60, inflight=inflight) == Taken(1, 0, None)
    assert second.take(60, inflight=inflight).attempts == 0  # held: not a delivery
    second.release()  # not the holder: must not free the lease
    assert ctx.redis.get(first.key) is not None
    first.release()
    ctx.redis.set(keys.retries_key("j", "a"), 2)
    ctx.redis.set(keys.checkpoint_key(keys.asset_checkpoint_id("j", "a")), '{"cp": 1}')
    third = AssetLease(ctx.redis, "j", "a", 5000)
    # the same trip reads what the delivery needs first: retries used, the checkpoint
    assert third.take(60, inflight=inflight) == Taken(2, 2, '{"cp": 1}')
    assert ctx.redis.zscore(keys.inflight_key(), "j a") == 1.0
    third.release()


def test_release_of_a_finished_asset_forgets_it_in_the_same_trip(ctx: WorkerContext) -> None:
    inflight = (keys.inflight_key(), "j a", 1.0)
    ctx.redis.set(keys.retries_key("j", "a"), 1)
    with AssetLease(ctx.redis, "j", "a", 5000) as lease:
        assert lease.take(60, inflight=inflight).attempts == 1
        lease.forget_on_release(keys.inflight_key(), "j a")
    assert ctx.redis.get(lease.key) is None
    assert ctx.redis.zscore(keys.inflight_key(), "j a") is None
    assert ctx.redis.get(keys.retries_key("j", "a")) is None
    assert ctx.redis.get(keys.attempts_key("j", "a")) is None  # no counter kept for days
    # unwinding from an error: the lease is released, the asset stays in flight
    ctx.redis.set(keys.retries_key("j", "a"), 1)
    with pytest.raises(RuntimeError), AssetLease(ctx.redis, "j", "a", 5000) as again:
        again.take(60, inflight=inflight)
        again.forget_on_release(keys.inflight_key(), "j a")
        raise RuntimeError("boom")
    assert ctx.redis.get(again.key) is None
    assert ctx.redis.zscore(keys.inflight_key(), "j a") == 1.0
    assert ctx.redis.get(keys.retries_key("j", "a")) == b"1"
    assert ctx.redis.get(keys.attempts_key("j", "a")) == b"1"  # this delivery still counts


def _until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_the_one_renewer_keeps_held_leases_and_marks_stolen_ones_lost() -> None:
    client = fakeredis.FakeRedis()
    kept = AssetLease(client, "j", "kept", 300)  # renewed every 0.1 s
    stolen = AssetLease(client, "j", "stolen", 300)
    inflight = (keys.inflight_key(), "j x", 1.0)
    with kept, stolen:
        assert kept.take(60, inflight=inflight).attempts == 1
        assert stolen.take(60, inflight=inflight).attempts == 1
        client.set(stolen.key, "another-delivery", px=5000)
        assert _until(lambda: stolen.lost)  # the renewer found it taken
        # kept outlives several TTLs: renewed, never lost
        renewed_until = time.monotonic() + 1.0
        assert _until(lambda: time.monotonic() > renewed_until and client.get(kept.key))
        assert client.get(kept.key) == kept.token.encode() and not kept.lost
    assert client.get(kept.key) is None  # released
    assert client.get(stolen.key) == b"another-delivery"  # never the loser's to release


def test_a_lease_due_before_the_others_wakes_the_renewer() -> None:
    # The renewer sleeps until its earliest lease is due; a new lease due sooner (a
    # shorter TTL) must wake it, or it would expire while the long one is waited for.
    client = fakeredis.FakeRedis()
    slow = AssetLease(client, "j", "slow", 60_000)  # first renewal in 20 s
    fast = AssetLease(client, "j", "fast", 300)  # every 0.1 s
    inflight = (keys.inflight_key(), "j x", 1.0)
    with slow:
        assert slow.take(60, inflight=inflight).attempts == 1
        time.sleep(0.05)  # the renewer is now waiting for `slow`
        with fast:
            assert fast.take(60, inflight=inflight).attempts == 1
            outlived = time.monotonic() + 1.0  # three TTLs of `fast`
            assert _until(lambda: time.monotonic() > outlived and client.get(fast.key))
            assert client.get(fast.key) == fast.token.encode() and not fast.lost


def _trips(ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Round trips to the store: pipeline executes and single commands, by name."""
    import redis as redis_lib

    seen: list[str] = []
    execute, command = redis_lib.client.Pipeline.execute, redis_lib.Redis.execute_command

    def counted_execute(self: Any, *a: Any, **kw: Any) -> Any:
        seen.append("pipeline")
        return execute(self, *a, **kw)

    def counted_command(self: Any, *a: Any, **kw: Any) -> Any:
        if not isinstance(self, redis_lib.client.Pipeline):
            seen.append(str(a[0]))
        return command(self, *a, **kw)

    monkeypatch.setattr(redis_lib.client.Pipeline, "execute", counted_execute)
    monkeypatch.setattr(redis_lib.Redis, "execute_command", counted_command)
    return seen


def test_a_stored_asset_ends_its_lease_in_the_terminal_writes_trip(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = SimpleNamespace(
        key="k/x.png", sha256="a" * 64, size=10, deduplicated=False, bytes_uploaded=10, source=None
    )
    _fake_copy(monkeypatch, result)
    job_id, (aid,) = _job(ctx)
    trips = _trips(ctx, monkeypatch)
    assert process_asset(ctx, job_id, aid).action is Action.DONE
    # snapshot + lease take, start + the job's move to running (its first asset) and its
    # event, finish + lease end: no trip of its own for the release or the job's move
    assert trips == ["pipeline", "pipeline", "pipeline"], trips
    assert ctx.store.get_asset(job_id, aid).state == AssetState.STORED  # type: ignore[union-attr]
    assert ctx.redis.get(keys.lease_key(job_id, aid)) is None  # released
    assert ctx.redis.zscore(keys.inflight_key(), inflight_member(job_id, aid)) is None
    assert not ctx.redis.exists(keys.attempts_key(job_id, aid), keys.retries_key(job_id, aid))


def test_a_terminal_write_that_loses_its_race_still_releases_the_lease(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another writer changes the record between this delivery's start and finish: the
    # one-trip terminal write misses, so must the lease end riding it; the fallback
    # write lands and the lease is released on leaving its block, as before.
    result = SimpleNamespace(
        key="k/x.png", sha256="a" * 64, size=10, deduplicated=False, bytes_uploaded=10, source=None
    )
    job_id, (aid,) = _job(ctx)

    def copy_url(backend: Any, url: str, dest: Any, **kw: Any) -> Any:
        ctx.store.record_progress(job_id, aid, 5, 10)  # a write this delivery's cache misses
        ctx.store._assets.forget(job_id, aid)
        ctx.store._assets.remember(
            job_id, aid, (ctx.redis.get(keys.asset_key(job_id, aid)) or b"").replace(b"5", b"4")
        )
        return result

    monkeypatch.setattr(transfer, "copy_url", copy_url)
    assert process_asset(ctx, job_id, aid).action is Action.DONE
    assert ctx.store.get_asset(job_id, aid).state == AssetState.STORED  # type: ignore[union-attr]
    assert ctx.redis.get(keys.lease_key(job_id, aid)) is None
    assert ctx.redis.zscore(keys.inflight_key(), inflight_member(job_id, aid)) is None
    assert not ctx.redis.exists(keys.attempts_key(job_id, aid), keys.retries_key(job_id, aid))
