"""A SHA-256 whose state can be saved and restored, at OpenSSL's speed, without holding the GIL.

Why our own (measured, bench/results/slices.md): a sliced copy must hand its hash
state to the next delivery, and hashlib's OpenSSL 3 objects cannot export it.
`rehashes` can, but it holds the GIL while it hashes and takes only ``bytes`` (a copy
of every part), so the download and upload threads of a copy wait on it: slicing cost
3-5% of a 1 GiB copy with it. OpenSSL's low-level ``SHA256_Init/Update/Final`` work
on a plain, documented struct (``SHA256_CTX`` in ``<openssl/sha.h>``, unchanged from
1.0 through 3.x; deprecated in 3.0 for new C code but exported and the same block
function hashlib uses), and ctypes releases the GIL around each call.

The saved state is always rehashes' serialization (32 bytes of chaining words, a
64-bit block count, the buffered tail: 104 bytes), whichever engine wrote it: a
checkpoint written by a worker on one engine resumes on a worker with the other, and
checkpoints from earlier releases keep working.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
from collections.abc import Iterator
from functools import cache
from typing import Protocol

_BLOCK = 64
_REHASHES_STATE = struct.Struct("<8IQB63s")  # h[8], blocks, tail length, tail


class _Ctx(ctypes.Structure):
    """``SHA256_CTX`` (``struct SHA256state_st``) from <openssl/sha.h>."""

    _fields_ = [
        ("h", ctypes.c_uint32 * 8),
        ("Nl", ctypes.c_uint32),  # bit count, low word
        ("Nh", ctypes.c_uint32),  # bit count, high word
        ("data", ctypes.c_uint8 * _BLOCK),  # SHA_LONG data[16]: the buffered bytes, as bytes
        ("num", ctypes.c_uint),  # bytes buffered in data
        ("md_len", ctypes.c_uint),
    ]


def _libcrypto_names() -> Iterator[str]:
    """The usual sonames first; ``find_library`` (it runs ldconfig) only if they fail."""
    yield "libcrypto.so.3"
    yield "libcrypto.so.1.1"
    if found := ctypes.util.find_library("crypto"):
        yield found


@cache
def _libcrypto() -> ctypes.CDLL | None:
    """A libcrypto with working ``SHA256_*`` functions, loaded once per process; else None."""
    for name in _libcrypto_names():
        try:
            lib = ctypes.CDLL(name)  # CDLL (not PyDLL): the GIL is released during calls
            init, update, final = lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final
        except (OSError, AttributeError):
            continue
        init.argtypes = [ctypes.POINTER(_Ctx)]
        update.argtypes = [ctypes.POINTER(_Ctx), ctypes.c_void_p, ctypes.c_size_t]
        final.argtypes = [ctypes.c_char_p, ctypes.POINTER(_Ctx)]
        if _self_test(lib):
            return lib
    return None


def _self_test(lib: ctypes.CDLL) -> bool:
    """The struct layout and the known answer for b"abc" (FIPS 180-2), checked once."""
    ctx = _Ctx()
    if lib.SHA256_Init(ctypes.byref(ctx)) != 1 or ctx.md_len != 32:
        return False
    lib.SHA256_Update(ctypes.byref(ctx), b"abc", 3)
    if (ctx.Nl, ctx.num, bytes(ctx.data[:3])) != (24, 3, b"abc"):
        return False
    out = ctypes.create_string_buffer(32)
    lib.SHA256_Final(out, ctypes.byref(ctx))
    return out.raw.hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


class Sha256Engine(Protocol):
    def update(self, data: bytes | bytearray | memoryview) -> None: ...
    def serialize(self) -> bytes: ...
    def hexdigest(self) -> str: ...


class OpenSSLSha256:
    """SHA-256 on OpenSSL's ``SHA256_CTX``; the GIL is released while it hashes."""

    def __init__(self, lib: ctypes.CDLL, state: bytes | None = None) -> None:
        self._lib = lib
        self._ctx = _Ctx()
        lib.SHA256_Init(ctypes.byref(self._ctx))
        if state is not None:
            *h, blocks, tail_len, tail = _REHASHES_STATE.unpack(state)
            if tail_len >= _BLOCK:
                raise ValueError("invalid SHA-256 state: tail longer than a block")
            bits = (blocks * _BLOCK + tail_len) * 8
            self._ctx.h[:] = h
            self._ctx.Nl, self._ctx.Nh = bits & 0xFFFFFFFF, bits >> 32
            ctypes.memmove(self._ctx.data, tail[:tail_len], tail_len)
            self._ctx.num = tail_len

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        if not view:
            return
        if view.readonly:  # bytes pass by address; a read-only view of anything else is
            # copied once (the copy's own buffers are bytearrays: the writable path below)
            buf = bytes(view) if not isinstance(data, bytes) else data
            self._lib.SHA256_Update(ctypes.byref(self._ctx), buf, len(buf))
            return
        c_buf = (ctypes.c_char * len(view)).from_buffer(view)
        try:
            self._lib.SHA256_Update(ctypes.byref(self._ctx), c_buf, len(view))
        finally:
            del c_buf  # release the buffer export at once (the caller may resize its buffer)

    def serialize(self) -> bytes:
        ctx = self._ctx
        total = ((ctx.Nh << 32) | ctx.Nl) // 8
        tail = bytes(ctx.data[: ctx.num])
        return _REHASHES_STATE.pack(*ctx.h, total // _BLOCK, len(tail), tail)

    def hexdigest(self) -> str:
        ctx = _Ctx.from_buffer_copy(self._ctx)  # Final clears the context: finish a copy
        out = ctypes.create_string_buffer(32)
        self._lib.SHA256_Final(out, ctypes.byref(ctx))
        return out.raw.hex()


# rehashes takes `bytes` only: feed it in slices so a 16 MiB part is never copied whole
# (and the GIL, which it holds while hashing, is released between slices).
_REHASHES_FEED = 1024 * 1024


class RehashesSha256:
    """The fallback where no usable libcrypto is found (RustCrypto's sha2 via rehashes)."""

    def __init__(self, state: bytes | None = None) -> None:
        from rehashes import PySha256

        self._h = PySha256() if state is None else PySha256.deserialize(state)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        for pos in range(0, len(view), _REHASHES_FEED):
            self._h.update(bytes(view[pos : pos + _REHASHES_FEED]))

    def serialize(self) -> bytes:
        return bytes(self._h.serialize())

    def hexdigest(self) -> str:
        return str(self._h.finalize())


def new_engine(state: bytes | None = None, *, prefer_openssl: bool = True) -> Sha256Engine:
    """OpenSSL where it loads and passes its self-test, else rehashes; same state format."""
    if state is not None and len(state) != _REHASHES_STATE.size:
        raise ValueError(f"invalid SHA-256 state: {len(state)} bytes, expected 104")
    lib = _libcrypto() if prefer_openssl else None
    if lib is not None:
        return OpenSSLSha256(lib, state)
    return RehashesSha256(state)
