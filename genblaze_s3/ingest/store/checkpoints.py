"""RedisCheckpointStore: the copy engine's CheckpointStore protocol on Redis.

Why Redis: a redelivered task may run on another host; the upload id and the
completed parts must be where every worker can read them, so the new delivery
resumes the multipart upload instead of starting over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis

from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.boundary import store_boundary

if TYPE_CHECKING:
    from genblaze_s3.transfer import Checkpoint


@store_boundary
class RedisCheckpointStore:
    """load/save/clear checkpoints as JSON strings with the store's retention.

    Part of the store's boundary: a Redis outage raises StoreUnavailableError, which the
    copy engine passes through untouched (a ``CheckpointStoreUnavailable``): the delivery
    goes back to the broker and the upload stays for the resume.
    """

    def __init__(
        self, client: redis.Redis, *, retention_seconds: int = keys.DEFAULT_RETENTION_SECONDS
    ):
        self._redis = client
        self._retention = retention_seconds

    def load(self, checkpoint_id: str) -> Checkpoint | None:
        from genblaze_s3.transfer import Checkpoint

        raw = self._redis.get(keys.checkpoint_key(checkpoint_id))
        if raw is None:
            return None
        return Checkpoint.from_json(raw.decode() if isinstance(raw, bytes) else raw)

    def save(self, checkpoint_id: str, cp: Checkpoint) -> None:
        self._redis.set(keys.checkpoint_key(checkpoint_id), cp.to_json(), ex=self._retention)

    def clear(self, checkpoint_id: str) -> None:
        self._redis.delete(keys.checkpoint_key(checkpoint_id))


class PreloadedCheckpoint:
    """One copy's checkpoint store whose first read was already done (`AssetLease.take`).

    Why: the lease's acquire reads the asset's checkpoint in the same round trip, and
    only the lease holder writes it, so the copy's "is there one to resume" needs no
    second read. Every later read, and every write, goes to the store.
    """

    def __init__(self, store: RedisCheckpointStore, checkpoint_id: str, raw: str | None):
        self._store = store
        self._id = checkpoint_id
        self._raw: str | None = raw
        self._fresh = True

    def load(self, checkpoint_id: str) -> Checkpoint | None:
        if self._fresh and checkpoint_id == self._id:
            self._fresh = False
            if self._raw is None:
                return None
            from genblaze_s3.transfer import Checkpoint

            return Checkpoint.from_json(self._raw)
        return self._store.load(checkpoint_id)

    def save(self, checkpoint_id: str, cp: Checkpoint) -> None:
        self._fresh = False
        self._store.save(checkpoint_id, cp)

    def clear(self, checkpoint_id: str) -> None:
        self._fresh = False
        self._store.clear(checkpoint_id)
