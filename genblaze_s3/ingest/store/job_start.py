"""A job's move from queued to running, in the round trip of the asset start that causes it.

Why a script and not `StatusStore.transition_job`: that move is a WATCH transaction
on the job's hash (WATCH, HMGET, MULTI..EXEC: two round trips), and the assets that
start a job are the writers that keep changing that hash (their counters). The
assets of a chunk start side by side and each saw the job queued: each paid the
transaction, most paid it twice after losing the race (a 3-asset run: 9 WATCHes where
3 did the work, `tests/integration/test_cost.py`). This script rides the asset's own
compare-and-set pipeline, moves the job only if that asset's start landed and the job
is still queued, and writes what `transition_job` writes for the move: state,
updated_at, version, the jobs-entered counter, the tenant's per-state listing, the
events message.
"""

from __future__ import annotations

import json
from typing import Any

from genblaze_s3.ingest.models import JobState, utc_now
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store import stats as stat_names

# KEYS: asset, job, stats, the tenant's queued listing, its running listing.
# ARGV: the asset record the start wrote, updated_at, retention, job_id, the event body.
JOB_START = (
    """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
local job = redis.call('hmget', KEYS[2], 'state', 'created_ts')
if job[1] ~= 'QUEUED' then return 0 end
redis.call('hset', KEYS[2], 'state', 'RUNNING', 'updated_at', ARGV[2])
local v = redis.call('hincrby', KEYS[2], 'version', 1)
redis.call('expire', KEYS[2], ARGV[3])
redis.call('hincrby', KEYS[3], 'ENTERED', 1)
local created = job[2]
if created then
  redis.call('zrem', KEYS[4], ARGV[4])
  redis.call('zadd', KEYS[5], created, ARGV[4])
  redis.call('expire', KEYS[5], 2 * tonumber(ARGV[3]))
end
redis.call('publish', 'CHANNEL_PREFIX' .. ARGV[4], v .. ' ' .. ARGV[5])
return 1
""".replace("QUEUED", JobState.QUEUED.value)
    .replace("RUNNING", JobState.RUNNING.value)
    .replace("ENTERED", stat_names.jobs_entered(JobState.RUNNING))
    .replace("CHANNEL_PREFIX", keys.events_channel(""))
)

_EVENT = json.dumps({"job_state": JobState.RUNNING.value}, separators=(",", ":"))


def queue_job_start(
    pipe: Any, job_id: str, asset_id: str, tenant: str, written: bytes | str, retention: int
) -> None:
    """Queue the move on `pipe`, after the start that wrote `written` to the asset."""
    pipe.eval(
        JOB_START,
        5,
        keys.asset_key(job_id, asset_id),
        keys.job_key(job_id),
        keys.stats_key(),
        keys.tenant_jobs_key(tenant, JobState.QUEUED.value),
        keys.tenant_jobs_key(tenant, JobState.RUNNING.value),
        written,
        utc_now().isoformat(),
        retention,
        job_id,
        _EVENT,
    )
