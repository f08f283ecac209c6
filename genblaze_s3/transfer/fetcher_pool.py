"""Warm source fetchers shared by a process's copying threads, one borrower at a time.

Why: a worker copies a chunk of small assets on short-lived threads (a new set per
chunk). A fetcher kept per thread died with its thread, so most small assets paid a new
TCP connection and TLS handshake to a CDN it had just talked to (measured with
bench/bench_cost.py: 0.75 handshakes per 64 KiB asset). A fetcher returned to this pool
after each copy keeps its keep-alive connections for the next copy on any thread.

Why borrowing and not sharing: a fetcher's state (its pools' idle connections, the
body it has open) belongs to one copy at a time, so it is lent to one copy and handed
back when the copy ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from genblaze_s3.transfer.config import CopyConfig, FetchPolicy
from genblaze_s3.transfer.fetch import Fetcher

# Idle fetchers kept per (policy, config): more than a process's copying threads is waste.
MAX_IDLE = 16
# Distinct (policy, config) pairs kept: they change rarely; past this, start over.
MAX_KINDS = 4

_lock = threading.Lock()
_idle: dict[tuple[FetchPolicy, CopyConfig], list[Fetcher]] = {}


@contextmanager
def borrowed_fetcher(policy: FetchPolicy, config: CopyConfig) -> Iterator[Fetcher]:
    """An idle warm fetcher for (policy, config), or a new one; back to the pool after."""
    kind = (policy, config)
    with _lock:
        idle = _idle.get(kind)
        fetcher = idle.pop() if idle else None
    if fetcher is None:
        fetcher = Fetcher(policy, config)
    try:
        yield fetcher
    except BaseException:
        fetcher.close()  # a copy that failed may leave a half-read response behind
        raise
    _give_back(kind, fetcher)


def _give_back(kind: tuple[FetchPolicy, CopyConfig], fetcher: Fetcher) -> None:
    drop: list[Fetcher] = []
    with _lock:
        if kind not in _idle and len(_idle) >= MAX_KINDS:
            drop = [f for fs in _idle.values() for f in fs]
            _idle.clear()
        idle = _idle.setdefault(kind, [])
        if len(idle) < MAX_IDLE:
            idle.append(fetcher)
        else:
            drop.append(fetcher)
    for f in drop:
        f.close()


def idle_count() -> int:
    """Fetchers waiting to be borrowed (for tests and the cost bench)."""
    with _lock:
        return sum(len(fs) for fs in _idle.values())
