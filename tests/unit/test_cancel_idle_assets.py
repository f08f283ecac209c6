"""A cancel reaches assets no delivery holds (issue 21, item 4): an asset waiting for a
not-ready source is canceled by the cancel itself; a copy between deliveries (a retry's
backoff, a queued continuation) gets a delivery at once, which aborts its upload."""

from __future__ import annotations

from datetime import timedelta

import fakeredis

from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.models import AssetState, JobState, utc_now
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store.leases import AssetLease
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import INGEST_ASSET, MemorySender
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.settings import load_settings
from tests.unit.ingest_fixtures import make_submission


def test_cancel_ends_waits_and_wakes_idle_copies_but_leaves_held_ones_to_their_worker() -> None:
    store = StatusStore(fakeredis.FakeRedis())
    sender = MemorySender()
    service = IngestService(store, sender, "q", DestinationPolicy.from_settings(load_settings({})))
    sub = make_submission(3)
    store.create_job(sub.meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload)
    job_id, (held, idle, waiting) = sub.meta.job_id, sub.meta.asset_ids
    for aid in (held, idle, waiting):
        store.start_asset(job_id, aid, worker="w:1")
    now = utc_now()
    store.mark_waiting_source(job_id, waiting, retry_at=now + timedelta(hours=1), waiting_since=now)
    lease = AssetLease(store.redis, job_id, held, 5000)
    assert lease.acquire()
    try:
        assert service.cancel(job_id) == JobState.CANCELED
    finally:
        lease.release()
    states = {a: store.get_asset(job_id, a).state for a in (held, idle, waiting)}  # type: ignore[union-attr]
    assert states == {
        held: AssetState.COPYING,  # its worker sees the cancel within a second
        idle: AssetState.COPYING,  # until the delivery sent now ends it (and its upload)
        waiting: AssetState.CANCELED,  # nothing was uploaded: ended by the cancel
    }
    assert sender.sent == [(INGEST_ASSET, [job_id, idle], "q")]
