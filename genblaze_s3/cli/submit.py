"""`genblaze-ingest submit`: URLs (arguments or `--from-file`) into one or more jobs.

Why its own module: submitting is the one command that plans (split by the tenant's
limit, group by labels: cli/sources.py), asks for a manifest lock, and may print
many job ids; the other job commands only read or act on one job.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from genblaze_s3.cli.common import EXIT_USAGE, api_options, client_for, command, job_exit
from genblaze_s3.cli.output import Output, output_for
from genblaze_s3.cli.sources import (
    FileEntry,
    PlannedJob,
    SourceFileError,
    parse_line,
    plan_jobs,
    read_entries,
)
from genblaze_s3.cli.view import watch_job

if TYPE_CHECKING:
    from genblaze_s3.settings import Settings

# The API's cap on one job (schemas.JobCreate), used when the API predates GET /v1/limits.
API_MAX_ASSETS = 10_000

ENDPOINT_HELP = (
    "S3 endpoint the job names (default: this shell's AWS_ENDPOINT_URL). With none, the "
    "job names no endpoint and each worker writes to ITS OWN AWS_ENDPOINT_URL (AWS S3 "
    "when the worker has none). Workers refuse endpoints outside their "
    "GENBLAZE_ALLOWED_ENDPOINTS (422 destination_not_allowed)"
)


def _label(text: str) -> tuple[str, str]:
    k, sep, v = text.partition("=")
    if not sep or not k:
        raise argparse.ArgumentTypeError("expected KEY=VALUE")
    return k, v


def _positive_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a whole number of days") from None
    if days < 1:
        raise argparse.ArgumentTypeError("expected at least 1 day")
    return days


def _retain_until(text: str) -> datetime:
    """An ISO date (midnight UTC that day) or an ISO time (UTC unless it says otherwise)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an ISO date or time, e.g. 2027-01-31") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def lock_policy(args: argparse.Namespace, now: datetime) -> dict[str, Any] | None:
    """The job's `manifest_lock` from --lock-days / --retain-until (None: no lock asked)."""
    until = args.retain_until
    if args.lock_days is not None:
        # Rounded up to the hour: a re-run with --idempotency-key within the hour sends the
        # very same request (the API refuses a reused key with another body).
        until = now + timedelta(days=args.lock_days)
        if until != until.replace(minute=0, second=0, microsecond=0):
            until = until.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if until is None:
        return None
    return {"mode": args.lock_mode, "retain_until": until.isoformat()}


def _entries(args: argparse.Namespace) -> list[FileEntry]:
    entries = []
    for n, url in enumerate(args.urls, 1):
        entry = parse_line(url, f"URL argument {n}")
        if entry is None:
            raise SourceFileError(f"URL argument {n}: empty")
        entries.append(entry)
    if args.from_file == "-":
        entries += read_entries(sys.stdin, "stdin")
    elif args.from_file:
        try:
            with open(args.from_file, encoding="utf-8") as f:
                entries += read_entries(f, args.from_file)
        except OSError as exc:
            raise SourceFileError(f"{args.from_file}: {exc.strerror}") from None
    return entries


def _max_assets(api: Any) -> int:
    """The tenant's assets-per-job limit as the API states it (GET /v1/limits)."""
    from genblaze_s3.ingest.client.http import JobNotFoundAPIError

    try:
        return int(api.limits().max_assets_per_job)
    except JobNotFoundAPIError:  # an API from before /v1/limits: its schema's cap
        return API_MAX_ASSETS


def cmd_submit(args: argparse.Namespace) -> int:
    from genblaze_s3.ingest.client.http import IngestAPIError, InvalidRequestError

    out = output_for(args, stream=True)
    if not args.bucket:
        raise InvalidRequestError("no bucket: pass --bucket or set GENBLAZE_BUCKET", status=422)
    try:
        entries = _entries(args)
    except SourceFileError as exc:
        out.note(f"genblaze-ingest submit: {exc}")
        return EXIT_USAGE
    if not entries:
        out.note("genblaze-ingest submit: no URLs: pass them as arguments or with --from-file")
        return EXIT_USAGE
    dest: dict[str, Any] = {
        "bucket": args.bucket,
        "prefix": args.prefix,
        "key_strategy": args.strategy,
    }
    if args.endpoint:
        dest["endpoint_url"] = args.endpoint
    lock = lock_policy(args, datetime.now(UTC))
    common = dict(args.label or [])
    with client_for(args) as api:
        limit = _max_assets(api) if len(entries) > 1 else 1
        planned = plan_jobs(entries, limit, common)
        ids: list[str] = []
        try:
            for n, job in enumerate(planned):
                ids.append(_submit_one(api, job, dest, lock, args, n, out))
        except IngestAPIError:
            if len(planned) == 1:
                raise
            done = sum(len(j.assets) for j in planned[: len(ids)])
            out.note(
                f"genblaze-ingest submit: {len(ids)} of {len(planned)} jobs submitted "
                f"({done} of {len(entries)} assets); the rest were not"
                + (
                    "; re-run with the same --idempotency-key to resume"
                    if args.idempotency_key
                    else " (with --idempotency-key, a re-run resumes without duplicates)"
                )
            )
            raise
        if len(planned) > 1:
            out.note(f"{len(entries)} assets in {len(planned)} jobs (at most {limit} per job)")
        if not args.wait:
            return 0
        codes = [job_exit(watch_job(api, job_id, out).state.value) for job_id in ids]
    return max(codes)


def _submit_one(
    api: Any,
    job: PlannedJob,
    dest: dict[str, Any],
    lock: dict[str, Any] | None,
    args: argparse.Namespace,
    n: int,
    out: Output,
) -> str:
    key = f"{args.idempotency_key}-{n}" if args.idempotency_key else None
    accepted = api.submit(
        job.assets, dest, labels=job.labels or None, manifest_lock=lock, idempotency_key=key
    )
    if out.machine:
        out.json(accepted)
    else:
        out.record(accepted.job_id)
    return str(accepted.job_id)


SUBMIT_HELP = (
    "submit URLs for ingestion into your bucket (on the command line, or --from-file for "
    "long lists: split into jobs the API accepts, every job id printed)"
)


def add_submit_command(sub: Any, config: Settings) -> None:
    """Add `submit` to the `genblaze-ingest` subparsers."""
    p = command(sub, "submit", SUBMIT_HELP, cmd_submit)
    api_options(
        p,
        config,
        json_help="print each accepted job (with --wait, then each event) "
        "as one JSON object per line",
    )
    p.add_argument("urls", nargs="*", help="source URLs (https); or use --from-file")
    p.add_argument(
        "--from-file",
        metavar="FILE",
        default=None,
        help="read assets from FILE ('-': stdin), one per line: a URL, or a JSON object "
        '{"url", "media_type", "sha256", "labels"}; split into jobs of at most your '
        "tenant's max assets per job (GET /v1/limits), one job id printed per line",
    )
    p.add_argument("--bucket", default=config.bucket, help="destination bucket (GENBLAZE_BUCKET)")
    p.add_argument("--endpoint", default=config.aws_endpoint_url, help=ENDPOINT_HELP)
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
        help="label every job (repeatable); find them with list --label",
    )
    lock = p.add_mutually_exclusive_group()
    lock.add_argument(
        "--lock-days",
        type=_positive_days,
        default=None,
        metavar="N",
        help="Object-Lock the manifest (and its attestation) for N days from now (rounded "
        "up to the hour); the bucket needs Object Lock enabled",
    )
    lock.add_argument(
        "--retain-until",
        type=_retain_until,
        default=None,
        metavar="DATE",
        help="Object-Lock the manifest until DATE (ISO date or time; UTC unless stated)",
    )
    p.add_argument(
        "--lock-mode",
        choices=["GOVERNANCE", "COMPLIANCE"],
        default="GOVERNANCE",
        help="Object Lock mode with --lock-days/--retain-until (COMPLIANCE only if your "
        "tenant allows it: nobody can lift it)",
    )
    p.add_argument(
        "--idempotency-key",
        default=None,
        help="KEY-0, KEY-1, ... name the jobs: the same command re-run with the same key "
        "creates no job twice (resume after a failure)",
    )
    p.add_argument("--wait", action="store_true", help="follow each job live until it ends")
