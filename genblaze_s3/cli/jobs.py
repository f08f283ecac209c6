"""`genblaze-ingest list | status | watch | cancel | retry | submit`: jobs over the HTTP API.

Every command talks to the API through `IngestClient`; errors are mapped once (in
`run_job_command`) to one line on stderr and a distinct exit code, never a traceback:

| exit | meaning                                       |
|------|-----------------------------------------------|
| 0    | done (for watch/--wait: the job succeeded)    |
| 1    | the job ended failed or canceled              |
| 2    | bad command line (argparse)                   |
| 3    | API unreachable                               |
| 4    | 401/403: token missing or wrong               |
| 5    | 404: no such job for this token               |
| 6    | 409: the job's state forbids it               |
| 7    | 422: request refused as invalid               |
| 8    | 503: API up, store or broker down             |
| 9    | any other API error (e.g. 429, 500)           |
| 10   | the URL answers, but is not a genblaze API    |

A malformed API URL (`127.0.0.1:8000`, no `http://`) is a usage error (2). Output rules
(pipes, `--output`, JSON on stdout only, IEC units) are in cli/output.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from genblaze_s3.cli.output import UNITS_NOTE, Output, add_output_options, output_for
from genblaze_s3.cli.view import STATE_STYLE, percent_text, print_job, watch_job
from genblaze_s3.humanize import human_age, human_size

if TYPE_CHECKING:
    from genblaze_s3.settings import Settings

EXIT_JOB_FAILED = 1
EXIT_UNREACHABLE = 3
EXIT_UNAUTHORIZED = 4
EXIT_NOT_FOUND = 5
EXIT_CONFLICT = 6
EXIT_INVALID = 7
EXIT_UNAVAILABLE = 8
EXIT_API_ERROR = 9
EXIT_NOT_GENBLAZE = 10
EXIT_USAGE = 2
EXIT_CODES_HELP = (
    "exit codes: 0 ok, 1 job failed/canceled, 2 usage (options, API URL, --from-file line), "
    "3 API unreachable, 4 unauthorized, 5 not found, 6 conflict, 7 invalid request, "
    "8 service unavailable, 9 other API error, 10 the URL is not a genblaze API"
)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown on every option, descriptions kept as written."""


def _exit_code(exc: BaseException) -> int:
    from genblaze_s3.ingest.client import http as ac

    for cls, code in (
        (ac.NotGenblazeAPIError, EXIT_NOT_GENBLAZE),
        (ac.InvalidAPIURLError, EXIT_USAGE),
        (ac.APIUnreachableError, EXIT_UNREACHABLE),
        (ac.UnauthorizedError, EXIT_UNAUTHORIZED),
        (ac.JobNotFoundAPIError, EXIT_NOT_FOUND),
        (ac.ConflictError, EXIT_CONFLICT),
        (ac.InvalidRequestError, EXIT_INVALID),
        (ac.ServiceUnavailableError, EXIT_UNAVAILABLE),
    ):
        if isinstance(exc, cls):
            return code
    return EXIT_API_ERROR


def run_job_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command; API errors become one line on stderr and an exit code."""
    from genblaze_s3.ingest.client.http import IngestAPIError

    try:
        return func(args)
    except IngestAPIError as exc:
        print(f"genblaze-ingest {args.cmd}: {exc}", file=sys.stderr)
        return _exit_code(exc)
    except KeyboardInterrupt:
        return 130


def client_for(args: argparse.Namespace) -> Any:
    """The IngestClient of this run (--api-url, --token or GENBLAZE_API_TOKEN)."""
    from genblaze_s3.ingest.client.http import IngestClient, UnauthorizedError

    token = args.token or args.env_token
    if not token:
        raise UnauthorizedError("no token: set GENBLAZE_API_TOKEN or pass --token", status=401)
    return IngestClient(args.api_url, token)


def job_exit(state: str) -> int:
    """0 for a succeeded job, 1 for a failed or canceled one."""
    return 0 if state == "succeeded" else EXIT_JOB_FAILED


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
        table.add_column(col, no_wrap=col == "JOB")
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


def api_url(text: str) -> str:
    """argparse type of --api-url (also applied to GENBLAZE_API_URL, its default)."""
    from genblaze_s3.ingest.client.http import InvalidAPIURLError, parse_api_url

    try:
        return parse_api_url(text)
    except InvalidAPIURLError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (from --api-url or GENBLAZE_API_URL)") from None


def api_options(p: argparse.ArgumentParser, config: Settings, *, json_help: str | None) -> None:
    """--api-url, --token and the output options every API command takes."""
    p.add_argument(
        "--api-url",
        type=api_url,
        default=config.api_url,
        help="the ingest API, http(s)://host[:port] (GENBLAZE_API_URL)",
    )
    # Not an option default: --help must never print the token.
    p.set_defaults(env_token=config.secret("api_token"))
    p.add_argument(
        "--token",
        default=None,
        help="your tenant's bearer token; when omitted, GENBLAZE_API_TOKEN is used",
    )
    if json_help:
        add_output_options(p, json_help)


def add_job_commands(sub: Any, config: Settings) -> None:
    """Add the job commands to the `genblaze-ingest` subparsers."""
    from genblaze_s3.cli.submit import add_submit_command

    def cmd(name: str, helptext: str, func: Callable[[argparse.Namespace], int]) -> Any:
        p = sub.add_parser(
            name,
            help=helptext,
            description=helptext,
            epilog=f"{EXIT_CODES_HELP}\n{UNITS_NOTE}",
            formatter_class=_Formatter,
        )
        p.set_defaults(func=lambda a, f=func: run_job_command(f, a))
        return p

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

    add_submit_command(cmd("submit", SUBMIT_HELP, _submit), config)


SUBMIT_HELP = (
    "submit URLs for ingestion into your bucket (on the command line, or --from-file for "
    "long lists: split into jobs the API accepts, every job id printed)"
)


def _submit(args: argparse.Namespace) -> int:
    from genblaze_s3.cli.submit import cmd_submit

    return cmd_submit(args)
