"""Hash a source (optionally spooling it to a file) on a second thread during the download.

Why: for CAS with an unknown hash the whole body must be hashed before the key
exists, so this pass is pure latency. SHA-256 (~0.8 s/GiB here) and a file
write (1-3 s/GiB on this ext4) both release the GIL, so with two blocks in
turn the download, the hash and the write overlap instead of adding up.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from genblaze_s3.transfer.sha256_state import Sha256Engine, new_engine

BLOCK = 8 * 1024 * 1024

ReadInto = Callable[[bytearray], int]


def _write_all(write: Callable[[memoryview], int | None], view: memoryview) -> None:
    while view:
        n = write(view)
        view = view[n if n is not None else len(view) :]


def hash_stream(
    read_into: ReadInto,
    *,
    first: memoryview | None = None,
    write: Callable[[memoryview], int | None] | None = None,
    on_block: Callable[[int], None] | None = None,
    check: Callable[[], None] | None = None,
    block: int = BLOCK,
) -> tuple[str, int]:
    """Read to the end; return (sha256 hex, size). ``first`` is already-read leading bytes.

    Memory: two ``block`` buffers. A block is handed to the hashing thread only
    after the previous one is done, so bytes are hashed (and written) in order.
    """
    hasher = hashlib.sha256()

    def consume(view: memoryview) -> None:
        hasher.update(view)
        if write is not None:
            _write_all(write, view)

    size = 0
    buffers = (bytearray(block), bytearray(block))
    turn = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="genblaze-hash") as pool:
        pending: Future[None] | None = None
        if first is not None and len(first):
            pending = pool.submit(consume, first)
            size += len(first)
        while True:
            buf = buffers[turn]
            n = read_into(buf)
            if pending is not None:
                pending.result()  # also re-raises a failed write
                pending = None
            if n == 0:
                break
            size += n
            if on_block is not None:
                on_block(n)
            if check is not None:
                check()
            pending = pool.submit(consume, memoryview(buf)[:n])
            turn ^= 1
    return hasher.hexdigest(), size


class ResumableSha256:
    """SHA-256 whose state survives a process: what a copy sliced across deliveries needs.

    The engine (OpenSSL's ``SHA256_CTX`` through ctypes, or rehashes where no libcrypto
    loads) is in :mod:`genblaze_s3.transfer.sha256_state`; the saved state is the same
    104 bytes on either, so any worker resumes any other's checkpoint.
    """

    def __init__(self, engine: Sha256Engine | None = None) -> None:
        self._h = engine if engine is not None else new_engine()

    @classmethod
    def from_state(cls, state: str) -> ResumableSha256:
        """The hasher a previous slice saved with :meth:`state`."""
        return cls(new_engine(base64.b64decode(state)))

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)

    def state(self) -> str:
        """The state as ASCII (base64), for a JSON checkpoint."""
        return base64.b64encode(self._h.serialize()).decode("ascii")

    def hexdigest(self) -> str:
        return self._h.hexdigest()
