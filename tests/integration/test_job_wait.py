"""`JobHandle.wait()` on the store wakes on the job's events channel, not on its poll.

Real Redis (pub/sub over a real socket). Each test waits on observable events: the
waiter's subscription (PUBSUB NUMSUB) before the job moves, then the wait's return.
The poll interval is set far longer than any bound asserted, so a wait that only
polled would fail these tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from genblaze_s3.ingest.client.handle import JobHandle, StoreSource
from genblaze_s3.ingest.errors import JobWaitTimeoutError
from genblaze_s3.ingest.models import JobState
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.status import StatusStore
from tests.unit.ingest_fixtures import make_submission

POLL = 60.0  # the floor a listening wait never needs


@pytest.fixture
def store(redis_url: str) -> Iterator[StatusStore]:
    client = redis.Redis.from_url(redis_url)
    yield StatusStore(client)
    client.close()


def _job(store: StatusStore) -> str:
    sub = make_submission(1)
    store.create_job(sub.meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload)
    return sub.meta.job_id


def _subscribers(store: StatusStore, job_id: str) -> int:
    channel = keys.events_channel(job_id)
    return int(dict(store.redis.pubsub_numsub(channel)).get(channel.encode(), 0))


def _until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting for the waiter"
        time.sleep(0.005)


def test_wait_returns_as_soon_as_the_job_ends(store: StatusStore) -> None:
    job_id = _job(store)
    handle = JobHandle(job_id, StoreSource(store))
    out: dict[str, object] = {}

    def waiter() -> None:
        out["view"] = handle.wait(timeout=POLL * 2, poll_interval=POLL)
        out["at"] = time.monotonic()

    t = threading.Thread(target=waiter)
    t.start()
    _until(lambda: _subscribers(store, job_id) == 1)
    assert store.transition_job(job_id, JobState.RUNNING)  # a change that is not the end
    assert store.request_cancel(job_id) is not None
    ended = time.monotonic()
    t.join(timeout=10)
    assert not t.is_alive()
    assert out["view"].state == JobState.CANCELED  # type: ignore[attr-defined]
    assert float(out["at"]) - ended < 1.0  # type: ignore[arg-type]  # not the 60 s poll
    assert _subscribers(store, job_id) == 0  # its connection went with it


def test_a_job_already_ended_returns_at_once_and_a_timeout_still_fires(
    store: StatusStore,
) -> None:
    job_id = _job(store)
    handle = JobHandle(job_id, StoreSource(store))
    t0 = time.monotonic()
    with pytest.raises(JobWaitTimeoutError):
        handle.wait(timeout=0.3, poll_interval=POLL)
    assert 0.3 <= time.monotonic() - t0 < 5
    assert _subscribers(store, job_id) == 0
    store.request_cancel(job_id)
    assert handle.wait(timeout=5, poll_interval=POLL).state == JobState.CANCELED


def test_a_user_without_rights_to_the_channel_still_waits_by_polling() -> None:
    """Redis ACL users get no pub/sub channels unless granted (`acl-pubsub-default
    resetchannels`): the NOPERM comes with the first read, and the wait falls back to
    its poll instead of failing as if the store were down."""
    from genblaze_s3.local.services import start_redis

    server = start_redis()
    try:
        admin = redis.Redis.from_url(server.url)
        admin.execute_command(
            "ACL", "SETUSER", "submitter", "on", ">pw", "~*", "+@all", "resetchannels"
        )
        host = server.url.split("//", 1)[1].split("/", 1)[0]
        client = redis.Redis.from_url(f"redis://submitter:pw@{host}/0")
        store = StatusStore(client)
        job_id = _job(store)
        handle = JobHandle(job_id, StoreSource(store))
        with pytest.raises(JobWaitTimeoutError):  # not StoreUnavailableError
            handle.wait(timeout=0.3, poll_interval=0.05)
        StatusStore(admin).request_cancel(job_id)  # a worker or the API (they publish)
        assert handle.wait(timeout=5, poll_interval=0.05).state == JobState.CANCELED
        client.close()
        admin.close()
    finally:
        server.stop()
