"""Re-read stored objects through SHA-256, as fast as the store serves them.

Used by ``verify`` (:mod:`.verify`): each asset object is read and hashed, small
ones with one GET, large ones as ordered ranged GETs pinned to one ETag
(bench/bench_verify.py measures it against ``s5cmd cat | sha256sum``).
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

DEFAULT_RANGE_THREADS = 8  # ranged GETs in flight per large object (measured: bench_verify)
DEFAULT_PART_SIZE = 8 * 1024 * 1024
_READ = 1024 * 1024

ProgressFn = Callable[[int], None]


def s3_code(exc: BaseException) -> str:
    """The S3 error code of ``exc`` (or its type name): short, no secrets."""
    from genblaze_s3.transfer.errors import s3_error_code

    return s3_error_code(exc) or type(exc).__name__


class Missing(Exception):
    """The object is not in the bucket (404)."""


class ObjectReader:
    """Streams objects through SHA-256: one GET for small ones, ordered ranged GETs for large.

    Why ranges: one HTTP stream from S3 is usually slower than the hash; a few
    ranges in flight keep the hash fed. Ranges are pinned to the ETag seen by the
    HEAD (``If-Match``), so an object replaced mid-read fails instead of hashing a
    mix of two versions. Memory: at most ``threads + 1`` parts per object.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        threads: int,
        part_size: int,
        progress: ProgressFn | None,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._threads = max(1, threads)
        self._part = max(_READ, part_size)
        self._progress = progress or (lambda n: None)
        self._pool = ThreadPoolExecutor(self._threads * 2, thread_name_prefix="verify-range")
        self._lock = threading.Lock()

    def sha256(self, key: str) -> tuple[str, int]:
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=key)
        except Exception as exc:
            if s3_code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise Missing(key) from exc
            raise
        size = int(head.get("ContentLength", 0))
        etag = head.get("ETag")
        if size <= self._part:
            return self._whole(key, etag), size
        return self._ranged(key, size, etag), size

    def _get(self, key: str, etag: str | None, rng: str | None = None) -> Any:
        kw: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if etag:
            kw["IfMatch"] = etag
        if rng:
            kw["Range"] = rng
        return self._client.get_object(**kw)["Body"]

    def _whole(self, key: str, etag: str | None) -> str:
        h = hashlib.sha256()
        body = self._get(key, etag)
        try:
            while chunk := body.read(_READ):
                h.update(chunk)
                self._progress(len(chunk))
        finally:
            body.close()
        return h.hexdigest()

    def _range(self, key: str, etag: str | None, start: int, end: int) -> bytes:
        """The bytes [start, end), read in one call: the socket loop then runs in C, off the GIL."""
        body = self._get(key, etag, f"bytes={start}-{end - 1}")
        try:
            data = body.read()
        finally:
            body.close()
        if len(data) != end - start:
            raise OSError(f"range {start}-{end - 1} ended after {len(data)} bytes")
        return bytes(data)

    def _ranged(self, key: str, size: int, etag: str | None) -> str:
        h = hashlib.sha256()
        starts = iter(range(0, size, self._part))
        inflight: deque[Future[bytes]] = deque()

        def submit() -> None:
            start = next(starts, None)
            if start is not None:
                end = min(start + self._part, size)
                inflight.append(self._pool.submit(self._range, key, etag, start, end))

        for _ in range(self._threads):
            submit()
        try:
            while inflight:
                data = inflight.popleft().result()
                submit()
                h.update(data)
                self._progress(len(data))
        finally:
            for f in inflight:
                f.cancel()
        return h.hexdigest()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
