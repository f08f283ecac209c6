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
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

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
EXIT_CODES_HELP = (
    "exit codes: 0 ok, 1 job failed/canceled, 2 usage, 3 API unreachable, 4 unauthorized, "
    "5 not found, 6 conflict, 7 invalid request, 8 service unavailable, 9 other API error"
)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown on every option, descriptions kept as written."""


def _exit_code(exc: BaseException) -> int:
    from genblaze_s3.ingest.client import http as ac

    for cls, code in (
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


def _client(args: argparse.Namespace) -> Any:
    from genblaze_s3.ingest.client.http import IngestClient, UnauthorizedError

    token = args.token or args.env_token
    if not token:
        raise UnauthorizedError("no token: set GENBLAZE_API_TOKEN or pass --token", status=401)
    return IngestClient(args.api_url, token)


def _print_json(obj: Any) -> None:
    print(obj.model_dump_json() if hasattr(obj, "model_dump_json") else json.dumps(obj))


# -- commands ------------------------------------------------------------------------


def _cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    with _client(args) as api:
        page = api.list(
            state=args.state,
            label=args.label,
            created_after=args.since,
            created_before=args.before,
            limit=args.limit,
            cursor=args.cursor,
        )
    if args.json:
        _print_json(page)
        return 0
    table = Table(box=None, header_style="bold")
    for col in ("JOB", "STATE", "DONE", "ASSETS", "SIZE", "AGE", "LABELS"):
        table.add_column(col)
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
    Console().print(table)
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    if args.watch:
        return _cmd_watch(args)
    with _client(args) as api:
        job = api.get(args.job_id)
        if args.all or args.assets_state:
            job = job.model_copy(
                update={
                    "assets": list(api.iter_assets(args.job_id, state=args.assets_state)),
                    "next_cursor": None,
                }
            )
    if args.json:
        _print_json(job)
    else:
        print_job(job)
    return 0


def _job_exit(state: str) -> int:
    return 0 if state == "succeeded" else EXIT_JOB_FAILED


def _cmd_watch(args: argparse.Namespace) -> int:
    with _client(args) as api:
        job = watch_job(api, args.job_id, as_json=args.json)
    return _job_exit(job.state.value)


def _cmd_cancel(args: argparse.Namespace) -> int:
    with _client(args) as api:
        job = api.cancel(args.job_id)
    if args.json:
        _print_json(job)
    else:
        print(f"job {job.job_id}: {job.state.value}")
    return 0


def _replacement(text: str) -> tuple[str, str]:
    asset_id, sep, url = text.partition("=")
    if not sep or not asset_id or not url:
        raise argparse.ArgumentTypeError("expected ASSET_ID=URL")
    return asset_id, url


def _cmd_retry(args: argparse.Namespace) -> int:
    with _client(args) as api:
        accepted = api.retry(args.job_id, dict(args.replace or []))
        if args.json and not args.watch:
            _print_json(accepted)
            return 0
        print(f"job {accepted.job_id}: retrying {len(accepted.retried)} asset(s)")
        if args.watch:
            return _job_exit(watch_job(api, args.job_id, as_json=args.json).state.value)
    return 0


def _label(text: str) -> tuple[str, str]:
    k, sep, v = text.partition("=")
    if not sep or not k:
        raise argparse.ArgumentTypeError("expected KEY=VALUE")
    return k, v


def _cmd_submit(args: argparse.Namespace) -> int:
    from genblaze_s3.ingest.client.http import InvalidRequestError

    bucket = args.bucket
    if not bucket:
        raise InvalidRequestError("no bucket: pass --bucket or set GENBLAZE_BUCKET", status=422)
    dest: dict[str, Any] = {"bucket": bucket, "prefix": args.prefix, "key_strategy": args.strategy}
    if args.endpoint:
        dest["endpoint_url"] = args.endpoint
    with _client(args) as api:
        accepted = api.submit(args.urls, dest, labels=dict(args.label or []) or None)
        if args.json and not args.wait:
            _print_json(accepted)
            return 0
        print(accepted.job_id)
        if args.wait:
            return _job_exit(watch_job(api, accepted.job_id, as_json=args.json).state.value)
    return 0


# -- parser ------------------------------------------------------------------------


def _api_options(p: argparse.ArgumentParser, config: Settings, *, json_help: str | None) -> None:
    p.add_argument("--api-url", default=config.api_url, help="the ingest API (GENBLAZE_API_URL)")
    # Not an option default: --help must never print the token.
    p.set_defaults(env_token=config.secret("api_token"))
    p.add_argument(
        "--token",
        default=None,
        help="your tenant's bearer token; when omitted, GENBLAZE_API_TOKEN is used",
    )
    if json_help:
        p.add_argument("--json", action="store_true", help=json_help)


def add_job_commands(sub: Any, config: Settings) -> None:
    """Add the job commands to the `genblaze-ingest` subparsers."""

    def cmd(name: str, helptext: str, func: Callable[[argparse.Namespace], int]) -> Any:
        p = sub.add_parser(
            name,
            help=helptext,
            description=helptext,
            epilog=EXIT_CODES_HELP,
            formatter_class=_Formatter,
        )
        p.set_defaults(func=lambda a, f=func: run_job_command(f, a))
        return p

    p = cmd("list", "list your jobs, newest first", _cmd_list)
    _api_options(p, config, json_help="print the page as JSON (jobs + next_cursor)")
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
    _api_options(p, config, json_help="print the job document as JSON")
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
    _api_options(p, config, json_help="print one JSON object per event instead of the live view")
    p.add_argument("job_id", help="the job id (from submit or list)")

    p = cmd("cancel", "cancel a job: copies stop, uploads are aborted, no manifest", _cmd_cancel)
    _api_options(p, config, json_help="print the job document as JSON")
    p.add_argument("job_id", help="the job id (from submit or list)")

    p = cmd("retry", "re-queue a failed or canceled job's failed and canceled assets", _cmd_retry)
    _api_options(p, config, json_help="print the answer (or, with --watch, events) as JSON")
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

    p = cmd("submit", "submit URLs for ingestion into your bucket", _cmd_submit)
    _api_options(p, config, json_help="print the answer (or, with --wait, events) as JSON")
    p.add_argument("urls", nargs="+", help="source URLs (https)")
    p.add_argument(
        "--bucket",
        default=config.bucket,
        help="destination bucket (GENBLAZE_BUCKET)",
    )
    p.add_argument(
        "--endpoint",
        default=config.aws_endpoint_url,
        help="S3 endpoint URL (AWS_ENDPOINT_URL; none: AWS S3)",
    )
    p.add_argument("--prefix", default="genblaze", help="key prefix inside the bucket")
    p.add_argument(
        "--strategy",
        default="content_addressable",
        choices=["content_addressable", "hierarchical"],
        help="genblaze key layout",
    )
    p.add_argument(
        "--label",
        type=_label,
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="label the job (repeatable); find it with list --label",
    )
    p.add_argument("--wait", action="store_true", help="follow the job live until it ends")
