"""A tenant's concurrent-job limit, kept in Redis so every API replica and sink agrees.

The sorted set `{ns}:active:{tenant}` holds the ids of jobs admitted and not yet
known to be over, scored by admission time. Nothing removes ids when a job ends
(the workers stay unaware of quotas); instead admission prunes ids whose job is
terminal, or has no record a minute after admission (expired, or its submit
failed), then counts, then adds, all in one Lua script: two concurrent submits
cannot both take the last slot.
"""

from __future__ import annotations

import time
from typing import Any

from genblaze_s3.ingest.models import TERMINAL_JOB_STATES
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.boundary import store_boundary

# KEYS[1]: the tenant's active set. ARGV: job id, limit, job-key prefix, now, states...
_ADMIT = """
local members = redis.call('zrange', KEYS[1], 0, -1, 'WITHSCORES')
local terminal = {}
local now = tonumber(ARGV[4])
for i = 5, #ARGV do terminal[ARGV[i]] = true end
for i = 1, #members, 2 do
  local id = members[i]
  local state = redis.call('hget', ARGV[3] .. id, 'state')
  if (state and terminal[state]) or (not state and tonumber(members[i + 1]) < now - 60) then
    redis.call('zrem', KEYS[1], id)
  end
end
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('zadd', KEYS[1], now, ARGV[1])
return 1
"""


@store_boundary
class ActiveJobs:
    """Admit a job under its tenant's `max_concurrent_jobs`, or refuse it.

    Part of the store's boundary: a Redis outage raises StoreUnavailableError (503).
    """

    def __init__(self, client: Any) -> None:
        self._redis = client
        self._script: Any = None

    def admit(self, tenant: str, job_id: str, limit: int) -> bool:
        if self._script is None:
            self._script = self._redis.register_script(_ADMIT)
        prefix = keys.job_key("")
        states = [s.value for s in TERMINAL_JOB_STATES]
        args = [job_id, limit, prefix, time.time(), *states]
        return bool(self._script(keys=[keys.active_jobs_key(tenant)], args=args))

    def release(self, tenant: str, job_id: str) -> None:
        """Give back a slot taken for a job that was not created after all."""
        self._redis.zrem(keys.active_jobs_key(tenant), job_id)
