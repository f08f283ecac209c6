"""Read parts in order, hash them, upload them in parallel: bounded, cancelable, resumable.

Why a fixed buffer pool: at most ``buffers`` part buffers ever exist (default
``concurrency``) and a buffer is reused only after its upload returned, so
memory never exceeds ``part_size * buffers`` however slow the store is. The
reader (the calling thread) owns the SHA-256 so hashing stays in byte order;
uploader threads only send. Parts the server already has (a resume) are read
and hashed but not sent again -- checked by size and, where the ETag is an
MD5, by content.
"""

from __future__ import annotations

import hashlib
import queue
import re
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait

from genblaze_s3.transfer.errors import Canceled
from genblaze_s3.transfer.multipart import MultipartUpload

_MD5_ETAG = re.compile(r'^"?([0-9a-f]{32})"?$')

ReadPart = Callable[[bytearray], int]


def _already_uploaded(upload: MultipartUpload, number: int, buf: memoryview) -> bool:
    part = upload.existing_part(number)
    if part is None or part.size != len(buf):
        return False
    m = _MD5_ETAG.match(part.etag)
    if m is None:
        return True  # opaque ETag: size + unchanged source validators are the proof
    return hashlib.md5(buf, usedforsecurity=False).hexdigest() == m.group(1)


def upload_parts(
    upload: MultipartUpload,
    read_part: ReadPart,
    *,
    part_size: int,
    concurrency: int,
    buffers: int | None = None,
    first: bytearray | None = None,
    first_len: int = 0,
    on_part: Callable[[memoryview], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    first_number: int = 0,
    pause: Callable[[], bool] | None = None,
) -> int:
    """Upload the parts of the stream; return the number of the last part. Raises on failure.

    ``first_number``: parts already uploaded before this stream (a later slice).
    ``pause``: asked after each full part is handed over; True stops reading there
    (the parts in flight still complete), which is how a bounded slice ends.

    On failure, outstanding uploads are drained before raising so the caller's
    abort cannot race a part still being sent.
    """
    # A fixed set of part buffers, reused: memory stays at (concurrency + 1) parts
    # even when the HTTP stack keeps references to a sent body a little longer.
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    max_buffers = max(1, buffers if buffers is not None else concurrency)
    allocated = 1 if first is not None else 0
    futures: list[Future[object]] = []
    number = first_number

    def _recycle(buf: bytearray) -> None:
        if len(buf) == part_size:  # a short first buffer must never be reused
            free.put(buf)

    def _send(n: int, data: bytearray, length: int) -> object:
        try:
            return upload.upload_part(n, memoryview(data)[:length] if length < len(data) else data)
        finally:
            _recycle(data)

    def _first_failure() -> BaseException | None:
        for f in futures:
            if f.done() and f.exception() is not None:
                return f.exception()
        return None

    def _take() -> bytearray:
        nonlocal allocated
        while True:
            try:
                return free.get_nowait()
            except queue.Empty:
                pass
            if allocated < max_buffers:
                allocated += 1
                return bytearray(part_size)
            try:
                return free.get(timeout=0.2)
            except queue.Empty:
                err = _first_failure()
                if err is not None:
                    raise err from None

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="genblaze-part")
    try:
        while True:
            if should_cancel is not None and should_cancel():
                raise Canceled("copy canceled by the caller")
            err = _first_failure()
            if err is not None:
                raise err
            if first is not None:
                buf, length, first = first, first_len, None
            else:
                buf = _take()
                length = read_part(buf)
            if length == 0:
                _recycle(buf)
                break
            number += 1
            view = memoryview(buf)[:length]
            if on_part is not None:
                on_part(view)
            if _already_uploaded(upload, number, view):
                upload.adopt_part(number, view)
                _recycle(buf)
            else:
                futures.append(pool.submit(_send, number, buf, length))
            futures = [f for f in futures if not (f.done() and f.exception() is None)]
            if length < part_size:
                break
            if pause is not None and pause():
                break
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        err = _first_failure()
        if err is not None:
            raise err
        wait(futures)
        err = _first_failure()
        if err is not None:
            raise err
        return number
    except BaseException:
        for f in futures:
            f.cancel()
        wait(futures)
        raise
    finally:
        pool.shutdown(wait=True)
