"""What the API asks the broker: is it up, how deep is each queue, how old its head.

Why the age of the oldest message and not only the depth: a depth of 40 is fine
if they are 2 s old and an outage if they are 2 h old. Neither Redis nor RabbitMQ
records when a Celery message was sent, so every sender stamps a header
(`ingest.submit.enqueue.message_headers`) and this module reads the head's stamp:

- Redis: kombu LPUSHes and BRPOPs, so the oldest message is the list's tail
  (LLEN and LINDEX -1, one round trip, read-only);
- RabbitMQ: a passive queue.declare answers the ready count; the head is read with
  basic.get and handed straight back with basic.reject(requeue), which puts it back
  at its place (RabbitMQ keeps a requeued message's position).

A broker that does not answer gives no figure (None), never an error page.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import redis

from genblaze_s3.ingest.store.fleet import QueueStats
from genblaze_s3.ingest.submit.enqueue import SENT_AT_HEADER


def _age(sent_at: Any, now: float) -> float | None:
    try:
        return max(0.0, round(now - float(sent_at), 1))
    except (TypeError, ValueError):
        return None


class BrokerProbe:
    """Ping and per-queue stats for a Redis or an AMQP broker URL."""

    def __init__(self, broker_url: str, queues: list[str]) -> None:
        self.url = broker_url
        self.queues = queues
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
        """Messages waiting in the first (the ingest) queue; /metrics' gauge."""
        stats = self.stats()
        return stats[0].depth if stats else None

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
                    age = _amqp_head_age(channel, q) if depth else None
                    stats.append(QueueStats(name=q, depth=depth, oldest_age_seconds=age))
            finally:
                channel.close()
        return stats


def _redis_age(raw: bytes | None, now: float) -> float | None:
    if raw is None:
        return None
    try:
        headers = json.loads(raw).get("headers") or {}
    except (ValueError, AttributeError):
        return None
    return _age(headers.get(SENT_AT_HEADER), now)


def _amqp_head_age(channel: Any, queue: str) -> float | None:
    message = channel.basic_get(queue=queue, no_ack=False)
    if message is None:
        return None
    try:
        headers = message.headers or {}
        return _age(headers.get(SENT_AT_HEADER), time.time())
    finally:
        channel.basic_reject(message.delivery_tag, requeue=True)


def depth_of(probe: BrokerProbe) -> Callable[[], int | None]:
    return probe.depth
