"""Progress callbacks: s3transfer's per-thread byte deltas as monotonic events.

Shared by the sync and async backends (``put``/``aput``, ``get``, ``stream``/``astream``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from genblaze_core.storage.types import TransferProgress

ProgressCallback = Callable[[TransferProgress], None]


class ProgressReporter:
    """Turns s3transfer's per-thread byte deltas into monotonic ``TransferProgress`` events.

    s3transfer calls back from every part worker, and on a retried request it
    reports a *negative* delta when it rewinds the body. Users were promised a
    non-decreasing ``bytes_transferred`` that ends at the total, so deltas are
    summed under a lock and only a new maximum is reported — from inside the
    lock, so two threads can never deliver their events out of order.
    """

    def __init__(
        self,
        callback: Callable[[TransferProgress], None],
        *,
        operation: str,
        key: str,
        total: int | None,
    ) -> None:
        self._callback = callback
        self._operation = operation
        self._key = key
        self._total = total
        self._lock = threading.Lock()
        self._sum = 0
        self._reported = -1

    def add(self, delta: int) -> None:
        """Record ``delta`` bytes (negative on a rewind) and report a new high mark."""
        with self._lock:
            self._sum += delta
            value = self._sum if self._total is None else min(self._sum, self._total)
            if value > self._reported:
                self._emit(value)

    __call__ = add

    def finish(self, transferred: int | None = None) -> None:
        """Report the final count (the total when known) if not reported yet."""
        with self._lock:
            final = self._total if self._total is not None else (transferred or self._sum)
            if final > self._reported or (self._total is None and final >= 0):
                # With an unknown total, the last event states the total that was reached.
                self._emit(final, total=final)

    def _emit(self, value: int, *, total: int | None = None) -> None:
        self._reported = value
        total = self._total if self._total is not None else total
        self._callback(
            TransferProgress(
                bytes_transferred=value,
                total_bytes=total,
                operation=self._operation,
                key=self._key,
            )
        )


def reporter_for(
    progress: ProgressCallback | None, *, operation: str, key: str, total: int | None
) -> ProgressReporter | None:
    """A reporter when the caller asked for progress, else ``None`` (no bookkeeping)."""
    if progress is None:
        return None
    return ProgressReporter(progress, operation=operation, key=key, total=total)


__all__ = ["ProgressCallback", "ProgressReporter", "reporter_for"]
