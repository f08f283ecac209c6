"""A tenant's job list costs the same with 100,000 finished jobs in retention as with 10.

Issue 23's "cost that does not grow with work": the list reads one index and the page's
summaries, so its Redis commands per page are pinned by the page, not by the history.
Real Valkey (the module's private one: 100,000 jobs do not belong in the session's store); the
first jobs are real (`create_job`, then finished), the rest are copies of a finished
job's hash and index entries, written in pipelines, so the store holds what 100,000
finished jobs leave for the retention period.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import redis

from genblaze_s3.ingest.models import AssetState, JobState
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.cursors import parse_job_cursor
from genblaze_s3.ingest.store.listing import JobFilter
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.local.services import EmbeddedRedis
from tests.support.cost import command_delta, commandstats
from tests.unit.ingest_fixtures import make_submission

TENANT = "acme"
HISTORY = 100_000
PAGE = 50


def _finished_job(store: StatusStore) -> str:
    sub = make_submission(2, tenant=TENANT)
    store.create_job(sub.meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload)
    job_id = sub.meta.job_id
    for aid in sub.meta.asset_ids:
        store.start_asset(job_id, aid, worker="w:1")
        store.finish_asset(job_id, aid, AssetState.STORED, key=f"k/{aid}", sha256="0" * 64, size=1)
    store.transition_job(job_id, JobState.RUNNING)
    store.transition_job(job_id, JobState.SUCCEEDED)
    return job_id


def _copy_history(client: redis.Redis, template: str, n: int) -> None:
    """n more finished jobs like `template`, older than every real one, in its indexes."""
    fields = client.hgetall(keys.job_key(template))
    indexes = [
        k
        for k in (keys.tenant_jobs_key(TENANT), keys.tenant_jobs_key(TENANT, "succeeded"))
        if client.zscore(k, template) is not None
    ]
    oldest = time.time() - 86_400
    for start in range(0, n, 5_000):
        p = client.pipeline(transaction=False)
        for i in range(start, min(n, start + 5_000)):
            job_id = f"{i:032x}"
            p.hset(keys.job_key(job_id), mapping={**fields, b"job_id": job_id.encode()})
            for index in indexes:
                p.zadd(index, {job_id: oldest - i})
        p.execute()


def _page_cost(store: StatusStore, after: str | None) -> tuple[Counter[str], dict[str, Any]]:
    before = commandstats(store.redis)
    page = store.list_jobs(TENANT, JobFilter(), after=parse_job_cursor(after), limit=PAGE)
    return command_delta(before, commandstats(store.redis)), page


def test_a_page_costs_the_same_with_100000_finished_jobs(module_redis: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(module_redis.url)
    store = StatusStore(client)
    real = [_finished_job(store) for _ in range(PAGE + 10)]  # two pages of real jobs
    first_cost, first = _page_cost(store, None)
    second_cost, second = _page_cost(store, first["next_cursor"])
    assert len(first["jobs"]) == PAGE and first["next_cursor"]
    assert {j["job_id"] for j in first["jobs"]} <= set(real)

    _copy_history(client, real[0], HISTORY)
    assert client.zcard(keys.tenant_jobs_key(TENANT)) == len(real) + HISTORY

    first_again, first_page = _page_cost(store, None)
    second_again, second_page = _page_cost(store, first_page["next_cursor"])
    # One index read and one batch of summaries (2 x page + 10) per page, whatever the
    # history holds; fewer only when the index has fewer jobs than a batch.
    batch = 2 * PAGE + 10
    bound = Counter({"zrevrangebyscore": 1, "hmget": batch, "hscan": batch})
    assert first_again == bound, first_again
    # after a cursor the batch starts at the cursor's own job, which is not read again
    assert second_again == bound - Counter({"hmget": 1, "hscan": 1}), second_again
    assert all(first_cost[k] <= v for k, v in bound.items()) and set(first_cost) == set(bound)
    assert all(second_cost[k] <= v for k, v in bound.items())
    assert [j["job_id"] for j in first_page["jobs"]] == [j["job_id"] for j in first["jobs"]]
    assert [j["job_id"] for j in second_page["jobs"]][:10] == [j["job_id"] for j in second["jobs"]]
    assert len(second_page["jobs"]) == PAGE  # 10 real, then the history's newest
    assert second_page["jobs"][-1]["job_id"] not in real
