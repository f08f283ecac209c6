"""What every benchmark shares: its source files of random bytes."""

from __future__ import annotations

import os
from pathlib import Path

MiB = 1024 * 1024


def write_random(path: Path, size: int) -> None:
    """Write `size` random bytes in 16 MiB pieces (incompressible, never all in memory)."""
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n
