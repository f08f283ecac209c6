"""Cancel stops the bytes within a second, in every phase of a copy (issue 21, item 4).

Each row submits a slow source, waits until the copy is in the phase it names, then
`DELETE /v1/jobs/{id}` and measures at the CDN (tests/support/cdn.py `bodies`) when
the worker stopped reading: every response body for the source has ended (the
worker closed the connection) less than a second after the DELETE. Then: the asset
is `canceled`, zero multipart uploads are left, and a retry is accepted right away.

Phases: the hash pass of a content-addressed copy with an unknown hash (the source
is read once before the key is known), a multipart upload, a copy handing on from
slice to slice (GENBLAZE_SLICE_SECONDS=1 so hand-ons are constant), an asset
waiting for a source that said "not ready" (no delivery holds it: the API ends it),
and a copy waiting out a retry's backoff (the cancel sends it a delivery at once).
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from genblaze_s3.ingest.models import AssetRecord, AssetState, JobState, utc_now
from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.helpers import no_multipart_uploads, wait_for
from tests.support.invariants import Services
from tests.support.workers import QueueStack, StartStack

MiB = 1024 * 1024
STOP_WITHIN = 1.0  # seconds from DELETE to the worker's last read (the bound)


class Row:
    """One job on one stack: submit, look, cancel, retry."""

    def __init__(self, stack: QueueStack, seaweed: SeaweedS3, bucket: str, s3: Any) -> None:
        self.stack, self.seaweed, self.bucket, self.s3 = stack, seaweed, bucket, s3
        self.svc = Services(redis_url=stack.redis_url, s3=s3)
        self.job_id = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stack.tokens['acme']}"}

    def submit(self, url: str, strategy: str) -> None:
        r = httpx.post(
            f"{self.stack.api_url}/v1/jobs",
            json={
                "assets": [{"url": url, "media_type": "video/mp4"}],
                "destination": {
                    "bucket": self.bucket,
                    "endpoint_url": self.seaweed.endpoint_url,
                    "key_strategy": strategy,
                },
            },
            headers=self.auth,
            timeout=10,
        )
        assert r.status_code == 202, r.text
        self.job_id = r.json()["job_id"]

    def asset(self) -> AssetRecord:
        meta = self.svc.store.get_meta(self.job_id)
        assert meta is not None
        rec = self.svc.store.get_asset(self.job_id, meta.asset_ids[0])
        assert rec is not None
        return rec

    def cancel(self) -> float:
        """DELETE the job; returns time.monotonic() just before the request."""
        t0 = time.monotonic()
        r = httpx.delete(f"{self.stack.api_url}/v1/jobs/{self.job_id}", headers=self.auth)
        assert r.status_code == 200 and r.json()["state"] == "canceled", r.text
        return t0

    def retry(self) -> int:
        r = httpx.post(
            f"{self.stack.api_url}/v1/jobs/{self.job_id}/retry", headers=self.auth, timeout=10
        )
        return r.status_code

    def end(self) -> None:
        """Stop the retried copy again, so the module's workers are free for the next row."""
        state = self.svc.store.job_state(self.job_id)
        if state is not None and state not in (JobState.CANCELED, JobState.FAILED):
            self.cancel()
        wait_for(lambda: self.asset().state == AssetState.CANCELED, timeout=30)
        wait_for(lambda: no_multipart_uploads(self.s3, self.bucket), timeout=30)


def _stopped_reading(cdn: CDNServer, path: str, since: float) -> float:
    """Seconds from ``since`` to the end of the last body the CDN sent for ``path``
    (waits until every body has ended: the reader closed its connection)."""
    wait_for(
        lambda: all(b.ended is not None for b in cdn.bodies(path)),
        timeout=60,
        what=f"the worker still reads {path}",
    )
    bodies = cdn.bodies(path)
    assert not any(b.complete for b in bodies), "the copy read the whole source"
    return max(b.ended for b in bodies if b.ended is not None) - since


def _then_canceled_clean_and_retryable(row: Row, t0: float) -> float:
    """The asset is canceled, nothing is left in the bucket, a retry is accepted;
    returns seconds from the DELETE to the accepted retry."""
    wait_for(lambda: row.asset().state == AssetState.CANCELED, timeout=5)
    assert row.asset().error is not None
    wait_for(lambda: no_multipart_uploads(row.s3, row.bucket), timeout=5)
    assert row.retry() == 202
    retried = time.monotonic() - t0
    assert "Contents" not in row.s3.list_objects_v2(Bucket=row.bucket)
    return retried


@pytest.fixture(scope="module")
def sliced_stack(start_module_stack: StartStack) -> QueueStack:
    """Workers whose copies hand on every second (hand-ons all the time)."""
    return start_module_stack(
        queue=f"genblaze-cancel-{uuid.uuid4().hex[:6]}", extra_env={"GENBLAZE_SLICE_SECONDS": "1"}
    )


@pytest.mark.parametrize(
    ("phase", "strategy", "size", "rate"),
    [
        ("hash_pass", "content_addressable", 32 * MiB, 2 * MiB),
        ("upload", "hierarchical", 64 * MiB, 4 * MiB),
        ("slice_hand_on", "hierarchical", 64 * MiB, 4 * MiB),
    ],
)
def test_cancel_stops_the_reads_within_a_second(
    phase: str,
    strategy: str,
    size: int,
    rate: int,
    stack: QueueStack,
    sliced_stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    s3_client: Any,
) -> None:
    path = f"/cancel-{phase}.mp4"
    cdn.add(path, os.urandom(size), content_type="video/mp4")
    row = Row(sliced_stack if phase == "slice_hand_on" else stack, seaweed, bucket, s3_client)
    row.submit(cdn.url(path, mode="slow", rate=rate), strategy)
    if phase == "hash_pass":  # reading, nothing uploaded yet: the key is not known
        wait_for(lambda: row.asset().bytes_done >= 2 * MiB, timeout=60)
        assert no_multipart_uploads(s3_client, bucket)
    elif phase == "upload":  # parts are going up while the next ones are read
        wait_for(lambda: not no_multipart_uploads(s3_client, bucket), timeout=60)
        wait_for(lambda: row.asset().bytes_done >= 20 * MiB, timeout=60)
    else:  # a slice handed on (a second Range request) and the copy goes on
        wait_for(lambda: len(cdn.bodies(path)) >= 3, timeout=60)
    assert any(b.ended is None for b in cdn.bodies(path)) or phase == "slice_hand_on"
    t0 = row.cancel()
    stopped = _stopped_reading(cdn, path, t0)
    retried = _then_canceled_clean_and_retryable(row, t0)
    print(f"{phase}: reads stopped {stopped:.2f}s after DELETE; retry accepted at {retried:.2f}s")
    assert stopped < STOP_WITHIN, f"{phase}: the worker read on for {stopped:.2f}s"
    row.end()


def test_cancel_ends_an_asset_waiting_for_its_source_at_once(
    stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str, s3_client: Any
) -> None:
    """The source said "not ready, come back in 300 s": no delivery holds the asset, so
    the cancel itself ends it; the retry is accepted at once, not after 300 s."""
    path = "/cancel-waiting.mp4"
    cdn.add(path, os.urandom(MiB), content_type="video/mp4")
    row = Row(stack, seaweed, bucket, s3_client)
    row.submit(cdn.url(path, mode="flaky5xx", n=1000, status=503, retry_after=300), "hierarchical")
    wait_for(lambda: row.asset().state == AssetState.WAITING_SOURCE, timeout=30)
    t0 = row.cancel()
    assert row.asset().state == AssetState.CANCELED  # when the DELETE answered
    assert time.monotonic() - t0 < STOP_WITHIN
    assert cdn.bodies(path) == []  # it never read a byte
    retried = _then_canceled_clean_and_retryable(row, t0)
    print(f"waiting_source: canceled with the DELETE; retry accepted at {retried:.2f}s")
    wait_for(lambda: row.asset().state == AssetState.WAITING_SOURCE, timeout=30)  # tried again
    row.end()


def test_cancel_reaches_a_copy_waiting_out_a_retry_backoff(
    stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str, s3_client: Any
) -> None:
    """The source answers 500: the asset waits seconds between tries (no delivery holds
    it). The cancel sends it a delivery now, instead of leaving it `copying` (and the
    retry refused) until its delayed message comes."""
    path = "/cancel-backoff.mp4"
    cdn.add(path, os.urandom(MiB), content_type="video/mp4")
    row = Row(stack, seaweed, bucket, s3_client)
    row.submit(cdn.url(path, mode="flaky5xx", n=1000, status=500), "hierarchical")

    def waiting_long() -> bool:
        retry = row.asset().retry
        return retry is not None and retry.next_try_at > utc_now() + timedelta(seconds=2)

    wait_for(waiting_long, timeout=60)
    t0 = row.cancel()
    wait_for(lambda: row.asset().state == AssetState.CANCELED, timeout=30)
    ended = time.monotonic() - t0
    retried = _then_canceled_clean_and_retryable(row, t0)
    print(f"retry backoff: canceled {ended:.2f}s after DELETE; retry accepted at {retried:.2f}s")
    assert ended < STOP_WITHIN, f"the asset stayed copying {ended:.1f}s after the cancel"
    row.end()
