"""`genblaze-ingest list | status | watch | cancel | retry`: one job or a page of jobs.

Exit codes and the shared options are in cli/common.py; `submit` is in cli/submit.py;
output rules (pipes, `--output`, JSON on stdout only, IEC units) in cli/output.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from genblaze_s3.cli.common import api_options, client_for, command, job_exit
from genblaze_s3.cli.output import Output, output_for
from genblaze_s3.cli.view import STATE_STYLE, percent_text, print_job, watch_job
from genblaze_s3.humanize import human_age, human_size

if TYPE_CHECKING:
    from genblaze_s3.settings import Settings


# -- commands ------------------------------------------------------------------------


def _cmd_list(args: argparse.Namespace) -> int:
    out = output_for(args)
    with client_for(args) as api:
        page = api.list(
            state=args.state,
            label=args.label,
            created_after=args.since,
            created_before=args.before,
            limit=args.limit,
            cursor=args.cursor,
        )
    if out.format == "json":
        out.json(page)
        return 0
    for j in page.jobs:
        if out.format == "jsonl":
            out.json(j)
        elif not out.rich:
            p = j.progress
            out.record(
                j.job_id,
                j.state.value,
                percent_text(j),
                f"{p.assets_done}/{p.assets_total}",
                j.counts.failed,
                p.bytes_total if p.bytes_total is not None else p.bytes_done,
                j.created_at.isoformat(),
                ",".join(f"{k}={v}" for k, v in j.labels.items()),
            )
    if out.rich:
        _rich_list(page, out)
    if page.next_cursor:
        out.note(f"more: --cursor {page.next_cursor}")
    return 0


def _rich_list(page: Any, out: Output) -> None:
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("JOB", "STATE", "DONE", "ASSETS", "SIZE", "AGE", "LABELS"):
        # The id never shrinks: other columns wrap first on a narrow terminal.
        table.add_column(col, no_wrap=col == "JOB", min_width=32 if col == "JOB" else None)
    for j in page.jobs:
        p = j.progress
        style = STATE_STYLE.get(j.state.value, "")
        table.add_row(
            j.job_id,
            f"[{style}]{j.state.value}[/]",
            percent_text(j),
            f"{p.assets_done}/{p.assets_total}"
            + (f" ({j.counts.failed} failed)" if j.counts.failed else ""),
            human_size(p.bytes_total if p.bytes_total is not None else p.bytes_done),
            human_age(j.created_at),
            ",".join(f"{k}={v}" for k, v in j.labels.items()),
        )
    out.console().print(table)


def _cmd_status(args: argparse.Namespace) -> int:
    if args.watch:
        return _cmd_watch(args)
    out = output_for(args)
    with client_for(args) as api:
        job = api.get(args.job_id)
        if args.all or args.assets_state:
            job = job.model_copy(
                update={
                    "assets": list(api.iter_assets(args.job_id, state=args.assets_state)),
                    "next_cursor": None,
                }
            )
    if out.machine:
        out.json(job)
    else:
        print_job(job, out)
    return 0


def _cmd_watch(args: argparse.Namespace) -> int:
    out = output_for(args, stream=True)
    with client_for(args) as api:
        job = watch_job(api, args.job_id, out)
    return job_exit(job.state.value)


def _cmd_cancel(args: argparse.Namespace) -> int:
    out = output_for(args)
    with client_for(args) as api:
        job = api.cancel(args.job_id)
    if out.machine:
        out.json(job)
    elif out.rich:
        style = STATE_STYLE.get(job.state.value, "")
        out.console().print(f"job {job.job_id}: [{style}]{job.state.value}[/]")
    else:
        out.record(job.job_id, job.state.value)
    return 0


def _replacement(text: str) -> tuple[str, str]:
    asset_id, sep, url = text.partition("=")
    if not sep or not asset_id or not url:
        raise argparse.ArgumentTypeError("expected ASSET_ID=URL")
    return asset_id, url


def _cmd_retry(args: argparse.Namespace) -> int:
    out = output_for(args, stream=args.watch)
    with client_for(args) as api:
        accepted = api.retry(args.job_id, dict(args.replace or []))
        if out.machine:
            out.json(accepted)
        elif out.rich:
            out.console().print(f"job {accepted.job_id}: retrying {len(accepted.retried)} asset(s)")
        else:
            out.record(accepted.job_id, accepted.state.value, len(accepted.retried))
        if args.watch:
            return job_exit(watch_job(api, args.job_id, out).state.value)
    return 0


# -- parser ------------------------------------------------------------------------


def add_job_commands(sub: Any, config: Settings) -> None:
    """Add the job commands to the `genblaze-ingest` subparsers."""

    def cmd(name: str, helptext: str, func: Callable[[argparse.Namespace], int]) -> Any:
        return command(sub, name, helptext, func)

    p = cmd("list", "list your jobs, newest first", _cmd_list)
    api_options(p, config, json_help="print the page as JSON (jobs + next_cursor)")
    p.add_argument(
        "--state",
        choices=["queued", "running", "finalizing", "succeeded", "failed", "canceled"],
        default=None,
        help="only jobs in this state",
    )
    p.add_argument("--label", default=None, help="only jobs with this label (KEY=VALUE or KEY)")
    p.add_argument(
        "--since",
        type=datetime.fromisoformat,
        default=None,
        help="only jobs created after this ISO time",
    )
    p.add_argument(
        "--before",
        type=datetime.fromisoformat,
        default=None,
        help="only jobs created before this ISO time",
    )
    p.add_argument("--limit", type=int, default=20, help="jobs per page (1-1000)")
    p.add_argument("--cursor", default=None, help="continue a listing (printed after a full page)")

    p = cmd("status", "show a job: summary, counts, failures, first page of assets", _cmd_status)
    api_options(p, config, json_help="print the job document as JSON")
    p.add_argument("job_id", help="the job id (from submit or list)")
    p.add_argument(
        "--all", action="store_true", help="page through every asset, not only the first page"
    )
    p.add_argument(
        "--assets-state",
        choices=["queued", "copying", "stored", "deduplicated", "failed", "canceled"],
        default=None,
        help="list only assets in this state (all pages)",
    )
    p.add_argument("--watch", action="store_true", help="follow the job live (same as `watch`)")

    p = cmd("watch", "follow a job live until it ends (exit 0 only if it succeeded)", _cmd_watch)
    api_options(p, config, json_help="print one JSON object per event instead of the live view")
    p.add_argument("job_id", help="the job id (from submit or list)")

    p = cmd("cancel", "cancel a job: copies stop, uploads are aborted, no manifest", _cmd_cancel)
    api_options(p, config, json_help="print the job document as JSON")
    p.add_argument("job_id", help="the job id (from submit or list)")

    p = cmd("retry", "re-queue a failed or canceled job's failed and canceled assets", _cmd_retry)
    api_options(p, config, json_help="print the answer (with --watch, then each event) as JSON")
    p.add_argument("job_id", help="the job id (from submit or list)")
    p.add_argument(
        "--replace",
        type=_replacement,
        action="append",
        default=None,
        metavar="ASSET_ID=URL",
        help="a fresh source URL for an asset (repeatable), e.g. a re-signed CDN URL",
    )
    p.add_argument("--watch", action="store_true", help="follow the job live after the retry")
