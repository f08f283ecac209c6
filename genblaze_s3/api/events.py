"""Server-sent events fed by Redis pub/sub: one store read per change, however many watch.

Why a hub: every asset write publishes "version record" on its job's channel (the
store's compare-and-set script does it in the same atomic step). One listener per
API process receives those messages, reads the job's summary once (a constant
number of fields, see ingest/listing.py) and hands the same delta to every client
watching that job. N clients therefore cost the store O(1) reads per change instead
of N polls per interval. A burst of changes to one job is coalesced into one read.

Resuming: each event's id is the job version it reflects. A client reconnecting with
`Last-Event-ID: v` gets no snapshot when nothing changed since v, else one snapshot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import redis

from genblaze_s3.ingest.models import TERMINAL_JOB_STATES, AssetView
from genblaze_s3.ingest.store import keys, listing
from genblaze_s3.ingest.store.status import StatusStore

logger = logging.getLogger("genblaze_s3.api.events")
_VIEW_FIELDS = tuple(AssetView.model_fields)
_TERMINAL = {s.value for s in TERMINAL_JOB_STATES}
_PATTERN = f"{keys.NAMESPACE}:events:*"


class _Watcher:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)

    def push(self, event: dict[str, Any]) -> None:
        def put() -> None:
            if self.queue.full():  # a slow client: drop its oldest delta, keep the newest
                self.queue.get_nowait()
            self.queue.put_nowait(event)

        self.loop.call_soon_threadsafe(put)


class EventHub:
    """One pub/sub listener thread per process, fanning job deltas out to watchers."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._watchers: dict[str, set[_Watcher]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()

    # -- watchers -------------------------------------------------------------
    def watch(self, job_id: str, loop: asyncio.AbstractEventLoop) -> _Watcher:
        """Register a watcher (call from a thread: the first one waits for SUBSCRIBE)."""
        w = _Watcher(loop)
        with self._lock:
            self._watchers.setdefault(job_id, set()).add(w)
            self._start()
        self._ready.wait(5)  # subscribed before the caller reads its snapshot
        return w

    def unwatch(self, job_id: str, w: _Watcher) -> None:
        with self._lock:
            ws = self._watchers.get(job_id)
            if ws is not None:
                ws.discard(w)
                if not ws:
                    del self._watchers[job_id]

    def watching(self, job_id: str) -> int:
        with self._lock:
            return len(self._watchers.get(job_id, ()))

    # -- the listener -----------------------------------------------------------
    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._ready.clear()
            self._thread = threading.Thread(target=self._run, name="sse-hub", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe(_PATTERN)
                self._ready.set()
                try:
                    self._listen(pubsub)
                finally:
                    pubsub.close()
            except redis.RedisError as exc:
                logger.warning("event hub: store unavailable (%s); retrying", type(exc).__name__)
                self._stop.wait(1.0)

    def _listen(self, pubsub: Any) -> None:
        while not self._stop.is_set():
            msg = pubsub.get_message(timeout=1.0)
            if msg is None:
                continue
            pending: dict[str, list[bytes | str]] = {}
            while msg is not None:  # drain the burst: one summary read per job
                channel = msg["channel"]
                channel = channel.decode() if isinstance(channel, bytes) else channel
                job_id = channel.rsplit(":", 1)[-1]
                pending.setdefault(job_id, []).append(msg["data"])
                msg = pubsub.get_message(timeout=0)
            for job_id, messages in pending.items():
                with self._lock:
                    watchers = list(self._watchers.get(job_id, ()))
                if watchers:
                    event = self._delta(job_id, messages)
                    if event is not None:
                        for w in watchers:
                            w.push(event)

    def _delta(self, job_id: str, messages: list[bytes | str]) -> dict[str, Any] | None:
        changed: dict[str, dict[str, Any]] = {}
        for raw in messages:
            text = raw.decode() if isinstance(raw, bytes) else raw
            _, _, body = text.partition(" ")
            try:
                rec = json.loads(body)
            except ValueError:
                continue
            if "asset_id" in rec:
                changed[rec["asset_id"]] = {k: rec.get(k) for k in _VIEW_FIELDS}
        summary = listing.job_summary(self._client, job_id)
        if summary is None:
            return None
        data = {**summary.doc, "assets": list(changed.values())}
        return {"id": str(summary.version), "event": "delta", "data": data}


async def job_events(
    hub: EventHub, store: StatusStore, job_id: str, last_event_id: str | None
) -> AsyncIterator[dict[str, str]]:
    """The SSE stream of one job: a snapshot (unless resuming at the current
    version), then deltas, until the job is terminal."""
    w = await asyncio.to_thread(hub.watch, job_id, asyncio.get_running_loop())
    try:
        found = await asyncio.to_thread(store.job_document, job_id)
        if found is None:
            return
        summary, doc = found
        seen = summary.version
        if last_event_id != str(summary.version):
            yield {"id": str(summary.version), "event": "job", "data": doc}
        if summary.doc["state"] in _TERMINAL:
            return
        while True:
            event = await w.queue.get()
            if int(event["id"]) <= seen:
                continue
            seen = int(event["id"])
            yield {**event, "data": json.dumps(event["data"], separators=(",", ":"))}
            if event["data"]["state"] in _TERMINAL:
                return
    finally:
        hub.unwatch(job_id, w)
