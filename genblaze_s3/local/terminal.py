"""Terminal views of one job (rich): live progress bars and a final summary.

Shared by the CLI (`genblaze-ingest status --watch`, `submit --wait`) and the
demo, so the library never imports its CLI. `fetch` is any callable returning the
job's current JobView (over HTTP, or from the store).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from genblaze_s3.humanize import size_columns
from genblaze_s3.ingest.models import JobView


def watch_progress(fetch: Callable[[], JobView], interval: float = 0.3) -> JobView:
    """Render progress bars for bytes and assets from `fetch()` until the job is terminal.

    Off a terminal (a log, a pipe) the bars are off: rich would print their last frame
    with no line end, and the summary would run into it.
    """
    import sys

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
    )

    with (
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            *size_columns(),
            transient=False,
            disable=not sys.stdout.isatty(),
        ) as bytes_bar,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            disable=not sys.stdout.isatty(),
        ) as assets_bar,
    ):
        btask = bytes_bar.add_task("bytes ", total=None)
        atask = assets_bar.add_task("assets", total=None)
        while True:
            view = fetch()
            p = view.progress
            bytes_bar.update(
                btask,
                completed=p.bytes_done,
                total=p.bytes_total,
                description=f"bytes  [{view.state.value}]",
            )
            assets_bar.update(atask, completed=p.assets_done, total=p.assets_total)
            if view.terminal:
                return view
            time.sleep(interval)


def print_summary(view: JobView) -> None:
    """One line for the job, one per asset (with its error code), the manifest last."""
    from rich.console import Console

    console = Console()
    console.print(f"job {view.job_id}: [bold]{view.state.value}[/bold]")
    for a in view.assets:
        err = f"  {a.error.code}: {a.error.message}" if a.error else ""
        console.print(f"  {a.state.value:13} {a.key or a.source_url}{err}")
    if view.manifest.key:
        console.print(f"  manifest {view.manifest.key} locked_until={view.manifest.locked_until}")
