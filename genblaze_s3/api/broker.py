"""What the API asks the broker: is it up, how deep is each queue, how old its head.

Why the age of the oldest message and not only the depth: a depth of 40 is fine
if they are 2 s old and an outage if they are 2 h old. Neither Redis nor RabbitMQ
records when a Celery message was sent, so every sender stamps a header
(`ingest.submit.enqueue.message_headers`) and this module reads the head's stamp:

- Redis: kombu LPUSHes and BRPOPs, so the oldest message is the list's tail
  (LLEN and LINDEX -1, one round trip, read-only);
- RabbitMQ: a passive queue.declare answers the ready count; the head is read with
  basic.get and handed straight back with basic.reject(requeue), which puts it back
  at its place (RabbitMQ keeps a requeued message's position). A requeued message is
  flagged `redelivered`, and a worker runs a redelivered chunk one asset at a time
  (it may hold an asset that killed a child), so the head is read at most once per
  AMQP_PEEK_SECONDS per queue: in between, the age is counted from the last head
  read while messages wait (it may then be up to that long behind the real head).
  The depth alone (/metrics' gauge) never reads a message.

A broker that does not answer gives no figure (None), never an error page.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import redis

from genblaze_s3.ingest.store.fleet import QueueStats
from genblaze_s3.ingest.submit.enqueue import SENT_AT_HEADER


def _age(sent_at: Any, now: float) -> float | None:
    try:
        return max(0.0, round(now - float(sent_at), 1))
    except (TypeError, ValueError):
        return None


AMQP_PEEK_SECONDS = 30.0


class BrokerProbe:
    """Ping and per-queue stats for a Redis or an AMQP broker URL."""

    def __init__(self, broker_url: str, queues: list[str]) -> None:
        self.url = broker_url
        self.queues = queues
        self._peeked: dict[str, tuple[float, float | None]] = {}  # queue -> (read at, sent at)
        self._lock = threading.Lock()
        self._redis: redis.Redis | None = None
        if broker_url.startswith(("redis://", "rediss://", "unix://")):
            self._redis = redis.Redis.from_url(
                broker_url, socket_timeout=2, socket_connect_timeout=2
            )

    @property
    def kind(self) -> str:
        return "redis" if self._redis is not None else "amqp"

    def ping(self) -> bool:
        if self._redis is not None:
            return bool(self._redis.ping())
        from kombu import Connection

        with Connection(self.url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
        return True

    def depth(self) -> int | None:
        """Messages waiting in the first (the ingest) queue, reading no message."""
        try:
            if self._redis is not None:
                return int(self._redis.llen(self.queues[0]))
            from kombu import Connection

            with Connection(self.url, connect_timeout=2) as conn:
                ok = conn.default_channel.queue_declare(queue=self.queues[0], passive=True)
            return int(ok.message_count)
        except Exception:  # broker down or queue not declared yet: no depth, not a 500
            return None

    def stats(self) -> list[QueueStats]:
        """Depth and oldest-message age of every queue (None where the broker is silent)."""
        try:
            if self._redis is not None:
                return self._redis_stats(self._redis)
            return self._amqp_stats()
        except Exception:  # broker down or queue not declared yet: no figure, not a 500
            return [QueueStats(name=q, depth=None, oldest_age_seconds=None) for q in self.queues]

    def _redis_stats(self, client: redis.Redis) -> list[QueueStats]:
        p = client.pipeline(transaction=False)
        for q in self.queues:
            p.llen(q)
            p.lindex(q, -1)
        out = p.execute()
        now = time.time()
        stats = []
        for i, q in enumerate(self.queues):
            depth, tail = int(out[2 * i]), out[2 * i + 1]
            stats.append(QueueStats(name=q, depth=depth, oldest_age_seconds=_redis_age(tail, now)))
        return stats

    def _amqp_stats(self) -> list[QueueStats]:
        from kombu import Connection

        stats = []
        with Connection(self.url, connect_timeout=2) as conn:
            channel = conn.channel()
            try:
                for q in self.queues:
                    try:
                        ok = channel.queue_declare(queue=q, passive=True)
                    except Exception:  # not declared yet (no worker ever started): no figure
                        channel = conn.channel()
                        stats.append(QueueStats(name=q, depth=None, oldest_age_seconds=None))
                        continue
                    depth = int(ok.message_count)
                    age = self._amqp_age(channel, q) if depth else None
                    stats.append(QueueStats(name=q, depth=depth, oldest_age_seconds=age))
            finally:
                channel.close()
        return stats

    def _amqp_age(self, channel: Any, queue: str) -> float | None:
        """The head's age, reading the head at most once per AMQP_PEEK_SECONDS."""
        now = time.monotonic()
        with self._lock:
            last = self._peeked.get(queue)
            if last is None or now - last[0] >= AMQP_PEEK_SECONDS:
                last = (now, _amqp_head_sent_at(channel, queue))
                self._peeked[queue] = last
        return _age(last[1], time.time()) if last[1] is not None else None


def _redis_age(raw: bytes | None, now: float) -> float | None:
    if raw is None:
        return None
    try:
        headers = json.loads(raw).get("headers") or {}
    except (ValueError, AttributeError):
        return None
    return _age(headers.get(SENT_AT_HEADER), now)


def _amqp_head_sent_at(channel: Any, queue: str) -> float | None:
    """When the head message was sent (its stamp), handing it straight back."""
    message = channel.basic_get(queue=queue, no_ack=False)
    if message is None:
        return None
    try:
        sent = (message.headers or {}).get(SENT_AT_HEADER)
        return float(sent) if isinstance(sent, int | float) else None
    finally:
        channel.basic_reject(message.delivery_tag, requeue=True)
