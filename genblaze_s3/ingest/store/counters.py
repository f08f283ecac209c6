"""Per-job counters kept beside the job record, so reading a job costs O(1).

Why counters and not a scan: a 10,000-asset job polled by many clients (API, CLI,
the web page) must not cost 10,000 record reads per poll. Every asset write already
knows the record before and after the change, so it adds the *difference* to a few
fields of the job hash in the same atomic step (the Lua script below):

| job hash field   | meaning                                         |
|------------------|-------------------------------------------------|
| n:{state}        | assets in that asset state                      |
| bytes_done       | bytes copied so far, all assets                 |
| bytes_total      | sum of the known sizes                          |
| bytes_unknown    | assets whose size is not known yet              |
| e:{code}         | failed assets with that error code              |

The same script moves the asset between the job's per-state sorted sets (paging
by state) and publishes the change on the job's events channel (SSE), so a
watcher learns of every write without polling. Pure parts are unit-tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from genblaze_s3.ingest.models import AssetState
from genblaze_s3.ingest.store import keys

STATE_PREFIX = "n:"
ERROR_PREFIX = "e:"
BYTES_FIELDS = ("bytes_done", "bytes_total", "bytes_unknown")

# Compare-and-set one asset record, then in the same atomic step: refresh its TTL,
# add the counter differences to the job hash, move it between per-state sets,
# add the /metrics counters, bump the job version and publish "version record".
# KEYS: asset, job, stats, old-state set, new-state set, this hour's series hash
# (a stats field starting with '@' goes to the series hash: the fleet view's chart).
# ARGV: expected, new, retention, updated_at, asset_id, seq, channel, n,
#       n (job field, delta) pairs, then (stats field, amount) pairs.
ASSET_CAS = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('hset', KEYS[2], 'updated_at', ARGV[4])
local i = 9
for _ = 1, tonumber(ARGV[8]) do
  redis.call('hincrby', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
if KEYS[4] ~= KEYS[5] then
  redis.call('zrem', KEYS[4], ARGV[5])
  redis.call('zadd', KEYS[5], ARGV[6], ARGV[5])
  redis.call('expire', KEYS[5], ARGV[3])
end
local series = false
while i <= #ARGV do
  local key, field = KEYS[3], ARGV[i]
  if string.sub(field, 1, 1) == '@' then
    key, field, series = KEYS[6], string.sub(field, 2), true
  end
  if string.find(ARGV[i + 1], '.', 1, true) then
    redis.call('hincrbyfloat', key, field, ARGV[i + 1])
  else
    redis.call('hincrby', key, field, ARGV[i + 1])
  end
  i = i + 2
end
if series then redis.call('expire', KEYS[6], SERIES_TTL) end
local v = redis.call('hincrby', KEYS[2], 'version', 1)
redis.call('publish', ARGV[7], v .. ' ' .. ARGV[2])
return 1
""".replace("SERIES_TTL", str(keys.SERIES_TTL_SECONDS))


def contribution(record: Mapping[str, Any]) -> dict[str, int]:
    """What one asset record adds to its job's counters (pure)."""
    out: dict[str, int] = {STATE_PREFIX + record["state"]: 1}
    out["bytes_done"] = int(record.get("bytes_done") or 0)
    total = record.get("bytes_total")
    if total is None:
        out["bytes_unknown"] = 1
    else:
        out["bytes_total"] = int(total)
    error = record.get("error")
    if record["state"] == AssetState.FAILED.value and error:
        out[ERROR_PREFIX + error["code"]] = 1
    return out


def delta(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, int]:
    """Counter changes when an asset record goes from `old` to `new` (zeros dropped)."""
    out = dict(contribution(new))
    for k, v in (contribution(old) if old else {}).items():
        out[k] = out.get(k, 0) - v
    return {k: v for k, v in out.items() if v}


def totals(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The counters of a whole job (its records at submit time, or a recount)."""
    out: dict[str, int] = {}
    for r in records:
        for k, v in contribution(r).items():
            out[k] = out.get(k, 0) + v
    return out


def cas_args(
    expected: bytes | str,
    updated: bytes | str,
    *,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    retention: int,
    updated_at: str,
    channel: str,
    stats: list[tuple[str, float]] | None = None,
) -> tuple[list[Any], str, str, str]:
    """ARGV for ASSET_CAS plus (asset_id, old state, new state) for the set keys.

    ``old`` / ``new``: the two records (as stored: ``expected`` / ``updated``), or at
    least the fields `contribution` reads, their ``asset_id`` and ``seq``."""
    changes = delta(old, new)
    args: list[Any] = [
        expected,
        updated,
        retention,
        updated_at,
        new["asset_id"],
        int(new.get("seq") or 0),
        channel,
        len(changes),
    ]
    for field, amount in changes.items():
        args += [field, amount]
    for name, value in stats or ():
        args += [name, f"{value:.6f}" if isinstance(value, float) else int(value)]
    return args, new["asset_id"], old["state"], new["state"]
