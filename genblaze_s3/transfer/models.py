"""The values a copy takes and gives: where it lands, its progress, its result.

Why separate from copy.py: the queue side builds Destinations and reads
CopyResults without caring how bytes move; these are plain frozen values.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from genblaze_core.storage.base import KeyStrategy
from genblaze_core.storage.key_builder import KeyBuilder
from genblaze_core.storage.transfer import _build_key, _cache_control_for, _guess_extension

from genblaze_s3.transfer.checkpoint import SourceValidators


@dataclass(frozen=True)
class Destination:
    """Where a copy lands: an explicit key, or genblaze-core's key strategy inputs."""

    key_strategy: KeyStrategy = KeyStrategy.CONTENT_ADDRESSABLE
    prefix: str = "genblaze"
    key: str | None = None
    asset_id: str | None = None
    run_id: str | None = None
    date_str: str | None = None
    tenant: str | None = None
    cache_control: str | None = None

    def effective_cache_control(self) -> str:
        return self.cache_control or _cache_control_for(self.key_strategy)

    def build_key(self, url: str, content_type: str | None, sha256: str | None) -> str | None:
        """The final key, or None while it still depends on the unknown hash."""
        if self.key:
            return self.key
        is_cas = self.key_strategy == KeyStrategy.CONTENT_ADDRESSABLE
        if is_cas and not sha256:
            return None
        if not is_cas and not self.asset_id:
            raise ValueError("HIERARCHICAL destinations need an asset_id")
        kb = KeyBuilder.from_prefix(self.prefix).append("assets" if is_cas else "runs")
        asset = SimpleNamespace(asset_id=self.asset_id or "")
        return _build_key(
            self.key_strategy,
            kb,
            cast(Any, asset),
            sha256 or "",
            _guess_extension(url, content_type),
            tenant=self.tenant,
            date_str=self.date_str,
            run_id=self.run_id,
        )


@dataclass(frozen=True)
class CopyProgress:
    bytes_done: int
    bytes_total: int | None


@dataclass(frozen=True)
class CopyResult:
    key: str
    sha256: str
    size: int
    content_type: str | None
    etag: str | None
    deduplicated: bool
    bytes_uploaded: int
    parts_uploaded: int
    url: str | None = None
    # What the source answered with on the read that was stored (ETag, Last-Modified,
    # Content-Length): fetch provenance. None when nothing was read (deduplicated by hash).
    source: SourceValidators | None = None


@dataclass(frozen=True)
class CopyPaused:
    """A bounded slice ended before the copy did (``copy_url(..., slice_seconds=...)``).

    Every part below ``bytes_done`` is uploaded and the checkpoint holds the
    SHA-256 state at that byte: calling ``copy_url`` again with the same
    ``checkpoint_id`` (on any host) continues with a Range request there.
    """

    bytes_done: int
    bytes_total: int | None
    bytes_uploaded: int  # by this slice


ProgressCallback = Callable[[CopyProgress], None]


class Progress:
    """Calls the callback at most every ``interval`` seconds, plus once at the end.

    ``passes``: how often the copy reads the body. A CAS copy with an unknown hash
    reads it twice (hash pass or spool, then the upload); each pass then counts
    for half, so ``bytes_done`` moves on during both and ends at the size, once.
    """

    def __init__(self, cb: ProgressCallback | None, interval: float, total: int | None) -> None:
        self._cb = cb
        self._interval = interval
        self.total = total
        self.done = 0
        self.passes = 1
        self._processed = 0
        self._last = 0.0

    def add(self, n: int) -> None:
        self._processed += n
        self.done = self._processed // self.passes
        now = time.monotonic()
        if self._cb is not None and now - self._last >= self._interval:
            self._last = now
            self._cb(CopyProgress(self.done, self.total))

    def filling(self, pending: int) -> None:
        """``pending`` bytes read into a block that `add` will count once it is full:
        reported (at the usual pace) but not counted, so a slow source shows progress
        between blocks of many MiB and nothing is counted twice."""
        now = time.monotonic()
        if self._cb is not None and now - self._last >= self._interval:
            self._last = now
            self._cb(CopyProgress((self._processed + pending) // self.passes, self.total))

    def skip_second_pass(self) -> None:
        """The first pass found the object already stored: it was the whole copy."""
        self.passes = 1
        self.done = self._processed

    def finish(self) -> None:
        if self._cb is not None:
            self._cb(CopyProgress(self.done, self.total if self.total is not None else self.done))
