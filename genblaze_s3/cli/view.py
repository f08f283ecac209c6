"""What the job commands show: tables, a job's summary, and the live `watch` view.

Split from cli_jobs.py (which parses and maps errors) so each stays readable; the
view follows a job's events stream and reconnects with Last-Event-ID.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from genblaze_s3.humanize import human_size
from genblaze_s3.ingest.transitions import progress_percent

RECONNECTS = 5  # `watch` reconnects this many times in a row before giving up


def percent_text(job: Any) -> str:
    """The job's progress as /ui shows it (transitions.progress_percent)."""
    p = job.progress
    return f"{progress_percent(p.bytes_done, p.bytes_total, p.assets_done, p.assets_total)}%"


STATE_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "canceled": "yellow",
    "running": "cyan",
    "finalizing": "cyan",
    "queued": "dim",
    "stored": "green",
    "deduplicated": "green",
    "copying": "cyan",
}


def print_job(job: Any, console: Any = None) -> None:
    """A job summary and its first page of assets, failures with code and message."""
    from rich.console import Console

    console = console or Console()
    p = job.progress
    style = STATE_STYLE.get(job.state.value, "")
    console.print(f"job {job.job_id}: [bold {style}]{job.state.value}[/]  {percent_text(job)}")
    console.print(
        f"  assets {p.assets_done}/{p.assets_total}  "
        + "  ".join(f"{k} {v}" for k, v in job.counts.model_dump().items() if v)
    )
    console.print(f"  bytes  {human_size(p.bytes_done)} / {human_size(p.bytes_total)}")
    if job.error_codes:
        console.print(
            "  errors " + ", ".join(f"{c} x{n}" for c, n in sorted(job.error_codes.items()))
        )
    if job.error:
        console.print(f"  [red]{job.error.code}[/]: {job.error.message}")
    for a in job.assets:
        err = f"  [red]{a.error.code}[/]: {a.error.message}" if a.error else ""
        console.print(f"  {a.state.value:13} {a.asset_id}  {a.key or a.source_url}{err}")
    if job.next_cursor:
        console.print(f"  ... more assets: genblaze-ingest status {job.job_id} --all")
    if job.manifest.key:
        console.print(f"  manifest {job.manifest.key} locked_until={job.manifest.locked_until}")


def watch_job(api: Any, job_id: str, *, as_json: bool = False) -> Any:
    """Follow a job's events to its end (reconnecting with Last-Event-ID); returns the
    final JobView. With `as_json`, one JSON line per event; else a rich live view."""
    from genblaze_s3.ingest.client.http import APIUnreachableError

    job = api.get(job_id)
    last: int | None = None
    broken = 0
    live = None
    if not as_json:
        live = _LiveView(job)
        live.start()
    try:
        while not job.terminal:
            try:
                for event in api.events(job_id, last_event_id=last):
                    last = event.id
                    job = _merge(job, event)
                    if as_json:
                        print(
                            json.dumps(
                                {
                                    "id": event.id,
                                    "event": event.kind,
                                    "job": json.loads(event.job.model_dump_json()),
                                }
                            )
                        )
                        sys.stdout.flush()
                    elif live is not None:
                        live.update(job)
            except APIUnreachableError:
                if job.terminal:
                    break
                # The stream broke: resume from the last event id, a few times, waiting.
                broken += 1
                if broken > RECONNECTS:
                    raise
                time.sleep(min(2.0**broken, 10.0))
                continue
            broken = 0
            if not job.terminal:
                job = api.get(job_id)
    finally:
        if live is not None:
            live.stop(job)
    return job


def _merge(job: Any, event: Any) -> Any:
    """Apply an event: a snapshot replaces; a delta updates the summary and the
    assets it names (assets not on our page are ignored)."""
    if event.kind == "job":
        return event.job
    changed = {a.asset_id: a for a in event.job.assets}
    assets = [changed.get(a.asset_id, a) for a in job.assets]
    return event.job.model_copy(update={"assets": assets, "next_cursor": job.next_cursor})


class _LiveView:
    """Two progress bars (bytes, assets) and the state, redrawn on each event."""

    def __init__(self, job: Any) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self.bytes = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn()
        )
        self.assets = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        self.btask = self.bytes.add_task("bytes ", total=None)
        self.atask = self.assets.add_task("assets", total=None)
        from rich.console import Group
        from rich.live import Live

        self.live = Live(Group(self.bytes, self.assets), refresh_per_second=8, transient=False)
        self.update(job)

    def start(self) -> None:
        self.live.start()

    def update(self, job: Any) -> None:
        p = job.progress
        failed = f" failed {job.counts.failed}" if job.counts.failed else ""
        self.bytes.update(
            self.btask,
            completed=p.bytes_done,
            total=p.bytes_total,
            description=f"bytes  [{job.state.value}]",
        )
        self.assets.update(
            self.atask,
            completed=p.assets_done,
            total=p.assets_total,
            description=f"assets{failed}",
        )

    def stop(self, job: Any) -> None:
        self.update(job)
        self.live.stop()
        print_job(job)
