"""A job's changes as they happen: the store's events channel, for a waiter in Python.

Why: `JobHandle.wait()` polled the job's state every `poll_interval` (0.2 s by default),
so a caller waiting on a run that took 90 ms waited up to 200 ms more. Every asset
write (its Lua script) and every job transition already publishes on the job's
events channel (what the API's SSE endpoint streams); a waiter subscribed to it
re-reads the state as soon as anything moved. The poll stays as the floor: a
message lost with a dropped connection costs at most one interval, as before.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import redis

from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.boundary import store_boundary


@store_boundary
class JobChanges:
    """Subscribed to one job's events channel until closed (a dedicated connection)."""

    def __init__(self, client: redis.Redis, job_id: str) -> None:
        self._pubsub: Any = client.pubsub(ignore_subscribe_messages=True)
        try:
            self._pubsub.subscribe(keys.events_channel(job_id))
        except BaseException:
            self._pubsub.close()
            raise

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for the job's next change; True when one came
        (the changes queued meanwhile are read too: one state read covers them all)."""
        if self._pubsub is None:
            time.sleep(max(0.0, timeout))
            return False
        try:
            got = self._pubsub.get_message(timeout=max(0.0, timeout)) is not None
            while got and self._pubsub.get_message(timeout=0.0) is not None:
                pass
        except redis.ResponseError:
            # The server refused the subscription (an ACL user without rights to the
            # channel: NOPERM arrives with the first read). The caller's poll still
            # works: sleep like it did before there was a channel to listen on.
            self.close()
            time.sleep(max(0.0, timeout))
            return False
        return got

    def close(self) -> None:
        if self._pubsub is not None:
            self._pubsub.close()
            self._pubsub = None

    def __enter__(self) -> JobChanges:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
