"""Compare-and-set of one asset record: the StatusStore's write path for assets.

Why its own module: it is the one subtle piece of the store. Several deliveries of
one asset may race (a redelivery, a worker that lost its lease), so every change
is checked against the legal transitions (`transitions.py`) and written only over
the record it was computed from. The fast path is one round trip (a Lua
compare-and-set against the record this process last saw); when the process has
not seen the record, or the fast path loses a race, a WATCH transaction decides.
"""

from __future__ import annotations

from typing import Any

import redis

from genblaze_s3.ingest import keys
from genblaze_s3.ingest.models import TERMINAL_ASSET_STATES, AssetRecord, AssetState, utc_now
from genblaze_s3.ingest.transitions import can_transition_asset

# Replace an asset record only if it still holds exactly what this process last saw,
# then bump the job's version and (on a terminal move) its counters: one round trip
# instead of WATCH/GET/MULTI/EXEC. ARGV[5..] are (stats field, amount) pairs.
_ASSET_CAS = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('hset', KEYS[2], 'updated_at', ARGV[4])
redis.call('hincrby', KEYS[2], 'version', 1)
for i = 5, #ARGV, 2 do
  if string.find(ARGV[i + 1], '.', 1, true) then
    redis.call('hincrbyfloat', KEYS[3], ARGV[i], ARGV[i + 1])
  else
    redis.call('hincrby', KEYS[3], ARGV[i], ARGV[i + 1])
  end
end
return 1
"""
_SEEN_MAX = 2_000  # asset records remembered for the CAS fast path (per process)


class AssetRecordWriter:
    """Writes asset records by compare-and-set; remembers what it last saw per record."""

    def __init__(self, client: redis.Redis, retention_seconds: int) -> None:
        self.redis = client
        self.retention = retention_seconds
        # Raw asset records as last read or written here: the expected value of the
        # one-round-trip compare-and-set. A stale entry only costs a fallback.
        self._seen: dict[str, bytes | str] = {}

    def remember(self, job_id: str, asset_id: str, raw: bytes | str) -> None:
        """`raw` is the record as just read: the next write may take the fast path."""
        if len(self._seen) >= _SEEN_MAX:
            self._seen.clear()  # only a cache: the next write takes the WATCH path
        self._seen[keys.asset_key(job_id, asset_id)] = raw

    def forget(self, job_id: str, asset_id: str) -> None:
        """The record is terminal: it is never written again."""
        self._seen.pop(keys.asset_key(job_id, asset_id), None)

    def queue(
        self,
        pipe: Any,
        job_id: str,
        asset_id: str,
        new: AssetState | None,
        fields: dict[str, Any],
        counters: list[tuple[str, float]] | None = None,
    ) -> str | None:
        """Queue the CAS script on `pipe` when this process knows the current record.

        `counters` (stats field, amount) are bumped by the same script when it writes.
        Returns the record it would write (None: no fast path; use `update`).
        """
        ak = keys.asset_key(job_id, asset_id)
        raw = self._seen.get(ak)
        if raw is None:
            return None
        updated = _next_record(raw, new, fields)
        if updated is None:
            return None
        args: list[Any] = [raw, updated, self.retention, utc_now().isoformat()]
        for name, amount in counters or ():
            args += [name, f"{amount:.6f}" if isinstance(amount, float) else int(amount)]
        # EVAL, not a Script object: redis-py precedes a pipeline holding a Script with a
        # SCRIPT EXISTS round trip; the server caches the compiled body by its hash anyway.
        pipe.eval(_ASSET_CAS, 3, ak, keys.job_key(job_id), keys.stats_key(), *args)
        return updated

    def update(
        self,
        job_id: str,
        asset_id: str,
        new: AssetState | None,
        fields: dict[str, Any],
        *,
        use_seen: bool = True,
    ) -> bool:
        """Compare-and-set one asset record; False when the change is illegal.

        `new=None` updates fields only, and only while the asset is not terminal.
        One round trip when this process last wrote (or read) the record, else a
        WATCH transaction.
        """
        ak = keys.asset_key(job_id, asset_id)
        if use_seen:
            p = self.redis.pipeline(transaction=False)
            updated = self.queue(p, job_id, asset_id, new, fields)
            if updated is not None and p.execute()[0]:
                self._after_write(job_id, asset_id, new, updated)
                return True
        moved: str | None = None

        def txn(pipe: Any) -> None:
            nonlocal moved
            moved = None
            raw = pipe.get(ak)
            if raw is None:
                return
            updated = _next_record(raw, new, fields)
            if updated is None:
                return
            pipe.multi()
            pipe.set(ak, updated, ex=self.retention)
            pipe.hset(keys.job_key(job_id), "updated_at", utc_now().isoformat())
            pipe.hincrby(keys.job_key(job_id), "version", 1)
            moved = updated

        self.redis.transaction(txn, ak)
        if moved is not None:
            self._after_write(job_id, asset_id, new, moved)
        return moved is not None

    def _after_write(self, job_id: str, asset_id: str, new: AssetState | None, raw: str) -> None:
        if new in TERMINAL_ASSET_STATES:
            self.forget(job_id, asset_id)
        else:
            self.remember(job_id, asset_id, raw)


def _next_record(raw: bytes | str, new: AssetState | None, fields: dict[str, Any]) -> str | None:
    """The record after the change, or None when the change is not legal from `raw` (pure)."""
    rec = AssetRecord.model_validate_json(raw)
    if new is None:
        if rec.state in TERMINAL_ASSET_STATES:
            return None
    elif not can_transition_asset(rec.state, new):
        return None
    return rec.model_copy(update={**fields, **({"state": new} if new else {})}).model_dump_json()
