"""What the job commands show: a job's summary, and the `watch` view, for people and pipes.

Split from jobs.py (which parses and maps errors) so each stays readable. Every function
takes the run's `Output` (cli/output.py): rich on a terminal, whole tab-separated
records on a pipe, JSON when asked. The view follows a job's events stream and
reconnects with Last-Event-ID.
"""

from __future__ import annotations

import time
from typing import Any

from genblaze_s3.cli.output import Output
from genblaze_s3.humanize import human_size, retry_note, size_columns
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


def print_job(job: Any, out: Output) -> None:
    """A job summary and its first page of assets, failures with code and message.

    On a terminal: a rich summary. On a pipe: `job <id> <state> <percent>` then one
    `asset <state> <asset_id> <key or source> <code> <message>` record per asset (an asset
    between two tries: its last error's code and the "retrying: ..." note) and a
    `manifest <key> <locked_until>` record, tab-separated, keys never folded.
    """
    if not out.rich:
        _plain_job(job, out)
        return
    console = out.console()
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
        console.print(f"  [red]{job.error.code}[/]: {job.error.message}", markup=True)
    for a in job.assets:
        err = f"  [red]{a.error.code}[/]: {a.error.message}" if a.error else ""
        if not err and (note := asset_retry_note(a)):
            err = f"  [yellow]{note}[/]"
        console.print(f"  {a.state.value:13} {a.asset_id}  {a.key or a.source_url}{err}")
    if job.next_cursor:
        console.print(f"  ... more assets: genblaze-ingest status {job.job_id} --all")
    if job.manifest.key:
        console.print(f"  manifest {job.manifest.key} locked_until={job.manifest.locked_until}")


def asset_retry_note(asset: Any) -> str:
    """ "retrying: try n of N in Xs (code: message)" for an asset between tries, else ""."""
    r = getattr(asset, "retry", None)  # the store drops it when the asset ends
    if r is None:
        return ""
    return retry_note(r.attempt, r.of, r.last_error.code, r.last_error.message, r.next_try_at)


def _plain_job(job: Any, out: Output) -> None:
    p = job.progress
    out.record(
        "job",
        job.job_id,
        job.state.value,
        percent_text(job),
        f"{p.assets_done}/{p.assets_total}",
        p.bytes_done,
        p.bytes_total,
        job.error.code if job.error else None,
    )
    for a in job.assets:
        # between two tries: the last error's code and "retrying: try n of N in Xs (...)"
        note = "" if a.error else asset_retry_note(a)
        out.record(
            "asset",
            a.asset_id,
            a.state.value,
            a.key or a.source_url,
            a.error.code if a.error else (a.retry.last_error.code if note else None),
            a.error.message if a.error else (note or None),
        )
    if job.manifest.key:
        locked = job.manifest.locked_until.isoformat() if job.manifest.locked_until else None
        out.record("manifest", job.manifest.key, locked)
    if job.next_cursor:
        out.note(f"more assets: genblaze-ingest status {job.job_id} --all")


def watch_job(api: Any, job_id: str, out: Output) -> Any:
    """Follow a job's events to its end (reconnecting with Last-Event-ID); return the
    final JobView. JSON: one object per event on stdout. On a terminal: live bars, then
    the summary. On a pipe: a line on stderr per state change, then the summary records
    on stdout (never a bar, so nothing runs into them)."""
    from genblaze_s3.ingest.client.http import APIUnreachableError

    job = api.get(job_id)
    last: int | None = None
    broken = 0
    live = _LiveView(job) if out.rich else None
    seen_state = None
    ended_in_an_event = False  # JSON: the last object printed shows the terminal job
    if live is not None:
        live.start()
    try:
        while True:
            if not out.machine and live is None and job.state != seen_state:
                seen_state = job.state
                out.note(f"job {job.job_id}: {job.state.value} {percent_text(job)}")
            if job.terminal:
                break
            try:
                for event in api.events(job_id, last_event_id=last):
                    last = event.id
                    job = _merge(job, event)
                    if out.machine:
                        out.json({"id": event.id, "event": event.kind, "job": _plain(event.job)})
                        ended_in_an_event = job.terminal
                    elif live is not None:
                        live.update(job)
                    elif job.state != seen_state:
                        seen_state = job.state
                        out.note(f"job {job.job_id}: {job.state.value} {percent_text(job)}")
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
    if out.machine and not ended_in_an_event:
        # The job ended before (or between) streams: its final state as one more object,
        # so a JSON consumer always reads the outcome last (no event carried it).
        out.json({"id": last, "event": "job", "job": _plain(job)})
    if not out.machine:
        print_job(job, out)
    return job


def _plain(model: Any) -> Any:
    import json

    return json.loads(model.model_dump_json())


def _merge(job: Any, event: Any) -> Any:
    """Apply an event: a snapshot replaces; a delta updates the summary and the
    assets it names (assets not on our page are ignored)."""
    if event.kind == "job":
        return event.job
    changed = {a.asset_id: a for a in event.job.assets}
    assets = [changed.get(a.asset_id, a) for a in job.assets]
    return event.job.model_copy(update={"assets": assets, "next_cursor": job.next_cursor})


class _LiveView:
    """Two progress bars (bytes, assets) and the state, redrawn on each event (terminal only)."""

    def __init__(self, job: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.bytes = Progress(TextColumn("{task.description}"), BarColumn(), *size_columns())
        self.assets = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        self.btask = self.bytes.add_task("bytes ", total=None)
        self.atask = self.assets.add_task("assets", total=None)
        from rich.console import Group
        from rich.live import Live
        from rich.text import Text

        self.notes = Text()  # assets between two tries: which try comes next, why
        self.live = Live(
            Group(self.bytes, self.assets, self.notes), refresh_per_second=8, transient=True
        )
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
        notes = [f"{a.asset_id}: {n}" for a in job.assets if (n := asset_retry_note(a))]
        self.notes.plain = "\n".join(notes[:5])

    def stop(self, job: Any) -> None:
        self.update(job)
        self.live.stop()
