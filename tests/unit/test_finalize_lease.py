"""The finalize lease: taken with the job's finalize-due note, ended with its removal."""

from __future__ import annotations

import fakeredis

from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.delivery_state import DeliveryState


def test_take_notes_the_job_due_in_the_same_round_trip_and_end_clears_it() -> None:
    client = fakeredis.FakeRedis()
    state = DeliveryState(client, retention_seconds=60)
    lease = state.finalize_lease("j", 5000)
    assert lease.take(due_at=123.0)
    assert client.zscore(keys.finalize_due_key(), "j") == 123.0
    assert client.get(keys.finalize_lease_key("j")) == lease.token.encode()
    other = state.finalize_lease("j", 5000)
    assert not other.take(due_at=124.0)  # one finalizer; the job stays due
    assert state.count_retry(keys.finalize_retries_key("j"), 5) == 1
    lease.end(forget_retries=True)
    assert not client.exists(keys.finalize_lease_key("j"), keys.finalize_retries_key("j"))
    assert client.zscore(keys.finalize_due_key(), "j") is None


def test_end_keeps_what_is_not_its_own() -> None:
    """A lease that ran out and was taken by another finalizer is left to that one; a
    retry count is dropped only when the job is done with."""
    client = fakeredis.FakeRedis()
    state = DeliveryState(client, retention_seconds=60)
    lease = state.finalize_lease("j", 5000)
    assert lease.take()  # a FINALIZE_JOB delivery: not noted due by the take
    assert client.zscore(keys.finalize_due_key(), "j") is None
    client.set(keys.finalize_lease_key("j"), "someone-else")
    state.count_retry(keys.finalize_retries_key("j"), 5)
    lease.end(forget_retries=False)
    assert client.get(keys.finalize_lease_key("j")) == b"someone-else"
    assert client.get(keys.finalize_retries_key("j")) == b"1"
