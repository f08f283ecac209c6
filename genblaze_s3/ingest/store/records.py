"""Compare-and-set of one asset record: the StatusStore's write path for assets.

Why its own module: it is the one subtle piece of the store. Several deliveries of
one asset may race (a redelivery, a worker that lost its lease), so every change
is checked against the legal transitions (`transitions.py`) and written only over
the record it was computed from. The fast path is one round trip (a Lua
compare-and-set against the record this process last saw); when the process has
not seen the record, or the fast path loses a race, it reads the record and
compares-and-sets again. The script (counters.py) also keeps the job's counters,
per-state sets and events channel in step with every write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import redis

from genblaze_s3.ingest.models import TERMINAL_ASSET_STATES, AssetRecord, AssetState, utc_now
from genblaze_s3.ingest.store import counters as job_counters
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store import stats as stat_names
from genblaze_s3.ingest.transitions import can_transition_asset

_SEEN_MAX = 2_000  # asset records remembered for the CAS fast path (per process)


class _Seen(NamedTuple):
    """A record as last read or written here: its stored form, and that form parsed.

    Why the parsed one too: a small asset's record is parsed for the snapshot, then
    for its start, then for its finish, each time from the string this process has
    just parsed or written; keeping the model saves two of those three parses
    (pydantic's validate was ~5% of a 64 KiB asset's worker CPU, py-spy).
    """

    raw: bytes | str
    record: AssetRecord


class AssetRecordWriter:
    """Writes asset records by compare-and-set; remembers what it last saw per record."""

    def __init__(self, client: redis.Redis, retention_seconds: int) -> None:
        self.redis = client
        self.retention = retention_seconds
        # Raw asset records as last read or written here: the expected value of the
        # one-round-trip compare-and-set. A stale entry only costs a fallback.
        # Records handed out (`snapshot`) are read, never changed, by their callers.
        self._seen: dict[str, _Seen] = {}

    def remember(
        self, job_id: str, asset_id: str, raw: bytes | str, record: AssetRecord | None = None
    ) -> None:
        """`raw` (parsed: `record`) is the record as just read or written: the next
        write may take the fast path."""
        if len(self._seen) >= _SEEN_MAX:
            self._seen.clear()  # only a cache: the next write takes the WATCH path
        if record is None:
            record = AssetRecord.model_validate_json(raw)
        self._seen[keys.asset_key(job_id, asset_id)] = _Seen(raw, record)

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
        *,
        expected: bytes | str | None = None,
    ) -> _Seen | None:
        """Queue the CAS script on `pipe` against `expected` (default: the record this
        process last saw). `counters` (stats field, amount) are bumped by the same
        script when it writes. Returns the record it would write (None: no known
        record, or the change is not legal from it).
        """
        if expected is not None:
            before = _Seen(expected, AssetRecord.model_validate_json(expected))
        else:
            seen = self._seen.get(keys.asset_key(job_id, asset_id))
            if seen is None:
                return None
            before = seen
        after = _next_record(before.record, new, fields)
        if after is None:
            return None
        self._queue_script(pipe, job_id, before, after, counters)
        return after

    def _queue_script(
        self,
        pipe: Any,
        job_id: str,
        before: _Seen,
        after: _Seen,
        counters: list[tuple[str, float]] | None,
    ) -> None:
        args, asset_id, old_state, new_state = job_counters.cas_args(
            before.raw,
            after.raw,
            old=_counted(before.record),
            new=_counted(after.record),
            retention=self.retention,
            updated_at=utc_now().isoformat(),
            channel=keys.events_channel(job_id),
            stats=counters,
        )
        # EVAL, not a Script object: redis-py precedes a pipeline holding a Script with a
        # SCRIPT EXISTS round trip; the server caches the compiled body by its hash anyway.
        pipe.eval(
            job_counters.ASSET_CAS,
            6,
            keys.asset_key(job_id, asset_id),
            keys.job_key(job_id),
            keys.stats_key(),
            keys.job_assets_key(job_id, old_state),
            keys.job_assets_key(job_id, new_state),
            keys.series_key(_series_hour(counters)),
            *args,
        )

    def update(
        self,
        job_id: str,
        asset_id: str,
        new: AssetState | None,
        fields: dict[str, Any],
        *,
        use_seen: bool = True,
        counters: list[tuple[str, float]] | None = None,
        then: Callable[[Any, bytes | str], None] | None = None,
    ) -> bool:
        """Compare-and-set one asset record; False when the change is illegal.

        `new=None` updates fields only, and only while the asset is not terminal.
        One round trip when this process last wrote (or read) the record; otherwise
        read it and compare-and-set, again while another writer keeps winning.
        `then(pipe, written)` queues more commands after each compare-and-set, in its
        round trip (they must check for themselves that `written` landed).
        """
        if use_seen:
            p = self.redis.pipeline(transaction=False)
            updated = self.queue(p, job_id, asset_id, new, fields, counters)
            if updated is not None and then is not None:
                then(p, updated.raw)
            if updated is not None and p.execute()[0]:
                self._after_write(job_id, asset_id, new, updated)
                return True
        self.forget(job_id, asset_id)
        ak = keys.asset_key(job_id, asset_id)
        while True:
            raw = self.redis.get(ak)
            if raw is None:
                return False
            p = self.redis.pipeline(transaction=False)
            updated = self.queue(p, job_id, asset_id, new, fields, counters, expected=raw)
            if updated is None:
                return False
            if then is not None:
                then(p, updated.raw)
            if p.execute()[0]:
                self._after_write(job_id, asset_id, new, updated)
                return True

    def reopen(self, job_id: str, asset_id: str, *, source_url: str | None = None) -> bool:
        """A retry: a failed or canceled asset back to queued, its error, bytes and
        delivery count cleared (the one move out of a terminal asset state)."""
        ak = keys.asset_key(job_id, asset_id)
        while True:
            raw = self.redis.get(ak)
            if raw is None:
                return False
            rec = AssetRecord.model_validate_json(raw)
            if rec.state not in (AssetState.FAILED, AssetState.CANCELED, AssetState.QUEUED):
                return False
            changes: dict[str, Any] = {
                "state": AssetState.QUEUED,
                "error": None,
                "bytes_done": 0,
                "worker": None,
                "bytes_uploaded": None,
                "retry": None,
            }
            if source_url is not None:
                changes["source_url"] = source_url
            reopened = rec.model_copy(update=changes)
            after = _Seen(reopened.model_dump_json(), reopened)
            p = self.redis.pipeline(transaction=False)
            self._queue_script(p, job_id, _Seen(raw, rec), after, [(stat_names.ASSETS_RETRIED, 1)])
            p.srem(keys.done_key(job_id), asset_id)
            p.delete(keys.attempts_key(job_id, asset_id), keys.retries_key(job_id, asset_id))
            if p.execute()[0]:
                self.forget(job_id, asset_id)
                return True

    def _after_write(
        self, job_id: str, asset_id: str, new: AssetState | None, written: _Seen
    ) -> None:
        if new in TERMINAL_ASSET_STATES:
            self.forget(job_id, asset_id)
        else:
            self.remember(job_id, asset_id, written.raw, written.record)


def _next_record(rec: AssetRecord, new: AssetState | None, fields: dict[str, Any]) -> _Seen | None:
    """The record after the change, or None when the change is not legal from `rec` (pure).

    The changed model is kept beside its stored form (`_Seen`): the fields a writer
    passes are of the model's own types, so it is what parsing that form gives.
    """
    if new is None:
        if rec.state in TERMINAL_ASSET_STATES:
            return None
    elif not can_transition_asset(rec.state, new):
        return None
    changed = rec.model_copy(update={**fields, **({"state": new} if new else {})})
    return _Seen(record_json(changed), changed)


def _counted(rec: AssetRecord) -> dict[str, Any]:
    """The fields of a record `counters.cas_args` reads (its id, its place, and what its
    job's counters are made of: `counters.contribution`)."""
    error = rec.error
    return {
        "asset_id": rec.asset_id,
        "seq": rec.seq,
        "state": AssetState(rec.state).value,
        "bytes_done": rec.bytes_done,
        "bytes_total": rec.bytes_total,
        "error": {"code": error.code} if error is not None else None,
    }


def record_json(rec: AssetRecord) -> str:
    """An asset record as stored: a terminal one without its top-level nulls.

    Why: a finished record is kept for the whole retention period (7 days by default),
    and its unused fields (error, retry, retry_at, waiting_since, source_expires_at,
    ...) were a tenth of its bytes. Every reader of raw records reads fields with
    ``.get`` (a missing field is the null it was); pydantic readers fill them in.
    Records still in flight keep every field (the CAS compares whole strings).
    """
    if rec.state not in TERMINAL_ASSET_STATES:
        return rec.model_dump_json()
    nulls = {name for name, value in rec if value is None}
    return rec.model_dump_json(exclude=nulls)


def _series_hour(counters: list[tuple[str, float]] | None) -> int:
    """The hour whose series hash the '@{epoch minute}:{name}' counters go to (0: none)."""
    for name, _ in counters or ():
        if name.startswith("@"):
            return int(name[1:].partition(":")[0]) // 60
    return 0
