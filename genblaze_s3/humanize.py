"""Sizes and ages as people read them, shared by the CLI tables and the web page.

One module so `genblaze-ingest list` and the /ui job list print the same "1.5 MiB"
and "3m" for the same job.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# IEC binary units (1 KiB = 1024 B), the one unit system of the CLI, the demo and /ui
# (api/ui/static/job.js formats live updates with the same list; a unit test compares them).
UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_size(n: int | None) -> str:
    """Bytes in binary units ("512 B", "1.5 MiB"); "?" when unknown."""
    if n is None:
        return "?"
    value = float(n)
    for unit in UNITS:
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def human_age(ts: datetime) -> str:
    """Time since `ts` in its largest whole unit ("2d", "3h", "5m", "7s"); never negative."""
    secs = int((datetime.now(UTC) - ts).total_seconds())
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= span:
            return f"{secs // span}{unit}"
    return f"{max(secs, 0)}s"


def human_rate(bytes_per_second: float | None) -> str:
    """A transfer rate in the same binary units ("2.5 MiB/s"); "?" when unknown."""
    return "?" if bytes_per_second is None else f"{human_size(int(bytes_per_second))}/s"


def size_columns() -> list[Any]:
    """rich progress columns for bytes done / total and speed, in binary units.

    Why not rich's own: `DownloadColumn` and `TransferSpeedColumn` count in decimal
    units by default (`3.0/3.0 MB`), which disagreed with our tables' `2.9 MiB` on the
    same screen. Imports rich (the `queue` extra) only when called.
    """
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class SizeColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            total = None if task.total is None else int(task.total)
            return Text(f"{human_size(int(task.completed))} / {human_size(total)}")

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(human_rate(task.speed), style="progress.data.speed")

    return [SizeColumn(), RateColumn()]


def retry_note(
    attempt: int,
    of: int,
    code: str,
    message: str,
    next_try_at: datetime,
    now: datetime | None = None,
) -> str:
    """An asset between two tries, as the CLI and the web page print it:
    "retrying: try 2 of 6 in 4s (source_tls_failed: TLS handshake ...)"."""
    wait = int((next_try_at - (now or datetime.now(UTC))).total_seconds())
    when = f" in {wait}s" if wait > 0 else " now"
    why = f"{code}: {message}" if message else code
    return f"retrying: try {attempt} of {of}{when} ({why})"
