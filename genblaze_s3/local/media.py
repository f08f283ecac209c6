"""Sample media for the demo, and a tiny CDN on loopback that serves it.

A real PNG, WAV and MP4 container (random payload), so the bucket the demo fills
holds files a person can open. Nothing here is used in production.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import struct
import threading
import wave
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sample_png(w: int = 64, h: int = 64) -> bytes:
    rows = b"".join(
        b"\x00" + bytes(c for x in range(w) for c in (x * 4 % 256, y * 4 % 256, 160))
        for y in range(h)
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def sample_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                for i in range(int(seconds * rate))
            )
        )
    return buf.getvalue()


def sample_mp4(size: int = 3 * 1024 * 1024) -> bytes:
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 512) + b"isomiso2"
    mdat = os.urandom(size)
    return ftyp + struct.pack(">I", len(mdat) + 8) + b"mdat" + mdat


class _CDNHandler(BaseHTTPRequestHandler):
    files: dict[str, tuple[bytes, str]] = {}

    def log_message(self, *a: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        item = self.files.get(self.path.split("?")[0])
        if item is None:
            self.send_error(404)
            return
        data, ctype = item
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# name -> (media type, maker): what the demo's pipeline "generates".
SAMPLES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "image.png": ("image/png", sample_png),
    "voice.wav": ("audio/wav", sample_wav),
    "clip.mp4": ("video/mp4", sample_mp4),
}


@contextlib.contextmanager
def local_cdn() -> Iterator[str]:
    """Serve SAMPLES over plain http on a free loopback port; yields the base URL."""
    files = {f"/{name}": (make(), ctype) for name, (ctype, make) in SAMPLES.items()}
    handler = type("CDN", (_CDNHandler,), {"files": files})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
