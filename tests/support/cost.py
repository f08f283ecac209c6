"""Count what one finished job cost: S3 requests, Redis commands, Celery messages.

Why counts and not timings: a count of a finished job does not depend on the
machine's load, so a test can pin it exactly and fail, naming what grew, when a
change adds a HEAD, a Redis round trip or a message (tests/integration/test_cost.py;
bench/bench_cost.py prints the same counts per asset and per run).

Where each count comes from:
- S3 requests: the S3 proxy's log (tests/support/s3proxy.py), by operation;
- Redis commands: ``INFO commandstats`` deltas of the store's private Valkey, by
  command (commands run inside a Lua script count too: they are work the server does);
- Celery messages: ``LPUSH`` calls on the broker's own private Valkey (kombu's Redis
  transport publishes a task with one LPUSH; events and heartbeats are PUBLISH).

A job is finished, for counting, when the broker has seen as many acks (kombu acks with
one HDEL of the unacked hash) as publishes: with late acks every task's follow-ups are
published before its ack, so nothing of the job runs after that point.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import redis

# Per connection, not per asset: a pool that opens one more connection under a burst of
# threads must not fail a count (redis-py names each new connection with CLIENT SETINFO).
CONNECTION_SETUP = frozenset({"client|setinfo", "client|setname", "hello", "auth", "select"})
# What the counter itself sends.
MEASURING = frozenset({"info", "monitor", "config|resetstat"})


def commandstats(client: redis.Redis) -> Counter[str]:
    """Calls per command name (``get``, ``evalsha``, ``client|setinfo``...)."""
    info = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in info.items()})


def command_delta(before: Counter[str], after: Counter[str]) -> Counter[str]:
    """Commands run between two snapshots, minus connection setup and the counter's own."""
    out = Counter(after)
    out.subtract(before)
    return Counter(
        {k: v for k, v in out.items() if v and k not in CONNECTION_SETUP and k not in MEASURING}
    )


@dataclass(frozen=True)
class Cost:
    """What one job cost, by kind; `Counter`s so two costs compare and subtract."""

    s3: Counter[str] = field(default_factory=Counter)  # S3 operation -> requests
    redis: Counter[str] = field(default_factory=Counter)  # store command -> calls
    messages: int = 0  # Celery task messages published
    source: Counter[str] = field(default_factory=Counter)  # source HTTP method -> requests

    def totals(self) -> dict[str, int]:
        return {
            "s3_requests": sum(self.s3.values()),
            "redis_commands": sum(self.redis.values()),
            "celery_messages": self.messages,
            "source_requests": sum(self.source.values()),
        }


def differences(got: Cost, pinned: Cost, paced: Mapping[str, int] | None = None) -> list[str]:
    """Lines naming every count that differs from the pinned one (empty: as pinned).

    `paced` (command -> extra calls allowed) is what time-paced writes may add to a
    copy that ran long enough (a progress write each 0.5 s, a cancel poll each 0.5 s);
    a count may exceed its pin by that much, never more, and never fall below it.
    """
    allowed = paced or {}
    lines: list[str] = []
    for kind, a, b in (("S3", got.s3, pinned.s3), ("source", got.source, pinned.source)):
        for name in sorted(set(a) | set(b)):
            if a[name] != b[name]:
                lines.append(_line(kind, name, a[name], b[name]))
    for name in sorted(set(got.redis) | set(pinned.redis)):
        have, want = got.redis[name], pinned.redis[name]
        if not want <= have <= want + allowed.get(name, 0):
            extra = f" (+{allowed[name]} allowed for paced writes)" if allowed.get(name) else ""
            lines.append(_line("Redis", name, have, want) + extra)
    if got.messages != pinned.messages:
        lines.append(_line("Celery", "messages", got.messages, pinned.messages))
    return lines


def _line(kind: str, name: str, have: int, want: int) -> str:
    verb = "grew" if have > want else "shrank"
    hint = "" if have > want else " (a cut? lower the pin)"
    return f"{kind} {name} {verb}: {have} (pinned {want}){hint}"


class BrokerCounter:
    """Publishes and acks on a broker Redis of our own (nothing else may use it)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._base = commandstats(client)

    def reset(self) -> None:
        self._base = commandstats(self.client)

    def published(self) -> int:
        return self._since()["lpush"]

    def settled(self) -> bool:
        """Every message published since `reset` was acked (and at least one was)."""
        d = self._since()
        return d["lpush"] > 0 and d["hdel"] >= d["lpush"]

    def wait_settled(self, timeout: float = 120) -> None:
        """Wait until `settled` (an observable count, polled); raise naming the counts."""
        deadline = time.monotonic() + timeout
        while not self.settled():
            if time.monotonic() > deadline:
                d = self._since()
                raise TimeoutError(f"broker not settled: {d['lpush']} published, {d['hdel']} acked")
            time.sleep(0.05)

    def _since(self) -> Counter[str]:
        out = commandstats(self.client)
        out.subtract(self._base)
        return out
