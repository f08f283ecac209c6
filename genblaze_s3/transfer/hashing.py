"""Hash a source (optionally spooling it to a file) on a second thread during the download.

Why: for CAS with an unknown hash the whole body must be hashed before the key
exists, so this pass is pure latency. SHA-256 (~0.8 s/GiB here) and a file
write (1-3 s/GiB on this ext4) both release the GIL, so with two blocks in
turn the download, the hash and the write overlap instead of adding up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

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


# rehashes takes `bytes` only: feed it in slices so a 16 MiB part is never copied whole
# (and the GIL, which it holds while hashing, is released between slices).
_RESUMABLE_FEED = 1024 * 1024


class ResumableSha256:
    """SHA-256 whose state survives a process: what a copy sliced across deliveries needs.

    Why rehashes (RustCrypto's sha2 with a serializable state): OpenSSL 3 hashlib
    objects cannot be pickled, and `rehash` (which pickles OpenSSL's context)
    refuses OpenSSL 3. Measured (bench/results/slices.md): ~2.2 s/GiB against
    hashlib's ~1.7 s/GiB, so it is used only for copies that may be sliced.
    """

    def __init__(self, hasher: Any | None = None) -> None:
        from rehashes import PySha256

        self._h = hasher if hasher is not None else PySha256()

    @classmethod
    def from_state(cls, state: str) -> ResumableSha256:
        """The hasher a previous slice saved with :meth:`state`."""
        import base64

        from rehashes import PySha256

        return cls(PySha256.deserialize(base64.b64decode(state)))

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        for pos in range(0, len(view), _RESUMABLE_FEED):
            self._h.update(bytes(view[pos : pos + _RESUMABLE_FEED]))

    def state(self) -> str:
        """The state as ASCII (base64), for a JSON checkpoint."""
        import base64

        return base64.b64encode(self._h.serialize()).decode("ascii")

    def hexdigest(self) -> str:
        return str(self._h.finalize())
